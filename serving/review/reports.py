"""Periodic reports for the Department: what was flagged, what reviewers decided, how well the model did.

`report_data` reads the database once and returns a plain, JSON-serialisable dict; the renderers
(`report_csv`, `report_charts`, `report_pdf`) are pure functions of that dict, so an API can cache the
data and render any format from it.

Conventions (shared/TAXONOMY.md):
- the report period selects flagged items by `created_at` (UTC dates, both ends inclusive);
- an item counts for a category at severity >= 1: the reviewers' `final_categories` once the item is
  reviewed, the model's `categories` before;
- its band is `final_band` once reviewed, the model's `band` before;
- an item whose band was set on appeal with no category decision (`final_categories` NULL) counts as reviewed
  with its reviewed band, keeps the model's categories in the counts, and is left out of precision and of
  the false positives;
- a false positive is a reviewed item on which the reviewers kept no category at severity >= 1;
- reviewer agreement compares independent decisions (confirm, change, false_positive) on items with two or
  more of them; a `second_confirm` copies the first reviewer's decision, so counting it would read as
  agreement by construction. Per category, an item is judged when the model or any reviewer marked the
  category (the rest agree trivially), and reviewers agree when all mark it present or all absent.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from sqlalchemy import Engine, select
from sqlalchemy.sql.elements import ColumnElement

from serving.db import flagged_items, reviews
from vicas.taxonomy import BAND_ORDER, CATEGORIES

NO_PARTNER = "(none)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Band colours from "suitable for all" (green) to "must not be disseminated" (dark red).
_BAND_COLOURS = {
    "P": "#2e7d32",
    "K": "#7cb342",
    "T13": "#fbc02d",
    "T16": "#fb8c00",
    "T18": "#e53935",
    "C": "#6a1b1b",
}
_BAR = "#1f5f8b"


# --- reading ------------------------------------------------------------------------------------------------


def _as_utc(value: datetime) -> datetime:
    """Naive timestamps (SQLite) are stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_week(value: datetime) -> str:
    """ISO 8601 week of a timestamp (UTC), e.g. '2026-W48'."""
    year, week, _ = _as_utc(value).isocalendar()
    return f"{year}-W{week:02d}"


def _severity(value: Any) -> int:
    """A severity from either shape: the model's {"score", "severity"} or the reviewers' plain int."""
    if isinstance(value, Mapping):
        value = value.get("severity", 0)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    return 0


def present_categories(raw: str | None) -> set[str]:
    """Categories at severity >= 1 in a stored JSON column (model or reviewer shape); bad JSON reads as none."""
    if not raw:
        return set()
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return set()
    if not isinstance(parsed, dict):
        return set()
    return {str(name) for name, value in parsed.items() if _severity(value) >= 1}


def _ordered_categories(names: Iterable[str]) -> list[str]:
    """Contract categories in contract order, then any unknown names (kept, never dropped) alphabetically."""
    extra = sorted(set(names) - set(CATEGORIES))
    return [*CATEGORIES, *extra]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _week_range(weeks: Iterable[str]) -> list[str]:
    """Every ISO week from the first to the last one given, so a quiet week shows as 0, not as a gap."""
    found = sorted(set(weeks))
    if not found:
        return []
    first, last = (date.fromisocalendar(int(w[:4]), int(w[6:]), 1) for w in (found[0], found[-1]))
    out: list[str] = []
    day = first
    while day <= last:
        year, week, _ = day.isocalendar()
        out.append(f"{year}-W{week:02d}")
        day += timedelta(days=7)
    return out


def _period_filter(start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if start is not None:
        conds.append(flagged_items.c.created_at >= datetime.combine(start, time.min, tzinfo=UTC))
    if end is not None:
        conds.append(flagged_items.c.created_at < datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))
    return conds


