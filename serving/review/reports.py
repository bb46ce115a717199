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
- severe items seen (reviewer wellbeing): items a reviewer opened whose model categories reach severity 3
  (serving.review.service.SEVERE_SEVERITY), each counted once per reviewer and day; the days are Vietnam's
  (a reviewer's working day) and the period selects them by the day of the view, not of the item;
- reviewer agreement compares independent decisions (confirm, change, false_positive) on items with two or
  more of them; a `second_confirm` copies the first reviewer's decision, so counting it would read as
  agreement by construction. Per category, an item is judged when the model or any reviewer marked the
  category (the rest agree trivially), and reviewers agree when all mark it present or all absent.

Language: the renderers take `lang` (Vietnamese by default, or English). Titles, axes, labels, CSV headers
and names of categories, bands and decisions come from the console's gettext catalogue (serving/review/i18n.py);
dates read dd/MM/yyyy and times are Vietnam's (Asia/Ho_Chi_Minh); numbers take the language's decimal mark.
The CSV starts with a UTF-8 byte order mark and keeps the ids (section and measure codes) in its last two
columns for scripts; charts and the PDF use DejaVu Sans (shipped with matplotlib: every Vietnamese letter).
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from babel.numbers import get_decimal_symbol
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import Bbox
from sqlalchemy import Engine, select
from sqlalchemy.sql.elements import ColumnElement

from serving.db import as_utc, flagged_items, reviews
from serving.review.i18n import (
    DEFAULT_LANG,
    N_,
    band_label,
    category_name,
    format_number,
    format_share,
    gettext,
    local_date,
    local_datetime,
    name_of,
    normalise,
    week_label,
)
from vicas.taxonomy import BAND_ORDER, CATEGORIES

NO_PARTNER = "(none)"
BOM = "\ufeff"  # UTF-8 byte order mark: Excel reads the CSV as UTF-8
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


def iso_week(value: datetime) -> str:
    """ISO 8601 week of a timestamp (UTC), e.g. '2026-W48'."""
    year, week, _ = as_utc(value).isocalendar()
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

    from serving.review.service import severe_views

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
        # what the reviewers saw: severe items opened per reviewer and day (Vietnam's days in the period)
        "severe_views": severe_views(engine, start, end),
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


# --- labels -------------------------------------------------------------------------------------------------

SECTION_TITLES: dict[str, str] = {
    "period": N_("Period"),
    "totals": N_("Totals"),
    "by_category": N_("Items by category"),
    "by_band": N_("Items by band"),
    "by_partner": N_("Items by partner"),
    "by_week": N_("Items by week"),
    "decisions": N_("Reviewers' decisions"),
    "model_precision": N_("Model precision (share of the model's flags that reviewers kept)"),
    "model_flagged": N_("Reviewed items the model flagged"),
    "model_kept": N_("Model flags the reviewers kept"),
    "model_added": N_("Categories the reviewers added (the model missed them)"),
    "reviewer_agreement": N_("Reviewer agreement"),
    "category_agreement": N_("Reviewer agreement by category (share)"),
    "category_items": N_("Items with two or more independent reviews, by category"),
    "category_agree": N_("Items where the reviewers agree, by category"),
    "severe_views": N_("Severe items seen per reviewer and day (a category at severity 3; each item once a day)"),
}
KEY_LABELS: dict[str, dict[str, str]] = {
    "period": {"start": N_("From"), "end": N_("To"), "generated_at": N_("Generated at")},
    "totals": {
        "items": N_("Flagged items"),
        "reviewed": N_("Reviewed"),
        "open": N_("Open (not yet reviewed)"),
        "awaiting_second": N_("of which awaiting a second reviewer"),
        "false_positives": N_("False positives (reviewers kept no category)"),
    },
    "severe_views": {"total": N_("All reviewers, all days")},
    "reviewer_agreement": {
        "items": N_("Items with two or more independent reviews"),
        "band_agree": N_("Items where the reviewers agree on the band"),
        "band_agreement": N_("Agreement on the band (share)"),
    },
}
_CATEGORY_SECTIONS = {
    "by_category",
    "model_precision",
    "model_flagged",
    "model_kept",
    "model_added",
    "category_agreement",
    "category_items",
    "category_agree",
}
_SHARES = {("model_precision", None), ("category_agreement", None), ("reviewer_agreement", "band_agreement")}
CSV_HEADER: tuple[str, ...] = (N_("Section"), N_("Measure"), N_("Value"), N_("Section code"), N_("Measure code"))
CHART_TITLES: dict[str, str] = {
    "by_category": N_("Flagged items by category"),
    "by_band": N_("Flagged items by band"),
    "by_week": N_("Flagged items per week"),
    "precision": N_("Model precision by category (share of the model's flags that reviewers kept)"),
}
DEFAULT_TITLE = N_("vicas: content review report")


def key_label(lang: str, section: str, key: str) -> str:
    """A report row's key (a category, band, week, decision or measure id) in `lang`."""
    if section in KEY_LABELS and key in KEY_LABELS[section]:
        return gettext(lang, KEY_LABELS[section][key])
    if section in _CATEGORY_SECTIONS:
        return category_name(lang, key) if key in CATEGORIES else key  # a name outside the contract stays
    if section == "by_band":
        return band_label(lang, key)
    if section == "by_week":
        return week_label(lang, key)
    if section == "decisions":
        return name_of("decision", lang, key)
    if section == "by_partner" and key == NO_PARTNER:
        return gettext(lang, N_("(no partner)"))
    if section == "severe_views":  # "reviewer/YYYY-MM-DD"
        reviewer, _, day = key.rpartition("/")
        return f"{reviewer}, {local_date(lang, day)}"
    return key


def _is_share(section: str, key: str) -> bool:
    return (section, None) in _SHARES or (section, key) in _SHARES


def value_text(lang: str, section: str, key: str, value: Any) -> str:
    """A report value for people: dates dd/MM/yyyy, times in Vietnam's time, shares as percentages."""
    if section == "period":
        if value is None:
            return "—"
        return local_datetime(lang, value) if key == "generated_at" else local_date(lang, value)
    if _is_share(section, key):
        return format_share(lang, value)
    if value is None:
        return gettext(lang, N_("not defined"))
    return str(value)


@dataclass
class Section:
    code: str
    title: str
    rows: list[tuple[str, str, str]]  # (key id, key label, value text)


def report_sections(data: Mapping[str, Any], lang: str = DEFAULT_LANG) -> list[Section]:
    """The report as titled tables in `lang` (the reports page and the PDF show them)."""
    sections: dict[str, Section] = {}
    for section, key, value in report_rows(data):
        if section not in sections:
            sections[section] = Section(section, gettext(lang, SECTION_TITLES[section]), [])
        sections[section].rows.append((key, key_label(lang, section, key), value_text(lang, section, key, value)))
    return list(sections.values())


def chart_titles(lang: str = DEFAULT_LANG) -> dict[str, str]:
    return {name: gettext(lang, title) for name, title in CHART_TITLES.items()}


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
    views = data.get("severe_views", {})
    rows.append(("severe_views", "total", sum(n for days in views.values() for n in days.values())))
    rows += [("severe_views", f"{r}/{day}", n) for r, days in views.items() for day, n in days.items()]
    return rows


def _csv_value(lang: str, section: str, key: str, value: Any) -> str:
    """Numbers with the language's decimal mark (0,5 in Vietnamese: what Excel reads there); dates
    dd/MM/yyyy and times in Vietnam's time; empty = not defined."""
    if value is None:
        return ""
    if section == "period":
        return value_text(lang, section, key, value)
    if isinstance(value, float):
        return str(value).replace(".", get_decimal_symbol(normalise(lang)))
    return _cell(value)


def report_csv(data: Mapping[str, Any], lang: str = DEFAULT_LANG) -> str:
    """Tidy CSV that opens cleanly in a spreadsheet: a UTF-8 byte order mark (Excel then reads Vietnamese
    right), headers and labels in `lang`, then the ids (section code, measure code) for scripts."""
    buf = io.StringIO()
    buf.write(BOM)
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([gettext(lang, h) for h in CSV_HEADER])
    for section, key, value in report_rows(data):
        writer.writerow(
            [
                _cell(gettext(lang, SECTION_TITLES[section])),
                _cell(key_label(lang, section, key)),
                _csv_value(lang, section, key, value),
                section,
                _cell(key),
            ]
        )
    return buf.getvalue()


# --- charts -------------------------------------------------------------------------------------------------

# DejaVu Sans ships inside matplotlib and has every Vietnamese letter; TrueType embedding (42) keeps the PDF's
# text searchable and copyable. rc_context is process-global: concurrent renders all set these same values.
_RC: Any = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Noto Sans", "Liberation Sans"],
    "pdf.fonttype": 42,
    "axes.formatter.use_locale": False,
}


