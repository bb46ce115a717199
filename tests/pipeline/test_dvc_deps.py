"""Every DVC stage lists exactly the project code it runs, so a change to a module marks exactly its stages stale.

Static and fast: dvc.yaml is read with yaml.safe_load (vars and ${...} interpolation resolved as DVC does for the
simple forms this project uses, foreach expanded), each stage's entry module(s) come from its `cmd`, and the
transitive closure of project-internal imports is computed with `ast`. Closure rules:

* `import a.b.c` runs a/__init__.py, a/b/__init__.py and a/b/c.py; `from a.b import c` runs a, a.b and a.b.c when
  c is a module; relative imports (`from . import x`, `from .m import y`) resolve against the importing package;
  `importlib.import_module("a.b")` / `__import__("a.b")` with a constant name count too.
* Imports anywhere in a module count (inside functions too: lazy imports still run), except under
  `if TYPE_CHECKING:`, which never runs.
* A module that reads a project file by path counts that file: a file under the module's folder is a dependency
  when the module has string constants naming every part of its relative path (`Path(__file__).parent /
  "resources" / "teencode.tsv"`), or one constant naming the whole relative or repository path. Files read by
  path are not followed for imports (read, not run).
* `python -m pkg.mod` runs pkg/__init__.py then pkg/mod.py; `python path/to/script.py` runs the script (its own
  folder is first on sys.path); the `vicas` console script runs vicas/cli.py and the plugins registered under
  the `vicas.commands` entry points in pyproject.toml.

A stage's deps must cover its closure (missing deps fail) and must not list project code outside it (extra deps
fail): project code is every .py file under the code folders and every file some module reads by path. Data,
params and model folders and other non-Python inputs are not checked for extras.
"""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("vicas", "training", "serving", "scripts")
SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


# -- reading dvc.yaml ---------------------------------------------------------------------------------------------

_INTERP = re.compile(r"\$\{\s*([^}]+?)\s*\}")


def _lookup(context: dict[str, Any], key: str) -> Any:
    value: Any = context
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)]
        else:
            raise KeyError(f"${{{key}}} is not defined in dvc.yaml vars / params.yaml")
    return value


def _interpolate(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _INTERP.fullmatch(value)
        if whole:
            return _lookup(context, whole.group(1))
        return _INTERP.sub(lambda m: str(_lookup(context, m.group(1))), value)
    if isinstance(value, list):
        return [_interpolate(v, context) for v in value]
    if isinstance(value, dict):
        return {_interpolate(k, context): _interpolate(v, context) for k, v in value.items()}
    return value


def _vars_context(root: Path, dvc_yaml: dict[str, Any]) -> dict[str, Any]:
    """DVC's default: params.yaml is always loaded; then the `vars` entries (files or inline dicts) in order."""
    context: dict[str, Any] = {}
    if (root / "params.yaml").is_file():
        context.update(yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {})
    for entry in dvc_yaml.get("vars", []) or []:
        if isinstance(entry, dict):
            context.update(entry)
        else:
            name, _, keys = str(entry).partition(":")
            data = yaml.safe_load((root / name).read_text(encoding="utf-8")) or {}
            if keys:
                data = {k: data[k] for k in keys.split(",")}
            context.update(data)
    return context


def load_stages(root: Path) -> dict[str, dict[str, Any]]:
    """Stage name -> {"cmd": [str, ...], "deps": [str, ...]} with interpolation resolved and foreach expanded."""
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}
    context = _vars_context(root, dvc_yaml)
    stages: dict[str, dict[str, Any]] = {}
    for name, stage in (dvc_yaml.get("stages") or {}).items():
        if "matrix" in stage:
            raise NotImplementedError(f"stage {name} uses `matrix`: extend load_stages() in {Path(__file__).name}")
        if "foreach" in stage:
            items = _interpolate(stage["foreach"], context)
            pairs = items.items() if isinstance(items, dict) else ((None, item) for item in items)
            for key, item in pairs:
                local = {**context, "item": item, **({"key": key} if key is not None else {})}
                suffix = key if key is not None else item
                stages[f"{name}@{suffix}"] = _stage_fields(_interpolate(stage["do"], local))
        else:
            stages[name] = _stage_fields(_interpolate(stage, context))
    return stages


def _stage_fields(stage: dict[str, Any]) -> dict[str, Any]:
    cmd = stage.get("cmd", [])
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", []) or []]
    return {"cmd": [cmd] if isinstance(cmd, str) else list(cmd), "deps": deps}


