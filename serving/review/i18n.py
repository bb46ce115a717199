"""The console in Vietnamese (default: the Department's reviewers) and English, through gettext catalogues.

- **Catalogues.** `serving/review/locale/<lang>/LC_MESSAGES/messages.po` is what translators edit (Babel:
  `pybabel extract/update/compile`, see `locale/README.md`); the compiled `messages.mo` is committed beside
  it and shipped as package data, so a fresh clone works after `pip install -e .` with no build step. A
  `.mo` that is missing, or older than its `.po` (a translator's edit not compiled yet), is compiled in
  memory from the `.po` at first use.
- **Message ids are the English text.** Templates use `{% trans %}` and `_()` (jinja2.ext.i18n, new-style:
  `_("%(n)s items", n=3)`); Python code uses `catalogue(lang).gettext`, or marks constants with `N_()`.
- **Names of contract ids** (categories, severities, bands, statuses, decisions, actions, roles, audit
  actions) go through the catalogue too: `category_name(lang, "self_harm")`, or `{{ c|category }}` in a
  template. Ids stay ids in URLs, form values and HTML attributes.
- **Messages from the services** (`ReviewError`, `AccountError`, `HTTPException` details) are English;
  `translate_message` turns a known one, with its parameters, into the reviewer's language.
- **Times** are stored in UTC and shown as dd/MM/yyyy HH:mm in Asia/Ho_Chi_Minh; numbers use the
  language's decimal mark (0,85 in Vietnamese).
- **Strict mode** (`VICAS_I18N_STRICT=1`, used by the tests): every lookup that finds no translation is
  recorded (`misses()`), so a test can walk the console and fail on any English string left in a page.
"""

from __future__ import annotations

import gettext as _gettext
import io
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

log = logging.getLogger("vicas.i18n")

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"
LANGUAGES: Final = ("vi", "en")
DEFAULT_LANG: Final = "vi"
SOURCE_LANG: Final = "en"  # the language of the message ids
TIMEZONE: Final = ZoneInfo("Asia/Ho_Chi_Minh")
DATETIME_FORMAT: Final = "dd/MM/yyyy HH:mm"
DATE_FORMAT: Final = "dd/MM/yyyy"
STRICT_ENV: Final = "VICAS_I18N_STRICT"


def N_(message: str) -> str:
    """Mark a string for extraction (`pybabel extract`) without translating it here."""
    return message


# --- catalogues ---------------------------------------------------------------------------------------------

_misses: set[tuple[str, str]] = set()
_misses_lock = threading.Lock()


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "").lower() in ("1", "true", "yes")


def record_miss(lang: str, message: str) -> None:
    """Note a string shown in `lang` without a translation (strict mode only)."""
    if strict():
        with _misses_lock:
            _misses.add((lang, message))


def misses(lang: str | None = None) -> list[str]:
    """Strings looked up without a translation since the last `clear_misses()` (strict mode)."""
    with _misses_lock:
        return sorted(m for lg, m in _misses if lang is None or lg == lang)


def clear_misses() -> None:
    with _misses_lock:
        _misses.clear()


