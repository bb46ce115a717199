"""Review-console reports (counts, model precision, reviewer agreement, CSV/PNG/PDF) and blocklists."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from serving.db import flagged_items, make_engine, migrate, reviews, verdicts
from serving.review.blocklists import (
    Entry,
    blocklist_entries,
    csv_list,
    hosts_file,
    normalise_host,
    rpz_zone,
    soa_serial,
    verify_checksum,
)
from serving.review.reports import PNG_SIGNATURE, report_charts, report_csv, report_data, report_pdf
from vicas.taxonomy import CATEGORIES, Band

NOW = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    migrate(url)
    db = make_engine(url)
    yield db
    db.dispose()


def _model(**cats: tuple[float, int]) -> str:
    return json.dumps({c: {"score": s, "severity": v} for c, (s, v) in cats.items()})


def _item(
    i: int,
    created: datetime,
    partner: str | None,
    band: str,
    model: str,
    status: str = "open",
    final_band: str | None = None,
    final: dict[str, int] | None = None,
) -> dict[str, Any]:
    return {
        "id": i,
        "item_key": f"req-{i}:0",
        "content_hash": f"{i:064d}",
        "partner": partner,
        "url": f"https://site{i}.example/p",
        "domain": f"site{i}.example",
        "band": band,
        "categories": model,
        "evidence": "[]",
        "text": "redacted",
        "model_version": "m1",
        "policy_version": "p1",
        "status": status,
        "created_at": created,
        "final_band": final_band,
        "final_categories": None if final is None else json.dumps(final),
        "reviewed_at": created if status == "reviewed" else None,
    }


def _review(item_id: int, reviewer: str, decision: str, band: str, cats: dict[str, int], minute: int) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "reviewer": reviewer,
        "decision": decision,
        "band": band,
        "categories": json.dumps(cats),
        "note": "",
        "created_at": datetime(2026, 12, 20, 9, minute, tzinfo=UTC),
    }


def _at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def seeded(engine):
    items = [
        # reviewed: reviewers kept sexual, dropped profanity
        _item(
            1,
            _at(11, 23),
            "telco-a",
            "T18",
            _model(sexual=(0.9, 3), profanity=(0.7, 2)),
            "reviewed",
            "T18",
            {"sexual": 3},
        ),
        # reviewed: kept violence, added harassment
        _item(
            2,
            _at(11, 24),
            "telco-a",
            "T16",
            _model(violence=(0.8, 2)),
            "reviewed",
            "T16",
            {"violence": 2, "harassment": 1},
        ),
        # false positive (profanity at severity 0 is not a flag)
        _item(3, _at(11, 25), "school-b", "T13", _model(gambling=(0.6, 1), profanity=(0.4, 0)), "reviewed", "P", {}),
        # C, confirmed by a second reviewer
        _item(4, _at(12, 1), "telco-a", "C", _model(child_sexual=(0.95, 3)), "reviewed", "C", {"child_sexual": 3}),
        _item(5, _at(12, 2), None, "T16", _model(violence=(0.7, 2), profanity=(0.6, 1))),
        _item(6, _at(12, 15), "school-b", "C", _model(self_harm=(0.9, 3)), "awaiting_second"),
        _item(7, _at(10, 1), "old", "T18", _model(sexual=(0.9, 3))),  # outside the November-December period
    ]
    revs = [
        _review(1, "an", "confirm", "T18", {"sexual": 3, "profanity": 2}, 1),
        _review(1, "binh", "change", "T18", {"sexual": 3}, 2),
        _review(2, "an", "change", "T18", {"violence": 3}, 3),
        _review(2, "binh", "change", "T16", {"violence": 2, "harassment": 1}, 4),
        _review(3, "an", "false_positive", "P", {}, 5),
        _review(4, "an", "confirm", "C", {"child_sexual": 3}, 6),
        _review(4, "binh", "second_confirm", "C", {"child_sexual": 3}, 7),
        _review(6, "an", "confirm", "C", {"self_harm": 3}, 8),
    ]
    with engine.begin() as conn:
        conn.execute(insert(flagged_items), items)
        conn.execute(insert(reviews), revs)
    return engine


# --- report data ----------------------------------------------------------------------------------------------


def test_report_counts(seeded):
    data = report_data(seeded, date(2026, 11, 20), date(2026, 12, 31))
    assert data["period"] == {"start": "2026-11-20", "end": "2026-12-31"}
    assert data["totals"] == {"items": 6, "reviewed": 4, "open": 2, "awaiting_second": 1, "false_positives": 1}
    by_cat = data["by_category"]
    assert list(by_cat) == list(CATEGORIES)
    assert {c: n for c, n in by_cat.items() if n} == {
        "sexual": 1,  # item 1 (reviewed); item 7 is outside the period
        "child_sexual": 1,
        "violence": 2,  # item 2 (reviewers) and item 5 (model, open)
        "self_harm": 1,
        "harassment": 1,  # added by reviewers on item 2
        "profanity": 1,  # item 5 only: reviewers dropped it on item 1
    }
    assert data["by_band"] == {"P": 1, "K": 0, "T13": 0, "T16": 2, "T18": 1, "C": 2}
    assert data["by_partner"] == {"telco-a": 3, "school-b": 2, "(none)": 1}
    assert data["by_week"] == {"2026-W48": 3, "2026-W49": 2, "2026-W50": 0, "2026-W51": 1}
    assert data["decisions"] == {"change": 3, "confirm": 3, "false_positive": 1, "second_confirm": 1}
    json.dumps(data)  # serialisable as is


def test_report_model_precision(seeded):
    prec = report_data(seeded, date(2026, 11, 20), date(2026, 12, 31))["precision"]
    assert prec["sexual"] == {"flagged": 1, "kept": 1, "added": 0, "precision": 1.0}
    assert prec["profanity"] == {"flagged": 1, "kept": 0, "added": 0, "precision": 0.0}
    assert prec["gambling"] == {"flagged": 1, "kept": 0, "added": 0, "precision": 0.0}
    assert prec["violence"] == {"flagged": 1, "kept": 1, "added": 0, "precision": 1.0}
    assert prec["child_sexual"]["precision"] == 1.0
    assert prec["harassment"] == {"flagged": 0, "kept": 0, "added": 1, "precision": None}
    assert prec["self_harm"]["precision"] is None  # item 6 is not reviewed yet


def test_report_precision_share(engine):
    # three reviewed items flagged for scam: reviewers kept two
    with engine.begin() as conn:
        conn.execute(
            insert(flagged_items),
            [
                _item(
                    i,
                    _at(11, 2),
                    "p",
                    "T16",
                    _model(scam=(0.8, 2)),
                    "reviewed",
                    "T16" if keep else "P",
                    {"scam": 2} if keep else {},
                )
                for i, keep in ((1, True), (2, True), (3, False))
            ],
        )
    data = report_data(engine)
    assert data["precision"]["scam"] == {"flagged": 3, "kept": 2, "added": 0, "precision": 0.6667}
    assert data["totals"]["false_positives"] == 1


def test_report_band_set_on_appeal_only(engine):
    # an appeal overturned an open item's band: no category decision, so it is not a false positive
    with engine.begin() as conn:
        conn.execute(
            insert(flagged_items),
            [
                _item(1, _at(11, 2), "p", "T18", _model(sexual=(0.8, 3)), "reviewed", "T13", None),
            ],
        )
    data = report_data(engine)
    assert data["totals"]["reviewed"] == 1 and data["totals"]["false_positives"] == 0
    assert data["by_band"]["T13"] == 1 and data["by_band"]["T18"] == 0
    assert data["by_category"]["sexual"] == 1
    assert data["precision"]["sexual"]["flagged"] == 0


def test_report_reviewer_agreement(seeded):
    agreement = report_data(seeded, date(2026, 11, 20), date(2026, 12, 31))["agreement"]
    # items 1 and 2 have two independent reviews; item 4's second_confirm copies the first and does not count
    assert agreement["items"] == 2
    assert agreement["band_agree"] == 1 and agreement["band_agreement"] == 0.5
    cats = agreement["by_category"]
    assert cats["sexual"] == {"items": 1, "agree": 1, "agreement": 1.0}
    assert cats["profanity"] == {"items": 1, "agree": 0, "agreement": 0.0}
    assert cats["violence"] == {"items": 1, "agree": 1, "agreement": 1.0}
    assert cats["harassment"] == {"items": 1, "agree": 0, "agreement": 0.0}  # one reviewer added it
    assert cats["hate"] == {"items": 0, "agree": 0, "agreement": None}


def test_report_period_bounds(seeded):
    everything = report_data(seeded)
    assert everything["totals"]["items"] == 7
    weeks = list(everything["by_week"])
    assert weeks[0] == "2026-W40" and weeks[-1] == "2026-W51" and len(weeks) == 12
    assert everything["by_category"]["sexual"] == 2
    # both ends inclusive: item 4 (1 December, 10:00 UTC) is in, item 1 (23 November) is out
    data = report_data(seeded, date(2026, 11, 24), date(2026, 12, 1))
    assert data["totals"]["items"] == 3
    assert data["by_partner"] == {"telco-a": 2, "school-b": 1}
    assert report_data(seeded, date(2027, 1, 1))["totals"]["items"] == 0
    with pytest.raises(ValueError):
        report_data(seeded, date(2026, 12, 2), date(2026, 12, 1))


# --- CSV, charts, PDF -----------------------------------------------------------------------------------------


def test_report_csv_is_tidy(seeded):
    data = report_data(seeded, date(2026, 11, 20), date(2026, 12, 31))
    data["by_partner"]['=HYPERLINK("http://x")'] = 1
    text = report_csv(data, "en")  # numbers with a decimal point; "vi" writes 0,5
    assert text.startswith("\ufeff")  # a UTF-8 byte order mark: Excel reads the file as UTF-8
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == ["Section", "Measure", "Value", "Section code", "Measure code"]
    assert all(len(r) == 5 for r in rows)
    table = {(s, k): v for _, _, v, s, k in rows[1:]}  # by the ids in the last two columns
    assert table["totals", "items"] == "6"
    assert table["totals", "false_positives"] == "1"
    assert table["by_band", "C"] == "2"
    assert table["by_week", "2026-W50"] == "0"
    assert table["model_precision", "profanity"] == "0.0"
    assert table["model_precision", "sexual"] == "1.0"
    assert table["model_precision", "hate"] == ""  # not defined: nothing to judge
    assert table["model_flagged", "gambling"] == "1"
    assert table["reviewer_agreement", "band_agreement"] == "0.5"
    assert table["category_agreement", "profanity"] == "0.0"
    assert table["by_partner", '\'=HYPERLINK("http://x")'] == "1"  # no formula reaches a spreadsheet
    assert ["Items by partner", '\'=HYPERLINK("http://x")'] in [r[:2] for r in rows]  # nor through the labels
    vi = {(r[3], r[4]): r for r in csv.reader(io.StringIO(report_csv(data, "vi").removeprefix("\ufeff")))}
    assert vi["reviewer_agreement", "band_agreement"][:3] == [
        "Mức đồng thuận của người duyệt",
        "Tỷ lệ thống nhất nhóm tuổi",
        "0,5",
    ]
    assert vi["by_category", "self_harm"][1] == "Tự gây thương tích, tự sát"


def test_report_charts_are_png(seeded, engine):
    charts = report_charts(report_data(seeded))
    assert set(charts) == {"by_category", "by_band", "by_week", "precision"}
    for png in charts.values():
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    # an empty period still renders, with a "no data" note
    empty = report_charts(report_data(engine, date(2030, 1, 1), date(2030, 1, 31)))
    assert all(png.startswith(PNG_SIGNATURE) for png in empty.values())


def test_report_pdf(seeded):
    data = report_data(seeded, date(2026, 11, 20), date(2026, 12, 31))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdf = report_pdf(data, "Báo cáo định kỳ: tháng 11-12/2026")
    assert pdf.startswith(b"%PDF")
    assert not [w for w in caught if "Glyph" in str(w.message)]  # Vietnamese title renders
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 5  # title page + four charts


# --- blocklists -----------------------------------------------------------------------------------------------


def _verdict(url: str, domain: str, band: str, source: str = "reviewed", when: datetime = NOW) -> dict[str, Any]:
    return {"url": url, "domain": domain, "band": band, "source": source, "updated_at": when}


IDN = "cá-độ.vn"


@pytest.fixture
def listed(engine):
    with engine.begin() as conn:
        conn.execute(
            insert(verdicts),
            [
                _verdict("https://www.bad-casino.example/play", "bad-casino.example", "C"),
                _verdict("https://bad-casino.example/other", "bad-casino.example", "T18"),
                _verdict("https://adult.example/x", "adult.example", "T18"),
                _verdict("https://teen.example/y", "teen.example", "T16"),
                _verdict("https://model-only.example/z", "model-only.example", "C", source="model"),
                _verdict("http://10.0.0.1/p", "10.0.0.1", "T18"),
                _verdict(f"https://{IDN}/vao", IDN, "T18"),
                _verdict("https://evil/inject", "evil.example\n0.0.0.0 google.com", "C"),
            ],
        )
    return engine


def _body(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(("#", ";"))]


def test_blocklist_entries_reviewed_only(listed):
    entries = blocklist_entries(listed, Band.T18)
    assert entries == sorted(entries)
    assert {e.url for e in entries} == {
        "https://www.bad-casino.example/play",
        "https://bad-casino.example/other",
        "https://adult.example/x",
        "http://10.0.0.1/p",
        f"https://{IDN}/vao",
        "https://evil/inject",
    }
    by_url = {e.url: e for e in entries}
    assert by_url["http://10.0.0.1/p"].host == ""  # no DNS name to block
    assert by_url["https://evil/inject"].host == ""  # never a line break into a zone file
    assert by_url[f"https://{IDN}/vao"].host == IDN.encode("idna").decode()
    assert all(e.updated_at.tzinfo is not None for e in entries)
    assert {e.url for e in blocklist_entries(listed, Band.C)} == {
        "https://www.bad-casino.example/play",
        "https://evil/inject",
    }
    assert "https://teen.example/y" in {e.url for e in blocklist_entries(listed, Band.T16)}
    assert all("model-only" not in e.url for e in blocklist_entries(listed, Band.P))


def test_hosts_file(listed):
    idn = IDN.encode("idna").decode()
    text = hosts_file(blocklist_entries(listed, Band.T16), Band.T18, now=NOW)
    assert text.startswith("#")
    assert "# version: 20261130123456" in text and "# min-band: T18" in text and "# hosts: 3" in text
    assert _body(text) == [
        "0.0.0.0 adult.example",
        ":: adult.example",
        "0.0.0.0 www.adult.example",
        ":: www.adult.example",
        "0.0.0.0 bad-casino.example",
        ":: bad-casino.example",
        "0.0.0.0 www.bad-casino.example",
        ":: www.bad-casino.example",
        f"0.0.0.0 {idn}",
        f":: {idn}",
        f"0.0.0.0 www.{idn}",
        f":: www.{idn}",
    ]
    assert "teen.example" not in text and "model-only" not in text and "google.com" not in text
    only_c = hosts_file(blocklist_entries(listed, Band.C), Band.C, now=NOW)
    assert _body(only_c) == [
        "0.0.0.0 bad-casino.example",
        ":: bad-casino.example",
        "0.0.0.0 www.bad-casino.example",
        ":: www.bad-casino.example",
    ]
    assert verify_checksum(text) and verify_checksum(only_c)


def test_rpz_zone(listed):
    text = rpz_zone(blocklist_entries(listed, Band.T18), Band.T18, now=NOW)
    assert text.startswith(";")
    serial = int(NOW.timestamp())
    assert soa_serial("20261130123456") == serial and 0 < serial < 2**32
    assert f"; serial: {serial}" in text and "; version: 20261130123456" in text
    body = _body(text)
    assert body[0] == "$TTL 300"
    assert re.fullmatch(rf"@ IN SOA \S+\. \S+\. {serial} \d+ \d+ \d+ \d+", body[1])
    assert re.fullmatch(r"@ IN NS \S+\.", body[2])
    records = body[3:]
    assert all(re.fullmatch(r"(\*\.)?[a-z0-9.-]+ CNAME \.", r) for r in records)
    names = {r.split()[0] for r in records}
    idn = IDN.encode("idna").decode()
    assert names == {h for host in ("adult.example", "bad-casino.example", idn) for h in (host, f"*.{host}")}
    assert "model-only" not in text and "teen.example" not in text and "google.com" not in text
    assert verify_checksum(text)


def test_csv_list(listed):
    text = csv_list(blocklist_entries(listed, Band.T18), Band.T18, now=NOW)
    assert "# version: 20261130123456" in text and "# entries: 6" in text
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert [r["url"] for r in rows] == [
        "http://10.0.0.1/p",
        "https://evil/inject",  # no host: listed by URL only
        "https://adult.example/x",
        "https://bad-casino.example/other",
        "https://www.bad-casino.example/play",
        f"https://{IDN}/vao",
    ]
    assert {r["band"] for r in rows} == {"T18", "C"}
    assert rows[2] == {
        "host": "adult.example",
        "url": "https://adult.example/x",
        "band": "T18",
        "updated_at": "2026-11-30T12:34:56+00:00",
    }
    assert verify_checksum(text)


def test_formats_filter_by_min_band_themselves():
    entries = [
        Entry("a.example", "https://a.example/", Band.T16, NOW),
        Entry("b.example", "https://b.example/", Band.C, NOW),
    ]
    assert "a.example" not in hosts_file(entries, Band.T18, now=NOW)
    assert "a.example" not in rpz_zone(entries, Band.T18, now=NOW)
    assert "a.example" not in csv_list(entries, Band.T18, now=NOW)
    assert "a.example" in hosts_file(entries, Band.T16, now=NOW)
    empty = hosts_file([], Band.T18, now=NOW)
    assert _body(empty) == [] and verify_checksum(empty)


def test_checksum_detects_tampering(listed):
    entries = blocklist_entries(listed, Band.T18)
    for text in (hosts_file(entries, Band.T18), rpz_zone(entries, Band.T18), csv_list(entries, Band.T18)):
        assert verify_checksum(text)
        assert verify_checksum(text.replace("\n", "\r\n"))  # line endings changed in transit: same content
        lines = text.splitlines(keepends=True)
        assert not verify_checksum(text.replace("adult.example", "adult.exampl"))
        assert not verify_checksum(text + lines[-1])  # a line added
        assert not verify_checksum("".join(lines[:-1]))  # truncated
        assert not verify_checksum("".join(line for line in lines if "checksum" not in line))
    assert not verify_checksum("")
    assert not verify_checksum("0.0.0.0 example.com\n")


@pytest.mark.parametrize(
    ("domain", "host"),
    [
        ("Example.COM.", "example.com"),
        ("www.example.com", "example.com"),
        ("sub_domain.example.com", "sub_domain.example.com"),
        ("192.168.1.1", ""),
        ("localhost", ""),
        ("bad host.example", ""),
        ("-bad.example", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_normalise_host(domain, host):
    assert normalise_host(domain) == host