def _figure(width: float = 8.0, height: float = 5.0) -> Figure:
    """A figure on the Agg canvas (no pyplot: no global state, safe in a server thread)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _count_axis(axis: Any, lang: str) -> None:
    """Whole numbers on a count axis, written the language's way (1.234 in Vietnamese)."""
    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: format_number(lang, round(v), 0)))


def _no_data(fig: Figure, title: str, lang: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=14, loc="left")
    no_data = gettext(lang, N_("no data in this period"))
    ax.text(0.5, 0.5, no_data, ha="center", va="center", fontsize=13, color="#666666")
    ax.set_axis_off()
    return fig


def category_chart(data: Mapping[str, Any], lang: str = DEFAULT_LANG) -> Figure:
    """Items per category, horizontal bars, largest on top."""
    title = gettext(lang, CHART_TITLES["by_category"])
    counts = [(c, n) for c, n in data["by_category"].items() if n > 0]
    fig = _figure(8, max(3.0, 0.45 * len(counts) + 1.5))
    if not counts:
        return _no_data(fig, title, lang)
    counts.sort(key=lambda cn: (cn[1], cn[0]))  # barh draws bottom-up: largest last = on top
    ax = fig.add_subplot()
    bars = ax.barh([key_label(lang, "by_category", c) for c, _ in counts], [n for _, n in counts], color=_BAR)
    ax.bar_label(bars, padding=3)
    ax.set_title(title, fontsize=14, loc="left")
    ax.set_xlabel(gettext(lang, N_("items (severity 1 or more; the reviewers' decision where reviewed)")))
    _count_axis(ax.xaxis, lang)
    ax.margins(x=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def band_chart(data: Mapping[str, Any], lang: str = DEFAULT_LANG) -> Figure:
    """Items per band, in band order P < K < T13 < T16 < T18 < C."""
    title = gettext(lang, CHART_TITLES["by_band"])
    fig = _figure()
    bands = list(data["by_band"])
    values = [data["by_band"][b] for b in bands]
    if not any(values):
        return _no_data(fig, title, lang)
    ax = fig.add_subplot()
    bars = ax.bar(bands, values, color=[_BAND_COLOURS.get(b, "#888888") for b in bands])
    ax.bar_label(bars, padding=3)
    ax.set_title(title, fontsize=14, loc="left")
    ax.set_ylabel(gettext(lang, N_("items (the reviewers' band where reviewed)")))
    _count_axis(ax.yaxis, lang)
    ax.margins(y=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def week_chart(data: Mapping[str, Any], lang: str = DEFAULT_LANG) -> Figure:
    """Items per ISO week, a line with a point per week."""
    title = gettext(lang, CHART_TITLES["by_week"])
    fig = _figure(9, 5)
    weeks = list(data["by_week"])
    if not weeks:
        return _no_data(fig, title, lang)
    values = [data["by_week"][w] for w in weeks]
    ax = fig.add_subplot()
    ax.plot(range(len(weeks)), values, marker="o", color=_BAR, linewidth=2)
    step = max(1, len(weeks) // 12)
    ticks = range(0, len(weeks), step)
    ax.set_xticks(ticks, [week_label(lang, weeks[i]) for i in ticks], rotation=45, ha="right")
    ax.set_ylim(bottom=0, top=max(values) * 1.15 + 1)
    ax.set_title(title, fontsize=14, loc="left")
    ax.set_ylabel(gettext(lang, N_("items")))
    _count_axis(ax.yaxis, lang)
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def precision_chart(data: Mapping[str, Any], lang: str = DEFAULT_LANG) -> Figure:
    """Model precision per category as reviewers judged it (0-1), with the number of items behind each bar."""
    title = gettext(lang, CHART_TITLES["precision"])
    judged = [(c, p) for c, p in data["precision"].items() if p["flagged"] > 0]
    fig = _figure(8, max(3.0, 0.45 * len(judged) + 1.5))
    if not judged:
        return _no_data(fig, "\n".join(textwrap.wrap(title, 60)), lang)
    judged.sort(key=lambda cp: (cp[1]["precision"], cp[0]))  # barh draws bottom-up: best on top
    ax = fig.add_subplot()
    values = [p["precision"] for _, p in judged]
    bars = ax.barh([key_label(lang, "model_precision", c) for c, _ in judged], values, color=_BAR)
    ax.bar_label(
        bars, labels=[f"{format_number(lang, p['precision'], 2)} (n={p['flagged']})" for _, p in judged], padding=3
    )
    ax.set_xlim(0, 1.25)
    ticks = [0, 0.25, 0.5, 0.75, 1.0]
    ax.set_xticks(ticks, [format_number(lang, t, 2) for t in ticks])
    ax.axvline(1.0, color="#999999", linewidth=0.8)
    ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=13, loc="left")
    ax.set_xlabel(gettext(lang, N_("precision (reviewed items only)")))
    ax.spines[["top", "right"]].set_visible(False)
    return fig


CHARTS: dict[str, Callable[[Mapping[str, Any], str], Figure]] = {
    "by_category": category_chart,
    "by_band": band_chart,
    "by_week": week_chart,
    "precision": precision_chart,
}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def report_chart_png(data: Mapping[str, Any], name: str, lang: str = DEFAULT_LANG) -> bytes:
    """One chart (a key of CHARTS) as PNG, its text in `lang`."""
    with rc_context(_RC):
        return _png(CHARTS[name](data, lang))


def report_charts(data: Mapping[str, Any], lang: str = DEFAULT_LANG) -> dict[str, bytes]:
    """PNG charts keyed by name: by_category, by_band, by_week, precision; their text in `lang`."""
    with rc_context(_RC):
        return {name: _png(make(data, lang)) for name, make in CHARTS.items()}


# --- PDF ----------------------------------------------------------------------------------------------------


def _title_page(data: Mapping[str, Any], title: str, lang: str) -> Figure:
    fig = Figure(figsize=(8.27, 11.69), dpi=100)  # A4 portrait
    FigureCanvasAgg(fig)
    period = data["period"]
    start = local_date(lang, period["start"]) if period["start"] else gettext(lang, N_("the beginning"))
    end = local_date(lang, period["end"]) if period["end"] else gettext(lang, N_("today"))
    title_lines = textwrap.wrap(title, width=42) or [""]
    fig.text(0.08, 0.93, "\n".join(title_lines), fontsize=20, weight="bold", va="top", linespacing=1.3)
    y = 0.93 - 0.035 * len(title_lines) - 0.02
    span = gettext(lang, N_("Items flagged from %(start)s to %(end)s (dates in UTC)")) % {"start": start, "end": end}
    fig.text(0.08, y, span, fontsize=12, va="top")
    generated = gettext(lang, N_("Generated %(when)s (Vietnam time)")) % {
        "when": local_datetime(lang, data.get("generated_at"))
    }
    fig.text(0.08, y - 0.025, generated, fontsize=10, color="#555555", va="top")

    totals = data["totals"]
    agreement = data["agreement"]
    band_agreement = agreement["band_agreement"]
    agree_text = format_share(lang, band_agreement)
    if band_agreement is not None:
        agree_text += f" ({agreement['band_agree']}/{agreement['items']})"
    rows = [
        [key_label(lang, "totals", "items"), str(totals["items"])],
        [key_label(lang, "totals", "reviewed"), str(totals["reviewed"])],
        [key_label(lang, "totals", "open"), str(totals["open"])],
        ["    " + key_label(lang, "totals", "awaiting_second"), str(totals.get("awaiting_second", 0))],
        [key_label(lang, "totals", "false_positives"), str(totals["false_positives"])],
        [key_label(lang, "reviewer_agreement", "items"), str(agreement["items"])],
        [
            gettext(lang, N_("Reviewers agree on the band")),
            agree_text,
        ],
    ]
    top = y - 0.08
    height = 0.035 * (len(rows) + 1)
    ax = fig.add_axes((0.08, top - height, 0.84, height))
    ax.set_axis_off()
    ax.set_title(gettext(lang, SECTION_TITLES["totals"]), loc="left", fontsize=14, pad=8)
    table = ax.table(
        cellText=rows,
        colLabels=[gettext(lang, N_("Measure")), gettext(lang, N_("Value"))],
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
    note = gettext(
        lang,
        N_(
            "Counts use the reviewers' decision for reviewed items and the model's reading otherwise; a "
            "category counts at severity 1 or more. Model precision: among reviewed items the model flagged "
            "for a category, the share the reviewers kept. Agreement compares independent decisions (a second "
            "reviewer's confirmation of a C decision is not counted)."
        ),
    )
    fig.text(
        0.08,
        top - height - 0.03,
        "\n".join(textwrap.wrap(note, 95)),
        fontsize=9,
        color="#555555",
        va="top",
        linespacing=1.5,
    )
    return fig


def pdf_strings(data: Mapping[str, Any], title: str | None = None, lang: str = DEFAULT_LANG) -> list[str]:
    """Every piece of text the PDF's pages draw (the tests read them to check the language)."""
    with rc_context(_RC):
        figures = [_title_page(data, gettext(lang, DEFAULT_TITLE) if title is None else title, lang)]
        figures += [make(data, lang) for make in CHARTS.values()]
    out: list[str] = []
    for fig in figures:
        out += [t.get_text() for t in fig.findobj(Text) if t.get_text().strip()]
    return out


def report_pdf(data: Mapping[str, Any], title: str | None = None, lang: str = DEFAULT_LANG) -> bytes:
    """A PDF: a title page with the totals table, then one chart per page, its text in `lang`."""
    title = gettext(lang, DEFAULT_TITLE) if title is None else title
    buf = io.BytesIO()
    with rc_context(_RC), PdfPages(buf, metadata={"Title": title, "Creator": "vicas"}) as pdf:
        pdf.savefig(_title_page(data, title, lang))
        for make in CHARTS.values():
            pdf.savefig(make(data, lang))
    return buf.getvalue()