def normalise(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANG


def _load(lang: str) -> _gettext.NullTranslations:
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return _gettext.GNUTranslations(f)
    if po.exists():  # not compiled yet (or edited since): compile in memory, as `pybabel compile` would
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        with po.open("rb") as f:
            catalog = read_po(f, locale=lang, domain=DOMAIN)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        if mo.exists():
            log.info("%s is newer than %s: using the .po (run pybabel compile)", po, mo.name)
        return _gettext.GNUTranslations(buf)
    log.warning("no %s catalogue in %s: strings stay in English", lang, folder)
    return _gettext.NullTranslations()


class Catalogue:
    """One language's translations; lookups without a translation are recorded in strict mode."""

    def __init__(self, lang: str, translations: _gettext.NullTranslations) -> None:
        self.lang = lang
        self._t = translations

    def gettext(self, message: str) -> str:
        out = self._t.gettext(message)
        if out is message and message:  # gettext hands back the very same object when it has no entry
            record_miss(self.lang, message)
        return out

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        out = self._t.ngettext(singular, plural, n)
        if out is singular or out is plural:
            record_miss(self.lang, singular)
        return out

    def has(self, message: str) -> bool:
        return self._t.gettext(message) is not message


@cache
def catalogue(lang: str | None) -> Catalogue:
    code = normalise(lang)
    return Catalogue(code, _load(code))


def gettext(lang: str | None, message: str) -> str:
    return catalogue(lang).gettext(message)


# --- names of contract ids ----------------------------------------------------------------------------------

CATEGORY_NAMES: Final[dict[str, str]] = {
    "sexual": N_("Sexual content"),
    "child_sexual": N_("Child sexual abuse"),
    "violence": N_("Violence"),
    "self_harm": N_("Self-harm and suicide"),
    "hate": N_("Hate"),
    "harassment": N_("Harassment and bullying"),
    "profanity": N_("Profanity"),
    "substances": N_("Drugs, alcohol and tobacco"),
    "gambling": N_("Gambling"),
    "dangerous_acts": N_("Dangerous acts"),
    "scam": N_("Scams and fraud"),
    "personal_data": N_("A child's personal data"),
}
SEVERITY_NAMES: Final[dict[int, str]] = {0: N_("absent"), 1: N_("mild"), 2: N_("moderate"), 3: N_("severe")}
BAND_NAMES: Final[dict[str, str]] = {
    "P": N_("All ages"),
    "K": N_("Under 13 only with a parent or guardian"),
    "T13": N_("13 and over"),
    "T16": N_("16 and over"),
    "T18": N_("Adults only (18 and over)"),
    "C": N_("Must not be disseminated"),
}
ITEM_STATUSES: Final[dict[str, str]] = {
    "open": N_("Not yet reviewed"),
    "awaiting_second": N_("Awaiting a second reviewer"),
    "reviewed": N_("Reviewed"),
}
QUEUE_STATUSES: Final[dict[str, str]] = {
    "pending": N_("Waiting for review"),
    "reviewed": N_("Reviewed"),
    "all": N_("All"),
}
APPEAL_STATUSES: Final[dict[str, str]] = {
    "open": N_("Not decided yet"),
    "upheld": N_("Upheld"),
    "overturned": N_("Overturned"),
}
DECISIONS: Final[dict[str, str]] = {
    "confirm": N_("Confirmed"),
    "change": N_("Labels changed"),
    "false_positive": N_("False positive"),
    "second_confirm": N_("Second review"),
    "appeal_overturn": N_("Overturned on appeal"),
}
POLICY_ACTIONS: Final[dict[str, str]] = {
    "allow": N_("Allow"),
    "warn": N_("Warn"),
    "redact": N_("Hide personal data"),
    "block": N_("Block"),
    "report": N_("Report to the authorities"),
    "review": N_("Send to a reviewer"),
}
ROLES: Final[dict[str, str]] = {
    "reviewer": N_("Reviewer"),
    "supervisor": N_("Supervisor"),
    "admin": N_("Administrator"),
}
AUDIT_ACTIONS: Final[dict[str, str]] = {
    "decision:confirm": N_("Decision: confirmed"),
    "decision:change": N_("Decision: labels changed"),
    "decision:false_positive": N_("Decision: false positive"),
    "decision:second_confirm": N_("Decision: second review"),
    "reveal": N_("Personal data revealed"),
    "image:unblur": N_("Image shown unblurred"),
    "appeal:create": N_("Appeal filed"),
    "appeal:upheld": N_("Appeal: upheld"),
    "appeal:overturned": N_("Appeal: overturned"),
    "user:create": N_("Account created"),
    "user:disable": N_("Account disabled"),
    "user:enable": N_("Account enabled"),
    "user:role": N_("Role changed"),
    "user:password-reset": N_("Password reset"),
    "export:reviewed": N_("Reviewed items exported for training"),
    "model:activate": N_("Model switched"),
}
AUDIT_TARGETS: Final[dict[str, str]] = {
    "item": N_("Item"),
    "user": N_("Account"),
    "appeal": N_("Appeal"),
    "model": N_("Model"),
}
AUDIT_FIELDS: Final[dict[str, str]] = {
    "status": N_("Status"),
    "band": N_("Band"),
    "categories": N_("Categories"),
    "note_sha256": N_("Note (fingerprint)"),
    "reason_sha256": N_("Reason (fingerprint)"),
    "role": N_("Role"),
    "items": N_("Items"),
    "item_id": N_("Item"),
    "url": N_("URL"),
    "disabled": N_("Disabled"),
    "lockout_cleared": N_("Lockout cleared"),
    "dir": N_("Folder"),
    "image": N_("Image"),
}
_NAMES: Final[dict[str, Mapping[Any, str]]] = {
    "category": CATEGORY_NAMES,
    "severity": SEVERITY_NAMES,
    "band": BAND_NAMES,
    "item_status": ITEM_STATUSES,
    "queue_status": QUEUE_STATUSES,
    "appeal_status": APPEAL_STATUSES,
    "decision": DECISIONS,
    "policy_action": POLICY_ACTIONS,
    "role": ROLES,
    "audit_action": AUDIT_ACTIONS,
    "audit_target": AUDIT_TARGETS,
    "audit_field": AUDIT_FIELDS,
}


def name_of(kind: str, lang: str | None, value: Any) -> str:
    """The reviewer-facing name of a contract id (`kind` is a key of _NAMES); an unknown id stays as it is."""
    msgid = _NAMES[kind].get(value)
    if msgid is None:
        record_miss(normalise(lang), f"{kind}:{value}")
        return "" if value is None else str(value)
    return gettext(lang, msgid)


def category_name(lang: str | None, category: str) -> str:
    return name_of("category", lang, category)


def band_label(lang: str | None, band: str) -> str:
    """'T18: Adults only (18 and over)': the band's code (as the Law on Cinema writes it) and its meaning."""
    if band not in BAND_NAMES:
        return name_of("band", lang, band)
    return f"{band}: {name_of('band', lang, band)}"


def audit_target(lang: str | None, target: str) -> str:
    """'item:3' -> 'Mục 3'; a target that is not 'kind:id' (an export path) stays as it is."""
    kind, sep, rest = target.partition(":")
    if not sep or kind not in AUDIT_TARGETS:
        return target
    return f"{name_of('audit_target', lang, kind)} {rest}"


def audit_change(lang: str | None, raw: str | None) -> list[tuple[str, str]]:
    """An audit entry's `after` (JSON) as (field, value) pairs in the reviewer's language."""
    import json

    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [("", raw)]
    if not isinstance(value, dict):
        return [] if value is None else [("", str(value))]
    out = []
    for key, v in value.items():
        label = name_of("audit_field", lang, key) if key in AUDIT_FIELDS else str(key)
        out.append((label, _audit_value(lang, key, v)))
    return out


def _audit_value(lang: str | None, key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return gettext(lang, N_("yes")) if value else gettext(lang, N_("no"))
    if key == "status" and isinstance(value, str):
        kinds = (ITEM_STATUSES, APPEAL_STATUSES)
        return next((gettext(lang, k[value]) for k in kinds if value in k), value)
    if key == "role" and isinstance(value, str):
        return name_of("role", lang, value)
    if key == "categories" and isinstance(value, dict):
        parts = [f"{category_name(lang, c)} ({name_of('severity', lang, int(s))})" for c, s in value.items()]
        return ", ".join(parts) if parts else gettext(lang, N_("none"))
    if key.endswith("_sha256") and isinstance(value, str):
        return value[:12] + "…"
    return str(value)


# --- messages from the services, in the reviewer's language --------------------------------------------------

_Param = Callable[[str, str], str]


def _category_param(lang: str, value: str) -> str:
    return category_name(lang, value.strip("'\""))


def _message_param(lang: str, value: str) -> str:
    return translate_message(lang, value)


# form and query fields a reviewer can get wrong, by the name the request gives them
FIELD_NAMES: Final[dict[str, str]] = {
    "decision": N_("Decision"),
    "outcome": N_("Outcome"),
    "band": N_("Band"),
    "note": N_("Note"),
    "username": N_("Username"),
    "password": N_("Password"),
    "role": N_("Role"),
    "item_id": N_("Item number"),
    "appeal_id": N_("Appeal number"),
}


def _field_param(lang: str, value: str) -> str:
    return gettext(lang, FIELD_NAMES[value]) if value in FIELD_NAMES else value


# (pattern the English message matches, its message id with the pattern's groups as %(name)s, and how a
# group's text is translated where it is itself a name or a message)
_MESSAGE_SPECS: list[tuple[str, str, dict[str, _Param]]] = [
    # accounts
    (r"wrong username or password", N_("wrong username or password"), {}),
    (
        r"account locked after (?P<n>\d+) failed attempts; try again later",
        N_("account locked after %(n)s failed attempts; try again later"),
        {},
    ),
    (r"account disabled; ask an administrator", N_("account disabled; ask an administrator"), {}),
    (
        r"too many failed logins from this address; try again in (?P<minutes>\d+) minutes",
        N_("too many failed logins from this address; try again in %(minutes)s minutes"),
        {},
    ),
    (r"passwords need at least 12 characters", N_("passwords need at least 12 characters"), {}),
    (
        r"role must be one of (?P<roles>.+), got (?P<value>.+)",
        N_("role must be one of %(roles)s, got %(value)s"),
        {},
    ),
    (r"user (?P<username>'.*') already exists", N_("user %(username)s already exists"), {}),
    (r"no user (?P<username>'.*')", N_("no user %(username)s"), {}),
    # review decisions, reveal, appeals
    (r"your role cannot open this page\.?", N_("your role cannot open this page"), {}),
    (r"your role cannot reveal personal data", N_("your role cannot reveal personal data"), {}),
    (r"your role cannot review items", N_("your role cannot review items"), {}),
    (r"your role cannot decide appeals", N_("your role cannot decide appeals"), {}),
    (r"no item (?P<id>\d+)", N_("no item %(id)s"), {}),
    (r"no item (?P<id>\d+) for this partner", N_("no item %(id)s for this partner"), {}),
    (r"no such item", N_("no such item"), {}),
    (r"no such image", N_("no such image"), {}),
    (
        r"this item has no sealed original \(no VICAS_SECRET_KEY when it was stored\)",
        N_("this item has no sealed original (no VICAS_SECRET_KEY when it was stored)"),
        {},
    ),
    (
        r"a change needs new categories, a new band, or both",
        N_("a change needs new categories, a new band, or both"),
        {},
    ),
    (r"decision must be one of (?P<values>.+)", N_("decision must be one of %(values)s"), {}),
    (r"this item is not waiting for a second reviewer", N_("this item is not waiting for a second reviewer"), {}),
    (
        r"the second review of a C decision must be by another reviewer",
        N_("the second review of a C decision must be by another reviewer"),
        {},
    ),
    (
        r"the second review of a C decision is a supervisor's \(four eyes\)",
        N_("the second review of a C decision is a supervisor's (four eyes)"),
        {},
    ),
    (
        r"a C decision is waiting for a second reviewer; confirm it or let another decide",
        N_("a C decision is waiting for a second reviewer; confirm it or let another decide"),
        {},
    ),
    (r"outcome must be 'upheld' or 'overturned'", N_("the outcome must be 'upheld' or 'overturned'"), {}),
    (r"no open appeal (?P<id>\d+)", N_("no open appeal %(id)s"), {}),
    (r"an overturned appeal needs the new band", N_("an overturned appeal needs the new band"), {}),
    (
        r"the item waits for its second review; decide the appeal once that is done",
        N_("the item waits for its second review; decide the appeal once that is done"),
        {},
    ),
    (r"an appeal needs a reason", N_("an appeal needs a reason"), {}),
    # the audit chain (serving/review/audit.py verify)
    (
        r"entries (?P<first>\d+)\.\.(?P<last>\d+) are missing \(deleted\)",
        N_("entries %(first)s to %(last)s are missing (deleted)"),
        {},
    ),
    (
        r"entry (?P<id>\d+): does not follow the entry before it \(one was deleted or edited\)",
        N_("entry %(id)s does not follow the entry before it (one was deleted or edited)"),
        {},
    ),
    (
        r"entry (?P<id>\d+): content does not match its hash \(edited\)",
        N_("entry %(id)s: its content does not match its hash (edited)"),
        {},
    ),
    (
        r"entry (?P<id>\d+): its HMAC does not match: rewritten without the key",
        N_("entry %(id)s: its HMAC does not match (rewritten without the key)"),
        {},
    ),
    (
        r"entry (?P<id>\d+): has no HMAC after entries that have one \(inserted\)",
        N_("entry %(id)s has no HMAC after entries that have one (inserted)"),
        {},
    ),
    (
        r"entry (?P<id>\d+): hash (?P<hash>\w+) is not the expected (?P<expected>\w+)",
        N_("entry %(id)s: hash %(hash)s is not the expected %(expected)s"),
        {},
    ),
    (
        r"entry (?P<id>\d+) is missing \(the chain was cut or the entry deleted\)",
        N_("entry %(id)s is missing (the chain was cut or the entry deleted)"),
        {},
    ),
    # the label contract (vicas.taxonomy) and Python's own parsers
    (r"'(?P<value>.*)' is not a valid Band", N_("%(value)s is not a band"), {}),
    (
        r"severity (?P<severity>\d+) is not defined for (?P<category>'\w+'); allowed: (?P<allowed>.+)",
        N_("severity %(severity)s is not defined for %(category)s; allowed: %(allowed)s"),
        {"category": _category_param},
    ),
    (
        r"severity for (?P<category>'\w+') must be an integer 0-3, got (?P<value>.+)",
        N_("the severity for %(category)s must be a whole number 0-3, got %(value)s"),
        {"category": _category_param},
    ),
    (r"unknown category (?P<value>'.*'); valid categories: .*", N_("unknown category %(value)s"), {}),
    (r"Invalid isoformat string: (?P<value>.+)", N_("not a date written YYYY-MM-DD: %(value)s"), {}),
    (r"could not convert string to float: (?P<value>.+)", N_("not a number: %(value)s"), {}),
    # the console's own checks (serving/review/web.py)
    (
        r"the console's session cookie did not come back: .*",
        N_(
            "the console's session cookie did not come back: over plain HTTP with VICAS_SECURE_COOKIES=true "
            "the browser keeps it to itself (use HTTPS, or leave VICAS_SECURE_COOKIES unset); then reload"
        ),
        {},
    ),
    (
        r"invalid or missing CSRF token; reload the page and try again",
        N_("invalid or missing CSRF token; reload the page and try again"),
        {},
    ),
    (r"bad filter: (?P<error>.+)", N_("bad filter: %(error)s"), {"error": _message_param}),
    (
        r"(?P<name>\w+) must be a date written YYYY-MM-DD, got (?P<value>.+)",
        N_("%(name)s must be a date written YYYY-MM-DD, got %(value)s"),
        {},
    ),
    (
        r"min_band must be one of (?P<bands>\[.*\]), got (?P<value>.+)",
        N_("min_band must be one of %(bands)s, got %(value)s"),
        {},
    ),
    (r"start (?P<start>\S+) is after end (?P<end>\S+)", N_("the start %(start)s is after the end %(end)s"), {}),
    (r"formats: (?P<formats>[a-z, ]+)", N_("no such format; formats: %(formats)s"), {}),
    (r"charts: (?P<charts>.+)", N_("no such chart; charts: %(charts)s"), {}),
    (r"created (?P<username>.+)", N_("account %(username)s created"), {}),
    (r"exported (?P<n>\d+) items to (?P<path>.+)", N_("exported %(n)s items to %(path)s"), {}),
    # the console's error pages (serving/review/errors.py)
    (r"invalid input", N_("invalid input"), {}),
    (r"(?P<field>[\w.]+) is missing", N_("%(field)s is missing"), {"field": _field_param}),
    (r"invalid value for (?P<field>[\w.]*)", N_("invalid value for %(field)s"), {"field": _field_param}),
    # HTTP's own reasons (unknown routes, wrong methods)
    (r"Not Found", N_("There is no such page in the console."), {}),
    (r"Method Not Allowed", N_("This page does not take that kind of request."), {}),
]
MESSAGES: Final[list[tuple[re.Pattern[str], str, dict[str, _Param]]]] = [
    (re.compile(p), msgid, params) for p, msgid, params in _MESSAGE_SPECS
]


def translate_message(lang: str | None, text: str | None) -> str:
    """A message raised in English by the services or the console, in `lang`; an unknown one stays as it is
    (and is recorded in strict mode)."""
    if not text:
        return ""
    code = normalise(lang)
    if catalogue(code).has(text):  # a message id itself
        return catalogue(code).gettext(text)
    for pattern, msgid, params in MESSAGES:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values = {k: params[k](code, v) if k in params else v for k, v in m.groupdict().items()}
        out = gettext(code, msgid)
        return out % values if values else out
    record_miss(code, text)
    return text


# --- times and numbers ----------------------------------------------------------------------------------------


def _aware(value: datetime | str) -> datetime:
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt  # naive timestamps (SQLite) are UTC


def local_datetime(lang: str | None, value: datetime | str | None) -> str:
    """dd/MM/yyyy HH:mm in Vietnam's time (Asia/Ho_Chi_Minh, UTC+7) of a UTC timestamp."""
    if value is None or value == "":
        return ""
    return format_datetime(_aware(value), DATETIME_FORMAT, tzinfo=TIMEZONE, locale=normalise(lang))


def local_date(lang: str | None, value: date | str | None) -> str:
    """dd/MM/yyyy of a calendar date (a report period's bound, as given: no time zone)."""
    if value is None or value == "":
        return ""
    day = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    return format_date(day, DATE_FORMAT, locale=normalise(lang))


def format_number(lang: str | None, value: float | int | None, digits: int = 2) -> str:
    """A number with the language's decimal mark: 0,85 in Vietnamese, 0.85 in English."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and digits == 0:
        return format_decimal(value, "#,##0", locale=normalise(lang))
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(value, pattern, locale=normalise(lang))


def format_share(lang: str | None, value: float | None) -> str:
    """A share (0-1) as a percentage, e.g. 50%."""
    if value is None:
        return gettext(lang, N_("not defined"))
    return format_percent(value, locale=normalise(lang))


def parse_number(text: str) -> float:
    """A number typed by a reviewer: '0,5' and '0.5' both mean one half (ValueError otherwise)."""
    cleaned = text.strip().replace(" ", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    return float(cleaned)


def week_label(lang: str | None, iso_week: str) -> str:
    """'2026-W48' -> 'Tuần 48/2026' (vi) or 'Week 48, 2026' (en)."""
    m = re.fullmatch(r"(\d{4})-W(\d{2})", iso_week)
    if m is None:
        return iso_week
    return gettext(lang, N_("Week %(week)s, %(year)s")) % {"week": int(m.group(2)), "year": m.group(1)}


# --- templates ----------------------------------------------------------------------------------------------

# The console's first translator kept its strings under keys (`t.queue`); templates now say `_("Queue")`,
# and `t` stays for any template that still uses a key.
KEYED: Final[dict[str, str]] = {
    "title": N_("Content review console"),
    "login": N_("Sign in"),
    "logout": N_("Sign out"),
    "username": N_("Username"),
    "password": N_("Password"),
    "queue": N_("Queue"),
    "appeals": N_("Appeals"),
    "needs_review": N_("Needs review (model unsure)"),
    "reports": N_("Reports"),
    "blocklists": N_("Blocklists"),
    "audit": N_("Audit log"),
    "admin": N_("Admin"),
    "filter": N_("Filter"),
    "band": N_("Band"),
    "category": N_("Category"),
    "partner": N_("Partner"),
    "from": N_("From"),
    "to": N_("To"),
    "source": N_("Source"),
    "max_conf": N_("Max confidence"),
    "status": N_("Status"),
    "any": N_("Any"),
    "items": N_("items"),
    "confidence": N_("Confidence"),
    "created": N_("Created"),
    "open": N_("Open"),
    "confirm": N_("Confirm (c)"),
    "false_positive": N_("False positive (f)"),
    "change": N_("Change labels"),
    "second_confirm": N_("Second review (s)"),
    "note": N_("Note"),
    "reveal": N_("Reveal personal data"),
    "evidence": N_("Evidence"),
    "scores": N_("Scores and severities"),
    "policy_reasoning": N_("Policy reasoning"),
    "versions": N_("Versions"),
    "reviews": N_("Reviews"),
    "next": N_("Next item (n)"),
    "previous": N_("Previous"),
    "next_page": N_("Next page"),
    "previous_page": N_("Previous page"),
    "page": N_("Page"),
    "save": N_("Save"),
    "awaiting_second": N_("Waiting for a second reviewer (four eyes for band C)"),
    "decided": N_("Decided"),
    "no_items": N_("No items."),
    "shortcuts": N_("Shortcuts: c confirm, f false positive, s second review, n next, / note"),
    "upheld": N_("Upheld"),
    "overturned": N_("Overturned"),
    "reason": N_("Reason"),
    "new_band": N_("New band"),
    "download": N_("Download"),
    "min_band": N_("From band"),
    "verify": N_("Verify hash chain"),
    "chain_ok": N_("Chain intact"),
    "chain_broken": N_("Chain edited or entries deleted"),
    "create_user": N_("Create account"),
    "role": N_("Role"),
    "export": N_("Export reviewed items for training"),
    "forbidden": N_("your role cannot open this page"),
    "redacted_note": N_("Children's personal data is hidden."),
    "hotline": N_("Child protection hotline: 111"),
}


class KeyedStrings(Mapping[str, str]):
    """`t.queue` / `t['items']` in a template: the keyed string in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getitem__(self, key: str) -> str:
        if key not in KEYED:
            record_miss(self.lang, f"t.{key}")
            raise KeyError(key)
        return gettext(self.lang, KEYED[key])

    def __iter__(self) -> Iterator[str]:
        return iter(KEYED)

    def __len__(self) -> int:
        return len(KEYED)


STRINGS: Final[dict[str, KeyedStrings]] = {lang: KeyedStrings(lang) for lang in LANGUAGES}


def translator(lang: str | None) -> KeyedStrings:
    return STRINGS[normalise(lang)]


def _lang_of(context: Context) -> str:
    return normalise(context.get("lang"))


def install_jinja(env: Environment) -> None:
    """jinja2.ext.i18n (new-style gettext) with the language taken from each page's `lang`, and filters
    for names, times and numbers: `{{ c|category }}`, `{{ it.created_at|localtime }}`, `{{ x|number(2) }}`."""
    env.add_extension("jinja2.ext.i18n")

    @pass_context
    def _gettext(context: Context, message: str) -> str:
        return catalogue(_lang_of(context)).gettext(message)

    @pass_context
    def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
        return catalogue(_lang_of(context)).ngettext(singular, plural, n)

    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]

    def named(kind: str) -> Callable[[Context, Any], str]:
        @pass_context
        def f(context: Context, value: Any) -> str:
            return name_of(kind, _lang_of(context), value)

        return f

    for kind in _NAMES:
        env.filters[kind] = named(kind)

    @pass_context
    def band_label_f(context: Context, band: str) -> str:
        return band_label(_lang_of(context), band)

    @pass_context
    def localtime(context: Context, value: datetime | str | None) -> Markup:
        if value is None or value == "":
            return Markup("")
        utc = _aware(value).astimezone(UTC).isoformat(timespec="seconds")
        return Markup('<time datetime="{}">{}</time>').format(utc, local_datetime(_lang_of(context), value))

    @pass_context
    def number(context: Context, value: float | int | None, digits: int = 2) -> str:
        return format_number(_lang_of(context), value, digits)

    @pass_context
    def decimal(context: Context, value: float | None) -> str:
        """A number as typed back into a form (no rounding beyond 6 places): 0,5 in Vietnamese."""
        return "" if value is None else format_decimal(value, "0.######", locale=_lang_of(context))

    @pass_context
    def message(context: Context, text: str | None) -> str:
        return translate_message(_lang_of(context), text)

    @pass_context
    def audit_change_f(context: Context, raw: str | None) -> Markup:
        parts = audit_change(_lang_of(context), raw)
        return Markup("; ").join(Markup("{}: {}").format(k, v) if k else escape(v) for k, v in parts)

    @pass_context
    def audit_target_f(context: Context, target: str) -> str:
        return audit_target(_lang_of(context), target)

    @pass_context
    def share(context: Context, value: float | None) -> str:
        return format_share(_lang_of(context), value)

    @pass_context
    def week(context: Context, value: str) -> str:
        return week_label(_lang_of(context), value)

    @pass_context
    def local_date_f(context: Context, value: date | str | None) -> str:
        return local_date(_lang_of(context), value)

    env.filters.update(
        band_label=band_label_f,
        localtime=localtime,
        localdate=local_date_f,
        number=number,
        decimal=decimal,
        share=share,
        week=week,
        message=message,
        audit_change=audit_change_f,
        audit_target=audit_target_f,
    )
