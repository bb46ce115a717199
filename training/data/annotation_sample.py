"""Draw the real texts the project labels on the whole contract (not a DVC stage: run once per labelling round).

The public datasets annotate a few categories each. To learn and measure all twelve on real text, a
sample of their train and dev rows is labelled by the project (`data/real_labels/`). Rare harms are
rare in real comments, so the sample is stratified:

- a **random slice** per source (its prevalence estimates are unbiased for that source);
- **native positives**: rows the dataset's own annotators marked offensive, hateful, toxic, spam or
  smishing;
- **likely positives** per category: rows matching the category's cue patterns below (with and
  without diacritics) or, for profanity, the shared lexicons.

Each drawn row carries its stratum, so prevalence is computed from the random slice alone. The
output holds texts and is written under an ignored folder (`data/labelling/`): the texts are never
committed, only the labels keyed by source, split, row and text hash.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from training.data.adapters import PUBLIC_ADAPTERS, Record, read_smishing
from training.data.real_labels import text_hash
from vicas.normalize import fold_diacritics, normalize_text

# Cue patterns on the normalised, diacritics-free text (word-bounded). They only choose what labellers
# see first; labels come from the labellers, never from these patterns.
CUES: dict[str, str] = {
    "sexual": r"sex|dit nhau|lam tinh|khoa than|lo hang|nude|clip nong|gai goi|hang nong|18\+|vu|mong|nguc|"
    r"quan he|hon nhau|phim nguoi lon|jav|dam duc|ban dam|sugar|bikini|goi cam|hentai",
    "child_sexual": r"(be gai|be trai|tre em|hoc sinh|tre con|em be|au dam|loli|vi thanh nien)\W+(\w+\W+){0,6}"
    r"(sex|dam|hiep|xam hai|anh nong|khoa than|ngu voi|quan he|yeu)|au dam|xam hai tre|loli|"
    r"au dam|ep buoc tre",
    "violence": r"giet|chem|dam chet|ban chet|sung|dao|mau me|danh nhau|dap chet|bom|khung bo|xac chet|"
    r"tra tan|hanh hung|chat dau|dot nha|bat coc|giet nguoi|danh chet|ma quy|kinh di",
    "self_harm": r"tu tu|tu sat|muon chet|khong muon song|chan song|rach tay|cat tay|nhay lau|uong thuoc ngu|"
    r"tram cam|ket thuc cuoc doi|tu hai|bieng an|nhin an|om nhach|roi khoi the gioi",
    "hate": r"bac ky|bac cho|parky|nam ky|ba que|3 que|bo do|dong tinh|be de|pede|thieu nang|khuyet tat|"
    r"mien bac|mien nam|mien trung|thanh hoa|nghe an|tau khua|tau cong|da den|moi|nguoi dan toc|dao hoi|"
    r"cong giao|phat giao|dan ong|dan ba|dan nu|gay|les",
    "substances": r"ma tuy|can sa|co my|thuoc lac|ke|heroin|bong cuoi|vape|pod|thuoc la|bia|ruou|nhau|say xin|"
    r"chich|hut|bay lac|dap da|hang da|shisha|xi ga|thuoc phien",
    "gambling": r"ca do|tai xiu|no hu|casino|lo de|xo so|nha cai|ca cuoc|danh bac|co bac|keo nha cai|bet|"
    r"xoc dia|danh bai|baccarat|slot|game bai|lode|soi cau|vietlott",
    "dangerous_acts": r"thu thach|challenge|nhay cau|dua xe|boc dau|phao|che tao|tu che|dot phao|lang lach|"
    r"nin tho|treo nguoi|trend nguy hiem|leo nui lua|nhay tu|thuoc no|dien giat",
    "scam": r"lua dao|otp|trung thuong|viec nhe luong cao|chuyen khoan|nap the|ma the|mat khau|tai khoan|"
    r"khuyen mai|qua tang|nhan thuong|link|http|www|bit\.ly|vay tien|vay von|lai suat|giai ngan|"
    r"cong tac vien|ctv|kiem tien|dau tu|hoan tien",
    "personal_data": r"so dien thoai|sdt|dia chi|nha o|truong (thpt|thcs|tieu hoc|mam non)|lop \d|"
    r"\b0\d{9}\b|\b0\d{2,3}[ .]\d{3}[ .]\d{3,4}\b|cccd|cmnd|facebook cua|fb cua|nha em o|chau be",
}

RANDOM_PER_SOURCE = 500
NATIVE_QUOTA = {
    "vihsd": 1200,
    "victsd": 600,
    "vihos": 500,
    "vithsd": 600,
    "vispamreviews": 300,
    "smishing": 500,
}
CUE_QUOTA = 650  # per category, spread over sources
LEXICON_QUOTA = 500
MAX_CHARS = 1000


def native_positive(r: Record) -> bool:
    n = r.native
    if r.source == "vihsd":
        return int(n.get("vihsd", 0)) > 0
    if r.source == "victsd":
        return int(n.get("victsd_toxic", 0)) == 1
    if r.source == "vihos":
        return int(n.get("vihos_has_span", 0)) == 1
    if r.source == "vithsd":
        return any(int(v) >= 2 for k, v in n.items() if k.startswith("vithsd_"))
    if r.source == "vispamreviews":
        return int(n.get("vispam_type", 0)) == 3
    if r.source == "smishing":
        return int(n.get("smishing", 0)) == 1
    return False


def load_lexicon(folder: Path) -> list[str]:
    words: set[str] = set()
    ldn = folder / "ldnoobw_vi.txt"
    if ldn.exists():
        words.update(w.strip() for w in ldn.read_text(encoding="utf-8").splitlines())
    eris = folder / "eris_vn_badwords.json"
    if eris.exists():
        data = json.loads(eris.read_text(encoding="utf-8"))
        items = data.get("words", data) if isinstance(data, dict) else data
        words.update(str(w) for w in items)
    plain = {fold_diacritics(normalize_text(w)) for w in words if len(w.strip()) >= 2}
    return sorted(w for w in plain if w and len(w) >= 2)


def read_pool(source_dir: Path, sources: Iterable[str]) -> list[Record]:
    pool: list[Record] = []
    for name in sources:
        rows = read_smishing(source_dir) if name == "smishing" else PUBLIC_ADAPTERS[name](source_dir)
        pool.extend(r for r in rows if len(r.text) <= MAX_CHARS)
    return pool


def draw(pool: list[Record], total: int, lexicon: list[str], seed: int) -> list[dict[str, object]]:
    """Stratified, deduplicated draw; returns rows {id, source, split, row, sha, stratum, text}."""
    rng = random.Random(seed)
    plain = [fold_diacritics(normalize_text(r.text)) for r in pool]
    chosen: dict[int, str] = {}
    seen_text: set[str] = set()

    def take(indices: list[int], quota: int, stratum: str) -> None:
        rng.shuffle(indices)
        n = 0
        for i in indices:
            if n >= quota:
                break
            if i in chosen or plain[i] in seen_text:
                continue
            chosen[i] = stratum
            seen_text.add(plain[i])
            n += 1

    by_source: dict[str, list[int]] = {}
    for i, r in enumerate(pool):
        by_source.setdefault(r.source, []).append(i)
    for source, idx in sorted(by_source.items()):
        take(list(idx), RANDOM_PER_SOURCE, f"random:{source}")
    for source, idx in sorted(by_source.items()):
        take([i for i in idx if native_positive(pool[i])], NATIVE_QUOTA.get(source, 0), f"native:{source}")
    for cat, pattern in CUES.items():
        rx = re.compile(rf"\b(?:{pattern})\b")
        take([i for i, t in enumerate(plain) if rx.search(t)], CUE_QUOTA, f"cue:{cat}")
    if lexicon:
        lex = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(lexicon, key=len, reverse=True)) + r")\b")
        take([i for i, t in enumerate(plain) if lex.search(t)], LEXICON_QUOTA, "lexicon:profanity")
    if len(chosen) < total:  # fill the rest at random
        take(list(range(len(pool))), total - len(chosen), "random:fill")
    rows: list[dict[str, object]] = []
    for i, stratum in chosen.items():
        r = pool[i]
        rows.append(
            {
                "id": r.id,
                "source": r.source,
                "split": r.split,
                "row": int(r.id.rsplit("-", 1)[1]),
                "sha": text_hash(r.text),
                "stratum": stratum,
                "text": r.text,
            }
        )
    rng.shuffle(rows)
    return rows[:total]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("data/labelling"), help="ignored folder for the batches")
    parser.add_argument("--total", type=int, default=12000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    sources = ["vihsd", "victsd", "vihos", "vithsd", "vispamreviews", "smishing"]
    pool = read_pool(args.source_dir, sources)
    rows = draw(pool, args.total, load_lexicon(args.source_dir / "lexicons"), args.seed)
    batches = args.out / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    for b in range(0, len(rows), args.batch_size):
        with (batches / f"batch_{b // args.batch_size:03d}.jsonl").open("w", encoding="utf-8") as f:
            for row in rows[b : b + args.batch_size]:
                f.write(json.dumps({"id": row["id"], "text": row["text"]}, ensure_ascii=False) + "\n")
    with (args.out / "sample.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({k: v for k, v in row.items() if k != "text"}, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows from a pool of {len(pool)}; strata:")
    for stratum, n in sorted(Counter(str(r["stratum"]) for r in rows).items()):
        print(f"  {stratum:28s} {n}")


if __name__ == "__main__":
    main()