# -- import closure -----------------------------------------------------------------------------------------------


def _files_under(path: Path) -> set[Path]:
    if path.is_file():
        return {path.resolve()}
    if path.is_dir():
        return {
            p.resolve()
            for p in path.rglob("*")
            if p.is_file() and not SKIP_PARTS.intersection(p.relative_to(path).parts)
        }
    return set()


@cache
def _folder_files(folder: Path) -> frozenset[Path]:
    return frozenset(_files_under(folder))


def _rel(root: Path, files: set[Path]) -> str:
    return ", ".join(sorted(f.relative_to(root).as_posix() for f in files))


def _module_file(root: Path, search: tuple[Path, ...], name: str) -> Path | None:
    """The file a project-internal module name runs from, or None (third-party, stdlib, or not a module)."""
    parts = name.split(".")
    for base in search:
        if base == root and parts[0] not in CODE_DIRS:
            continue
        candidate = base.joinpath(*parts)
        for f in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if f.is_file():
                return f.resolve()
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_running(tree: ast.AST) -> Iterator[ast.AST]:
    """ast.walk, minus the bodies of `if TYPE_CHECKING:` (their else branch still runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            stack.append(node.test)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _package_of(root: Path, search: tuple[Path, ...], file: Path) -> str | None:
    for base in search:
        try:
            rel = file.relative_to(base)
        except ValueError:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        else:
            parts = parts[:-1]
        return ".".join(parts)
    return None


@cache
def _module_facts(root: Path, search: tuple[Path, ...], file: Path) -> tuple[frozenset[Path], frozenset[Path]]:
    """(project modules this file runs on import, project files it reads by path)."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    names: list[str] = []
    constants: set[str] = set()
    package = _package_of(root, search, file)
    for node in _walk_running(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.extend(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                pkg_parts = package.split(".") if package else []
                keep = len(pkg_parts) - (node.level - 1)
                base_parts = pkg_parts[:keep] + (node.module.split(".") if node.module else [])
                base = ".".join(base_parts)
            else:
                base = node.module or ""
            if base:
                names.extend(_with_parents(base))
            for alias in node.names:
                if alias.name != "*":
                    names.append(f"{base}.{alias.name}" if base else alias.name)
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in {"import_module", "__import__"})
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.extend(_with_parents(node.args[0].value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            constants.add(node.value)
    modules = {m for n in names if (m := _module_file(root, search, n)) is not None}
    modules.discard(file)
    reads: set[Path] = set()
    folder = file.parent
    for candidate in _folder_files(folder):
        if candidate == file:
            continue
        rel = candidate.relative_to(folder)
        if (
            set(rel.parts) <= constants
            or rel.as_posix() in constants
            or candidate.relative_to(root).as_posix() in constants
        ):
            reads.add(candidate)
    return frozenset(modules), frozenset(reads)


def closure(root: Path, entries: list[tuple[Path, tuple[Path, ...]]]) -> set[Path]:
    """Every project file the entry files run (transitively) or read by path."""
    seen: set[Path] = set()
    reads: set[Path] = set()
    for entry, search in entries:
        todo = [entry.resolve()]
        while todo:
            file = todo.pop()
            if file in seen:
                continue
            seen.add(file)
            modules, read = _module_facts(root, search, file)
            reads |= read
            todo.extend(modules - seen)
    return seen | reads


def _console_scripts(root: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    scripts = project.get("scripts", {})
    plugins = {group: list(eps.values()) for group, eps in project.get("entry-points", {}).items()}
    return scripts, plugins


def entry_points(root: Path, cmd: str) -> list[tuple[Path, tuple[Path, ...]]]:
    """(file, import search path) for each Python program the command runs."""
    scripts, plugins = _console_scripts(root)
    entries: list[tuple[Path, tuple[Path, ...]]] = []
    for part in re.split(r"&&|\|\||;|\|", cmd):
        words = shlex.split(part)
        while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value prefixes
            words.pop(0)
        if not words:
            continue
        prog = Path(words[0]).name
        search = (root,)
        if re.fullmatch(r"python(3(\.\d+)?)?", prog):
            args = words[1:]
            while args and args[0].startswith("-") and args[0] != "-m":
                args.pop(0)
            if args[:1] == ["-m"] and len(args) > 1:
                module = args[1]
                for name in _with_parents(module):
                    f = _module_file(root, search, name)
                    assert f is not None, f"`{cmd}`: {name} is not a project module"
                    entries.append((f, search))
                main = _module_file(root, search, f"{module}.__main__")
                if main is not None:
                    entries.append((main, search))
            elif args:
                script = (root / args[0]).resolve()
                assert script.is_file(), f"`{cmd}`: {args[0]} does not exist"
                entries.append((script, (script.parent, root)))
            else:
                raise AssertionError(f"`{cmd}`: cannot tell which Python program it runs")
        elif prog in scripts:
            # the console script's module, and the plugins it loads from its own entry-point groups
            targets = [scripts[prog]] + [
                ep for group, eps in plugins.items() if group.startswith(f"{prog}.") for ep in eps
            ]
            for module in (target.split(":")[0] for target in targets):
                for name in _with_parents(module):
                    f = _module_file(root, search, name)
                    if f is not None:
                        entries.append((f, search))
        else:
            raise AssertionError(f"`{cmd}`: unknown program {prog!r}; teach entry_points() in {Path(__file__).name}")
    return entries


# -- comparing deps with closures ---------------------------------------------------------------------------------


def _code_files(root: Path) -> set[Path]:
    """Project code: .py files under the code folders, and every file some module reads by path."""
    py = {f for d in CODE_DIRS for f in _files_under(root / d) if f.suffix == ".py"}
    read = set()
    for f in py:
        search = (f.parent, root) if f.is_relative_to((root / "scripts").resolve()) else (root,)
        read |= _module_facts(root, search, f)[1]
    return py | read


def _code_dir_files_under(root: Path, dep: Path) -> set[Path]:
    """The files under the code folders that a dep covers (a file, or a folder and all below it)."""
    dep = dep.resolve()
    files: set[Path] = set()
    for d in CODE_DIRS:
        code_dir = (root / d).resolve()
        if dep.is_relative_to(code_dir):
            return _files_under(dep)
        if code_dir.is_relative_to(dep):
            files |= _files_under(code_dir)
    return files


def stage_report(root: Path) -> dict[str, dict[str, set[Path]]]:
    """Stage -> {"closure": files it runs or reads, "covered": files its deps cover}."""
    report = {}
    for name, stage in load_stages(root).items():
        entries = [e for cmd in stage["cmd"] for e in entry_points(root, cmd)]
        covered = set().union(set(), *(_code_dir_files_under(root, root / d) for d in stage["deps"]))
        report[name] = {"closure": closure(root, entries), "covered": covered}
    return report


def deps_problems(root: Path) -> list[str]:
    root = root
    code = _code_files(root)
    problems = []
    for name, r in stage_report(root).items():
        missing = r["closure"] - r["covered"]
        extra = (r["covered"] & code) - r["closure"]
        if missing:
            problems.append(f"stage {name}: runs or reads but does not list in deps: {_rel(root, missing)}")
        if extra:
            problems.append(f"stage {name}: lists in deps but neither imports nor reads: {_rel(root, extra)}")
    return problems


@pytest.fixture(scope="module")
def report():
    return stage_report(ROOT)


def test_every_stage_has_a_python_entry(report):
    assert report, "dvc.yaml has no stages"
    for name, r in report.items():
        assert r["closure"], f"stage {name}: no project module found in its cmd"


def test_deps_equal_import_closure():
    problems = deps_problems(ROOT)
    assert not problems, "dvc.yaml deps drifted from the code the stages run:\n" + "\n".join(problems)


def _stages_listing(report, file: Path) -> set[str]:
    return {name for name, r in report.items() if file in r["covered"]}


def _stages_running(report, file: Path) -> set[str]:
    return {name for name, r in report.items() if file in r["closure"]}


@pytest.mark.parametrize(
    "path",
    [
        "vicas/taxonomy.py",
        "training/calibration.py",
        "vicas/normalize.py",
        "vicas/resources/teencode.tsv",
        "training/text/dataset.py",
        "training/text/baseline.py",
        "vicas/policies/default.yaml",
    ],
)
def test_change_marks_exactly_the_importing_stages_stale(report, path):
    """DVC marks a stage stale when a file its deps cover changes: that set must be the stages that run the file."""
    file = (ROOT / path).resolve()
    running = _stages_running(report, file)
    assert running, f"no stage runs {path}: pick another module for this test"
    assert _stages_listing(report, file) == running


def test_change_to_any_project_file_marks_exactly_its_stages_stale(report):
    files = _code_files(ROOT) | set().union(*(r["closure"] for r in report.values()))
    wrong = {
        f.relative_to(ROOT).as_posix(): (sorted(_stages_listing(report, f)), sorted(_stages_running(report, f)))
        for f in files
        if _stages_listing(report, f) != _stages_running(report, f)
    }
    assert not wrong, f"file: (stages whose deps list it, stages that run it): {wrong}"


# -- the checker itself, on a small invented project ----------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


PROJECT = {
    "pyproject.toml": '[project]\nname = "x"\n[project.scripts]\nvicas = "vicas.cli:main"\n'
    '[project.entry-points."vicas.commands"]\nserving = "serving.cli:add"\n',
    "params.yaml": "s:\n  data: data/in\n",
    "vicas/__init__.py": "",
    "vicas/cli.py": "from vicas import table\n",
    "vicas/table.py": """\
        from pathlib import Path
        TABLE = Path(__file__).parent / "resources" / "t.tsv"
        """,
    "vicas/resources/t.tsv": "a\tb\n",
    "vicas/resources/unused.tsv": "",
    "vicas/only_typing.py": "",
    "vicas/lazy.py": "",
    "serving/__init__.py": "",
    "serving/cli.py": "",
    "training/__init__.py": "",
    "training/sub/__init__.py": "",
    "training/sub/helper.py": """\
        import importlib
        from .. import config
        importlib.import_module("vicas.dynamic")
        """,
    "training/config.py": "",
    "vicas/dynamic.py": "",
    "vicas/fingerprint.py": 'from pathlib import Path\nSOURCE = Path(__file__).parent / "table.py"\n',
    "training/stage.py": """\
        from typing import TYPE_CHECKING
        from .sub import helper
        if TYPE_CHECKING:
            import vicas.only_typing
        def main():
            import vicas.lazy
        """,
    "scripts/tool.py": "import sibling\n",
    "scripts/sibling.py": "from vicas.table import TABLE\n",
}


def _project(tmp_path: Path, stages: str) -> Path:
    _write(tmp_path, {**PROJECT, "dvc.yaml": stages})
    return tmp_path


def test_closure_rules(tmp_path):
    root = _project(tmp_path, "stages: {}\n").resolve()

    def rel(files: set[Path]) -> set[str]:
        return {f.relative_to(root).as_posix() for f in files}

    assert rel(closure(root, entry_points(root, "python -m training.stage --x 1"))) == {
        "training/__init__.py",
        "training/config.py",
        "training/stage.py",
        "training/sub/__init__.py",
        "training/sub/helper.py",
        "vicas/__init__.py",
        "vicas/dynamic.py",
        "vicas/lazy.py",
    }
    assert rel(closure(root, entry_points(root, "python -m vicas.fingerprint"))) == {
        "vicas/__init__.py",
        "vicas/fingerprint.py",
        "vicas/table.py",  # read by path, not run: its own reads do not follow
    }
    assert rel(closure(root, entry_points(root, "python scripts/tool.py"))) == {
        "scripts/tool.py",
        "scripts/sibling.py",
        "vicas/__init__.py",
        "vicas/table.py",
        "vicas/resources/t.tsv",
    }
    assert rel(closure(root, entry_points(root, "vicas run"))) == {
        "vicas/__init__.py",
        "vicas/cli.py",
        "vicas/table.py",
        "vicas/resources/t.tsv",
        "serving/__init__.py",
        "serving/cli.py",
    }


def test_checker_reports_missing_and_extra_deps(tmp_path):
    root = _project(
        tmp_path,
        """\
        stages:
          stage:
            cmd: python -m training.stage
            deps: [training/stage.py, training/sub, training/config.py, vicas/dynamic.py, vicas/table.py, "${s.data}"]
          tool:
            foreach: [a]
            do:
              cmd: python scripts/tool.py ${item}
              deps: [scripts, vicas/__init__.py, vicas/table.py, vicas/resources, data/other]
        """,
    )
    assert deps_problems(root) == [
        "stage stage: runs or reads but does not list in deps: training/__init__.py, vicas/__init__.py, vicas/lazy.py",
        "stage stage: lists in deps but neither imports nor reads: vicas/table.py",
    ]
    # tool@a is exact: its folder deps cover what it runs; vicas/resources/unused.tsv is read by no module, so it
    # counts as a data input, not as code the stage would have to import
    assert "tool" not in " ".join(deps_problems(root))