def report_data(engine: Engine, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """Counts, model precision as reviewers judged it, and reviewer agreement for items flagged in [start, end]."""
    if start is not None and end is not None and start > end:
        raise ValueError(f"start {start} is after end {end}")
    period = _period_filter(start, end)
    item_q = select(
        flagged_items.c.id,
        flagged_items.c.partner,
        flagged_items.c.band,
        flagged_items.c.categories,
        flagged_items.c.status,
        flagged_items.c.final_band,
        flagged_items.c.final_categories,
        flagged_items.c.created_at,
    ).where(*period)
    review_q = (
        select(reviews.c.item_id, reviews.c.decision, reviews.c.band, reviews.c.categories)
        .select_from(reviews.join(flagged_items, reviews.c.item_id == flagged_items.c.id))
        .where(*period)
        .order_by(reviews.c.item_id, reviews.c.created_at, reviews.c.id)
    )

    by_category: Counter[str] = Counter()
    by_band: Counter[str] = Counter()
    by_partner: Counter[str] = Counter()
    by_week: Counter[str] = Counter()
    flagged: Counter[str] = Counter()  # reviewed items the model flagged, per category
    kept: Counter[str] = Counter()  # ... of which the reviewers kept at severity >= 1
    added: Counter[str] = Counter()  # reviewed items where reviewers found a category the model missed
    model_cats: dict[int, set[str]] = {}
    totals = Counter(items=0, reviewed=0, open=0, awaiting_second=0, false_positives=0)

    with engine.connect() as conn:
        for row in conn.execute(item_q):
            model = present_categories(row.categories)
            model_cats[row.id] = model
            reviewed = row.status == "reviewed" and row.final_band is not None
            totals["items"] += 1
            if reviewed and row.final_categories is None:
                # band set on appeal without a category decision: the model's categories stand, unjudged
                totals["reviewed"] += 1
                cats, band = model, row.final_band
            elif reviewed:
                final = present_categories(row.final_categories)
                totals["reviewed"] += 1
                totals["false_positives"] += not final
                flagged.update(model)
                kept.update(model & final)
                added.update(final - model)
                cats, band = final, row.final_band
            else:
                totals["open"] += 1
                totals["awaiting_second"] += row.status == "awaiting_second"
                cats, band = model, row.band
            by_category.update(cats)
            by_band[band] += 1
            by_partner[row.partner or NO_PARTNER] += 1
            by_week[iso_week(row.created_at)] += 1

        decisions: Counter[str] = Counter()
        item_reviews: dict[int, list[tuple[str, set[str]]]] = defaultdict(list)
        for r in conn.execute(review_q):
            decisions[r.decision] += 1
            if r.decision != "second_confirm":  # copies the first decision: not an independent judgment
                item_reviews[r.item_id].append((r.band, present_categories(r.categories)))

    multi = {item: revs for item, revs in item_reviews.items() if len(revs) >= 2}
    band_agree = sum(len({band for band, _ in revs}) == 1 for revs in multi.values())
    cat_items: Counter[str] = Counter()
    cat_agree: Counter[str] = Counter()
    for item, revs in multi.items():
        # A category is judged on an item when the model or any reviewer marked it; the rest would
        # agree trivially (nobody saw it) and hide real disagreement.
        for cat in set[str]().union(model_cats.get(item, set()), *(cats for _, cats in revs)):
            cat_items[cat] += 1
            cat_agree[cat] += len({cat in cats for _, cats in revs}) == 1

    all_cats = _ordered_categories([*by_category, *flagged, *added, *cat_items])
    bands = [b.value for b in BAND_ORDER] + sorted(set(by_band) - {b.value for b in BAND_ORDER})
    return {
        "period": {
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
        },
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "totals": dict(totals),
        "by_category": {c: by_category[c] for c in all_cats},
        "by_band": {b: by_band[b] for b in bands},
        "by_partner": dict(sorted(by_partner.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_week": {w: by_week[w] for w in _week_range(by_week)},
        "decisions": dict(sorted(decisions.items())),
        "precision": {
            c: {"flagged": flagged[c], "kept": kept[c], "added": added[c], "precision": _ratio(kept[c], flagged[c])}
            for c in all_cats
        },
        "agreement": {
            "items": len(multi),
            "band_agree": band_agree,
            "band_agreement": _ratio(band_agree, len(multi)),
            "by_category": {
                c: {"items": cat_items[c], "agree": cat_agree[c], "agreement": _ratio(cat_agree[c], cat_items[c])}
                for c in all_cats
            },
        },
    }


# --- CSV ----------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A spreadsheet-safe cell: no formula injection from names that start with = + - @ (OWASP)."""
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not isinstance(value, int | float):
        return "'" + text
    return text


def report_rows(data: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The report as tidy (section, key, value) rows; None values mean 'not defined' (no items to judge)."""
    rows: list[tuple[str, str, Any]] = []
    rows += [("period", k, v) for k, v in data["period"].items()]
    rows.append(("period", "generated_at", data.get("generated_at")))
    rows += [("totals", k, v) for k, v in data["totals"].items()]
    for section in ("by_category", "by_band", "by_partner", "by_week", "decisions"):
        rows += [(section, k, v) for k, v in data[section].items()]
    for field in ("precision", "flagged", "kept", "added"):
        rows += [(f"model_{field}", c, p[field]) for c, p in data["precision"].items()]
    agreement = data["agreement"]
    rows += [("reviewer_agreement", k, agreement[k]) for k in ("items", "band_agree", "band_agreement")]
    for field in ("agreement", "items", "agree"):
        rows += [(f"category_{field}", c, a[field]) for c, a in agreement["by_category"].items()]
    return rows


def report_csv(data: Mapping[str, Any]) -> str:
    """Tidy CSV (section, key, value) that opens cleanly in a spreadsheet; empty value = not defined."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["section", "key", "value"])
    for section, key, value in report_rows(data):
        writer.writerow([section, _cell(key), _cell(value)])
    return buf.getvalue()


# --- charts -------------------------------------------------------------------------------------------------


def _figure(width: float = 8.0, height: float = 5.0) -> Figure:
    """A figure on the Agg canvas (no pyplot: no global state, safe in a server thread)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _no_data(fig: Figure, title: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=14, loc="left")
    ax.text(0.5, 0.5, "no data in this period", ha="center", va="center", fontsize=13, color="#666666")
    ax.set_axis_off()
    return fig


def category_chart(data: Mapping[str, Any]) -> Figure:
    """Items per category, horizontal bars, largest on top."""
    title = "Flagged items by category"
    counts = [(c, n) for c, n in data["by_category"].items() if n > 0]
    fig = _figure(8, max(3.0, 0.45 * len(counts) + 1.5))
    if not counts:
        return _no_data(fig, title)
    counts.sort(key=lambda cn: (cn[1], cn[0]))  # barh draws bottom-up: largest last = on top
    ax = fig.add_subplot()
    bars = ax.barh([c for c, _ in counts], [n for _, n in counts], color=_BAR)
    ax.bar_label(bars, padding=3)
    ax.set_title(title, fontsize=14, loc="left")
    ax.set_xlabel("items (severity >= 1; reviewers' decision where reviewed)")
    ax.margins(x=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def band_chart(data: Mapping[str, Any]) -> Figure:
    """Items per band, in band order P < K < T13 < T16 < T18 < C."""
    title = "Flagged items by band"
    fig = _figure()
    bands = list(data["by_band"])
    values = [data["by_band"][b] for b in bands]
    if not any(values):
        return _no_data(fig, title)
    ax = fig.add_subplot()
    bars = ax.bar(bands, values, color=[_BAND_COLOURS.get(b, "#888888") for b in bands])
    ax.bar_label(bars, padding=3)
    ax.set_title(title, fontsize=14, loc="left")
    ax.set_ylabel("items (reviewers' band where reviewed)")
    ax.margins(y=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def week_chart(data: Mapping[str, Any]) -> Figure:
    """Items per ISO week, a line with a point per week."""
    title = "Flagged items per week"
    fig = _figure(9, 5)
    weeks = list(data["by_week"])
    if not weeks:
        return _no_data(fig, title)
    values = [data["by_week"][w] for w in weeks]
    ax = fig.add_subplot()
    ax.plot(range(len(weeks)), values, marker="o", color=_BAR, linewidth=2)
    step = max(1, len(weeks) // 12)
    ax.set_xticks(range(0, len(weeks), step), [weeks[i] for i in range(0, len(weeks), step)], rotation=45, ha="right")
    ax.set_ylim(bottom=0, top=max(values) * 1.15 + 1)
    ax.set_title(title, fontsize=14, loc="left")
    ax.set_ylabel("items")
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def precision_chart(data: Mapping[str, Any]) -> Figure:
    """Model precision per category as reviewers judged it (0-1), with the number of items behind each bar."""
    title = "Model precision by category (share of model flags reviewers kept)"
    judged = [(c, p) for c, p in data["precision"].items() if p["flagged"] > 0]
    fig = _figure(8, max(3.0, 0.45 * len(judged) + 1.5))
    if not judged:
        return _no_data(fig, title)
    judged.sort(key=lambda cp: (cp[1]["precision"], cp[0]))  # barh draws bottom-up: best on top
    ax = fig.add_subplot()
    values = [p["precision"] for _, p in judged]
    bars = ax.barh([c for c, _ in judged], values, color=_BAR)
    ax.bar_label(bars, labels=[f"{p['precision']:.2f} (n={p['flagged']})" for _, p in judged], padding=3)
    ax.set_xlim(0, 1.25)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.axvline(1.0, color="#999999", linewidth=0.8)
    ax.set_title(title, fontsize=13, loc="left")
    ax.set_xlabel("precision (reviewed items only)")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


CHARTS = {
    "by_category": category_chart,
    "by_band": band_chart,
    "by_week": week_chart,
    "precision": precision_chart,
}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def report_charts(data: Mapping[str, Any]) -> dict[str, bytes]:
    """PNG charts keyed by name: by_category, by_band, by_week, precision."""
    return {name: _png(make(data)) for name, make in CHARTS.items()}


# --- PDF ----------------------------------------------------------------------------------------------------


def _title_page(data: Mapping[str, Any], title: str) -> Figure:
    fig = Figure(figsize=(8.27, 11.69), dpi=100)  # A4 portrait
    FigureCanvasAgg(fig)
    period = data["period"]
    span = f"{period['start'] or 'the beginning'} to {period['end'] or 'today'}"
    title_lines = textwrap.wrap(title, width=42) or [""]
    fig.text(0.08, 0.93, "\n".join(title_lines), fontsize=20, weight="bold", va="top", linespacing=1.3)
    y = 0.93 - 0.035 * len(title_lines) - 0.02
    fig.text(0.08, y, f"Items flagged from {span} (UTC)", fontsize=12, va="top")
    fig.text(0.08, y - 0.025, f"Generated {data.get('generated_at', '')}", fontsize=10, color="#555555", va="top")

    totals = data["totals"]
    agreement = data["agreement"]
    band_agreement = agreement["band_agreement"]
    agree_text = f"{agreement['band_agree']}/{agreement['items']}"
    rows = [
        ["Flagged items", str(totals["items"])],
        ["Reviewed", str(totals["reviewed"])],
        ["Open (not yet reviewed)", str(totals["open"])],
        ["    of which awaiting a second reviewer", str(totals.get("awaiting_second", 0))],
        ["False positives (reviewers kept no category)", str(totals["false_positives"])],
        ["Items with two or more independent reviews", str(agreement["items"])],
        ["Reviewers agree on band", "n/a" if band_agreement is None else f"{band_agreement:.0%} ({agree_text})"],
    ]
    top = y - 0.08
    height = 0.035 * (len(rows) + 1)
    ax = fig.add_axes((0.08, top - height, 0.84, height))
    ax.set_axis_off()
    ax.set_title("Totals", loc="left", fontsize=14, pad=8)
    table = ax.table(
        cellText=rows,
        colLabels=["Measure", "Value"],
        colWidths=[0.72, 0.28],
        bbox=Bbox.from_bounds(0, 0, 1, 1),
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(11)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#bbbbbb")
        if row == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8eef3")
    fig.text(
        0.08,
        top - height - 0.03,
        "Counts use the reviewers' decision for reviewed items and the model's reading otherwise;\n"
        "a category counts at severity >= 1. Model precision: among reviewed items the model flagged\n"
        "for a category, the share the reviewers kept. Agreement compares independent decisions\n"
        "(a second reviewer's confirmation of a C decision is not counted).",
        fontsize=9,
        color="#555555",
        va="top",
        linespacing=1.5,
    )
    return fig


def report_pdf(data: Mapping[str, Any], title: str) -> bytes:
    """A PDF: a title page with the totals table, then one chart per page."""
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": title, "Creator": "vicas review console"}) as pdf:
        pdf.savefig(_title_page(data, title))
        for make in CHARTS.values():
            pdf.savefig(make(data))
    return buf.getvalue()
