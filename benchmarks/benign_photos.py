"""False flags of the whole visual path on real benign photographs: the generated-image heads, the ImageNet
cues and open_nsfw (OCR off), on every real photo the installed Python packages ship. Nothing is downloaded.

The target (issue 16): no benign photo at band T16 or above. The readers' thresholds were set from what their
scores mean (vicas/open_nsfw.py, vicas/resources/imagenet_cues.tsv) and the heads' domain threshold on the
heads' own generated dev pictures (export_image) before any of these photos was scored: the photos are a
held-out check, not a tuning set. The report also gives each reader's highest score on the photos beside its
threshold (the margin), the band each photo would get if the heads read every picture (no domain), the bands
below T16 and the time per image.

Photos (a search of this machine for *.jpg/*.png/*.tif found no other package that ships photographs):
  scikit-image  skimage/data: 20 photographs (people, animals, objects, textures, microscopy, astronomy) and
                lfw_subset.npy: 200 crops of 25 x 25 pixels from Labeled Faces in the Wild (100 faces, 100 not);
                its drawings and test patterns are listed and left out (NOT_PHOTOS)
  matplotlib    sample_data/grace_hopper.jpg
  scikit-learn  datasets/images/china.jpg, flower.jpg

    pip install scikit-image   # for the benchmark only; not a project dependency
    python benchmarks/benign_photos.py --model models/image --out reports/benign_photos.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png", "moon.png",
    "motorcycle_left.png", "motorcycle_right.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip
NOT_PHOTOS = {
    "chessboard_GRAY.png": "test pattern",
    "chessboard_RGB.png": "test pattern",
    "color.png": "colour wheel (synthetic)",
    "horse.png": "silhouette drawing",
    "logo.png": "logo drawing",
    "phantom.png": "Shepp-Logan phantom (synthetic)",
    "no_time_for_that_tiny.gif": "14 x 25 pixels",
    "multipage.tif": "test file",
    "multipage_rgb.tif": "test file (Pillow cannot read it)",
    "Minduka_Present_Blue_Pack.png (matplotlib)": "clip-art drawing",
}
FLAG_BAND = "T16"


@dataclass
class Photo:
    source: str
    name: str
    data: bytes


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def photos() -> Iterator[Photo]:
    """Every real photo found in the installed packages, as the bytes a partner would send."""
    try:
        import skimage
    except ImportError:
        print("scikit-image is not installed: its photos are skipped (pip install scikit-image)", file=sys.stderr)
    else:
        folder = Path(skimage.__file__).parent / "data"
        for name in SKIMAGE_PHOTOS:
            yield Photo("scikit-image", name, (folder / name).read_bytes())
        faces = np.load(folder / "lfw_subset.npy")
        for i, crop in enumerate(faces):
            kind = "face" if i < 100 else "not a face"
            yield Photo("scikit-image lfw_subset", f"{i:03d} ({kind})", _png((crop * 255).round().astype(np.uint8)))
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: grace_hopper.jpg is skipped", file=sys.stderr)
    else:
        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        yield Photo("matplotlib", path.name, path.read_bytes())
    try:
        import sklearn
    except ImportError:
        print("scikit-learn is not installed: china.jpg and flower.jpg are skipped", file=sys.stderr)
    else:
        folder = Path(sklearn.__file__).parent / "datasets" / "images"
        for name in ("china.jpg", "flower.jpg"):
            yield Photo("scikit-learn", name, (folder / name).read_bytes())


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def run(model: Path | None, threads: int | None) -> dict[str, Any]:
    from vicas.combine import combine
    from vicas.image_reader import NamedImage, build_image_reader
    from vicas.images import ImageLimits, open_image
    from vicas.policy import load_policy
    from vicas.result import build_result
    from vicas.taxonomy import Band
    from vicas.visual import VisualEngine

    visual = VisualEngine(model, threads=threads) if model is not None else None
    reader = build_image_reader(visual, None, threads=threads)  # OCR off: what the pictures alone say
    assert reader is not None
    policy = load_policy()
    limits = ImageLimits()
    rows: list[dict[str, Any]] = []
    warm = Image.new("RGB", (64, 64), "grey")
    reader.read([NamedImage("warm-up", warm)])
    for photo in photos():
        im = open_image(photo.data, limits, photo.name)  # the API's decoding: EXIF, RGB, limits
        (reading,), total = _timed(reader.read, [NamedImage(photo.name, im)])
        res = build_result(combine(None, [reading], [None]), policy, reader.version)
        times = {"all": total}
        heads: dict[str, float] = {}
        ungated = res.band
        if reader.visual is not None:
            (pred,), times["heads"] = _timed(reader.visual.classify, [im])
            heads = {c: pred.scores[c] for c in reader.visual.head_categories}
            if not reading.heads_read:  # the band had the heads read this picture anyway
                sev = {c: v for c, v in pred.severities.items() if c in reader.visual.head_categories}
                alt = dataclasses.replace(reading, visual_severities=sev, visual_scores=heads)
                ungated = build_result(combine(None, [alt], [None]), policy, reader.version).band
        cue_top: dict[str, float] = {}
        if reader.cues is not None:
            probs, times["imagenet_cues"] = _timed(reader.cues.probabilities, [im])
            for cue in reader.cues.cues:
                key = f"{cue.label} ({cue.threshold:g})"
                cue_top[key] = round(float(probs[0][cue.index]), 4)
        if reader.open_nsfw is not None:
            _, times["open_nsfw"] = _timed(reader.open_nsfw.scores, [im])
        rows.append(
            {
                "source": photo.source,
                "name": photo.name,
                "size": f"{im.width}x{im.height}",
                "band": res.band.value,
                "flagged": res.band >= Band[FLAG_BAND],
                "heads_read": reading.heads_read,
                "heads_similarity": reading.heads_similarity,
                "band_if_heads_read_everything": ungated.value,
                "flagged_if_heads_read_everything": ungated >= Band[FLAG_BAND],
                "severities": {c: v.severity for c, v in res.categories.items() if v.severity},
                "sources": res.images[0].sources,
                "evidence": [f"{e.source}: {e.category} {e.text or ''} {e.score}".strip() for e in res.evidence],
                "head_scores": heads,
                "head_severities": {c: v for c, v in reading.visual_severities.items() if v},
                "cue_probabilities": cue_top,
                "open_nsfw": reading.open_nsfw,
                "seconds": {k: round(v, 4) for k, v in times.items()},
            }
        )
    return {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, load average "
        + "/".join(f"{x:.1f}" for x in os.getloadavg()),
        "reader": reader.version,
        "flag_band": FLAG_BAND,
        "heads_domain_threshold": reader.cues.domain.threshold if reader.cues and reader.cues.domain else None,
        "photos": rows,
        "left_out": NOT_PHOTOS,
    }


def summary(report: dict[str, Any]) -> str:
    """Markdown: per source, per named photo, the margins of each reader and the time per image."""
    rows = report["photos"]
    order = ["P", "K", "T13", "T16", "T18", "C"]
    lines = [
        f"Reader `{report['reader']}`, OCR off; {report['date']}, {report['machine']}.",
        "",
        f"| source | photos | flagged {report['flag_band']} or above | T13 | K | P | heads read | "
        f"{report['flag_band']}+ if the heads read every picture |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups = [(s, [r for r in rows if r["source"] == s]) for s in dict.fromkeys(r["source"] for r in rows)]
    for source, sub in [*groups, ("**all**", rows)]:
        n = {b: sum(r["band"] == b for r in sub) for b in order}
        lines.append(
            f"| {source} | {len(sub)} | {sum(r['flagged'] for r in sub)} | {n['T13']} | {n['K']} | {n['P']} | "
            f"{sum(r['heads_read'] for r in sub)} | {sum(r['flagged_if_heads_read_everything'] for r in sub)} |"
        )
    lines += [
        "",
        "| photo | band | what fired | open_nsfw | top cue class | heads: similarity (read?), top score, "
        "band if read |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        quiet = r["band"] == "P" and r["band_if_heads_read_everything"] == "P"
        if r["source"] == "scikit-image lfw_subset" and quiet:
            continue  # the 200 crops: only those that got a band (or would have) are listed
        cue = max(r["cue_probabilities"].items(), key=lambda kv: kv[1], default=("-", 0.0))
        head = max(r["head_scores"].items(), key=lambda kv: kv[1], default=("-", 0.0))
        fired = "; ".join(r["evidence"]) or "-"
        read = "read" if r["heads_read"] else "not read"
        lines.append(
            f"| {r['source']}: {r['name']} | {r['band']} | {fired} | {r['open_nsfw']} | {cue[0]} {cue[1]:.3f} | "
            f"{r['heads_similarity']} ({read}), {head[0]} {head[1]:.3f}, {r['band_if_heads_read_everything']} |"
        )
    margin = ["", "Highest score on any of these photos, beside the threshold that would flag it:", ""]
    nsfw = max((r["open_nsfw"] or 0.0 for r in rows), default=0.0)
    margin.append(f"- open_nsfw P(nsfw): {nsfw:.4f} (sexual 1 at 0.5, 2 at 0.8)")
    cues = {k for r in rows for k in r["cue_probabilities"]}
    top = sorted(((max(r["cue_probabilities"].get(k, 0.0) for r in rows), k) for k in cues), reverse=True)
    margin.append("- ImageNet cues (class (threshold): highest): " + ", ".join(f"{k}: {v:.3f}" for v, k in top[:6]))
    sims = [r["heads_similarity"] for r in rows if r["heads_similarity"] is not None]
    if sims:
        margin.append(
            f"- heads' domain similarity: highest {max(sims):.4f} (the heads are read at "
            f">= {report['heads_domain_threshold']:.4f}, the threshold keeping 99% of their generated dev pictures)"
        )
    heads = {k for r in rows for k in r["head_scores"]}
    hs = sorted(((max(r["head_scores"].get(k, 0.0) for r in rows), k) for k in heads), reverse=True)
    margin.append(
        "- generated-image heads (had they been read), P(present): " + ", ".join(f"{k} {v:.3f}" for v, k in hs)
    )
    lines += margin
    lines += ["", "Seconds per image (mean / median over the photos, one image a call):", ""]
    for key in ("all", "heads", "imagenet_cues", "open_nsfw"):
        vals = [r["seconds"][key] for r in rows if key in r["seconds"]]
        if vals:
            lines.append(f"- {key}: {statistics.mean(vals):.4f} / {statistics.median(vals):.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/image"), help="exported image model folder")
    parser.add_argument(
        "--no-model", action="store_true", help="measure open_nsfw alone (no image model: no heads, no cues)"
    )
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=None, help="also write the per-photo JSON here")
    args = parser.parse_args(argv)
    if not args.no_model and not (args.model / "manifest.json").exists():
        parser.error(f"no exported image model in {args.model} (dvc repro export_image), or pass --no-model")
    report = run(None if args.no_model else args.model, args.threads)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(summary(report))
    flagged = [f"{r['source']}: {r['name']}" for r in report["photos"] if r["flagged"]]
    print(f"\n{len(flagged)} of {len(report['photos'])} benign photos flagged {FLAG_BAND} or above", *flagged, sep="\n")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
