"""Which landed files are deliveries, and which rows a re-run keeps: one rule for every vendor.

A vendor delivers files under its landing prefix with names of a fixed shape (``prices_a_<date>.csv``,
``<TICKER>_<date>.txt``, ``<date>/<id>.png`` ...). ``classify`` decides, for any name found there, whether it is a
delivery (and for which trading date and delivery key) or not, with the reason. Everything that is not a delivery
(a stray ``prices_a_<date> (copy).csv``, a hidden ``..x``, an undated ``prices_b_latest.parquet``, a path that
climbs out of the prefix, a symlink leaving the landing zone) is quarantined by the caller with that reason; it
never counts as a delivery and never hides or demotes a valid file.

``keep_earlier_rows`` is the one rule for re-runs: a re-run replaces the rows of the delivery units it read again
and keeps the table's rows for every unit it could not read now (a corrupt re-delivery, a vendor outage, an
unreachable site). Adding a data source means adding a ``DeliveryRule`` here and a parser, not a copy of the
intake code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import polars as pl

_DATE = r"(?P<date>\d{4}-\d{2}-\d{2})"
_TICKER = r"(?P<ticker>[A-Z0-9][A-Z0-9.\-]{0,11})"
_ID = r"(?P<id>[A-Za-z0-9][A-Za-z0-9_\-]{0,63})"


@dataclass(frozen=True)
class DeliveryRule:
    """The shape of one vendor's delivery names.

    ``pattern`` must match the whole name relative to the prefix and capture ``date``; ``key`` lists the named
    groups (besides the date) that identify one delivery unit, e.g. the ticker of a transcript. ``companions``
    are pattern-matching files that travel with a delivery (an image's JSON sidecar): not deliveries themselves,
    never quarantined on their own."""

    prefix: str
    pattern: str
    describe: str  # the expected shape, for error messages
    key: tuple[str, ...] = ()
    companions: str | None = None

    def match(self, name: str) -> re.Match | None:
        return re.fullmatch(self.pattern, name)


RULES: dict[str, DeliveryRule] = {
    r.prefix: r
    for r in [
        DeliveryRule("prices_a", rf"prices_a_{_DATE}\.csv", "prices_a_<YYYY-MM-DD>.csv"),
        DeliveryRule("prices_b", rf"prices_b_{_DATE}\.parquet", "prices_b_<YYYY-MM-DD>.parquet"),
        DeliveryRule("reference", rf"universe_{_DATE}\.csv", "universe_<YYYY-MM-DD>.csv"),
        DeliveryRule("transcripts", rf"{_TICKER}_{_DATE}\.txt", "<TICKER>_<YYYY-MM-DD>.txt", key=("ticker",)),
        DeliveryRule(
            "filings",
            rf"{_TICKER}_(?P<form>10-[KQ])_{_DATE}\.txt",
            "<TICKER>_<10-K|10-Q>_<YYYY-MM-DD>.txt",
            key=("ticker", "form"),
        ),
        DeliveryRule(
            "parking",
            rf"{_DATE}/{_ID}\.png",
            "<YYYY-MM-DD>/<store_id>.png (+ .json)",
            ("id",),
            rf"{_DATE}/{_ID}\.json",
        ),
        DeliveryRule(
            "tanks",
            rf"{_DATE}/{_ID}\.png",
            "<YYYY-MM-DD>/<farm_id>.png (+ .json)",
            ("id",),
            rf"{_DATE}/{_ID}\.json",
        ),
    ]
}


@dataclass(frozen=True)
class Delivery:
    prefix: str
    name: str  # relative to the prefix
    trade_date: date
    key: tuple[str, ...]  # the delivery unit within its date (e.g. the ticker); () for one file per date
    fields: dict[str, str]  # every named group of the name (ticker, form, id, date)


@dataclass(frozen=True)
class Rejection:
    prefix: str
    name: str
    reason: str


IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".partial")  # a vendor still uploading: neither delivery nor reject


def is_in_flight(name: str) -> bool:
    return name.endswith(IN_FLIGHT_SUFFIXES)


def classify(
    prefix: str, name: str, *, outside_zone: bool = False, rule: DeliveryRule | None = None
) -> Delivery | Rejection | None:
    """A ``Delivery``, a ``Rejection`` with its reason, or None for a companion file (an image's sidecar).

    ``outside_zone`` is set by the landing zone for a symlink whose target lies outside it."""
    rule = rule or RULES.get(prefix)
    parts = name.split("/")
    if outside_zone:
        return Rejection(prefix, name, "symlink pointing outside the landing zone (not read)")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return Rejection(
            prefix, name, "path climbs out of or around its vendor folder ('..', '.', '//' or '/')"
        )
    hidden = [p for p in parts if p.startswith(".")]
    if hidden:
        return Rejection(prefix, name, f"hidden file or folder '{hidden[0]}' is not a delivery")
    if rule is None:
        return Rejection(prefix, name, f"no delivery rule for vendor prefix '{prefix}'")
    m = rule.match(name)
    if m is None:
        if rule.companions and re.fullmatch(rule.companions, name):
            return None
        why = _why_not(name, rule)
        return Rejection(prefix, name, f"{why}; a {prefix} delivery is named {rule.describe}")
    try:
        d = date.fromisoformat(m.group("date"))
    except ValueError:
        return Rejection(prefix, name, f"'{m.group('date')}' in the name is not a calendar date")
    fields = {k: v for k, v in m.groupdict().items() if v is not None}
    return Delivery(prefix, name, d, tuple(fields[k] for k in rule.key), fields)


def _why_not(name: str, rule: DeliveryRule) -> str:
    base = name.rsplit("/", 1)[-1]
    if not re.search(r"\d{4}-\d{2}-\d{2}", name):
        return "the name carries no YYYY-MM-DD trading date"
    if re.search(r"[\s()\[\]{}~#%&*?<>|\"'`$!]", base) or re.search(r"copy|\(\d+\)|~$", base, re.I):
        return "the name looks like a copy or carries odd characters (spaces, brackets, quotes)"
    return "the name does not have the vendor's delivery shape"


def split_deliveries(
    prefix: str, names: list[str], outside: set[str] | frozenset[str] = frozenset()
) -> tuple[list[Delivery], list[Rejection]]:
    """Deliveries (sorted by date, then name) and rejections among ``names``; in-flight uploads are skipped."""
    good, bad = [], []
    for name in names:
        if is_in_flight(name):
            continue
        c = classify(prefix, name, outside_zone=name in outside)
        if isinstance(c, Delivery):
            good.append(c)
        elif isinstance(c, Rejection):
            bad.append(c)
    return sorted(good, key=lambda d: (d.trade_date, d.name)), bad


def content_problems(
    delivery: Delivery, header: dict[str, object], universe: set[str] | frozenset[str] | None = None
) -> list[str]:
    """Every disagreement between what a file says about itself (``header``: ticker, date, form ... as read from
    its content; None when the content does not say) and its name, plus a ticker outside the universe of its
    date (``universe``: the tickers on that date; None when unknown). Empty when the file is consistent."""
    problems = []
    for field_name, said in header.items():
        named = delivery.fields.get(field_name)
        if said is None or named is None:
            continue
        said_text = said.isoformat() if isinstance(said, date) else str(said)
        if said_text.upper() != named.upper():
            problems.append(f"header {field_name} {said_text} does not match the name's {named}")
    ticker = delivery.fields.get("ticker")
    if universe is not None and ticker is not None and ticker not in universe:
        problems.append(f"{ticker} is not in the universe on {delivery.trade_date}")
    return problems


def keep_earlier_rows(
    new: pl.DataFrame, old: pl.DataFrame | None, on: list[str], covered: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, int]:
    """``new`` plus the rows of ``old`` whose delivery unit (the ``on`` columns) was not read again.

    ``covered`` lists the units read again in this run (default: those ``new`` has rows for; pass it when a good
    delivery may legitimately yield no rows, e.g. an image with no tank). A re-run replaces exactly the units it
    read again and keeps the rest: a bad re-delivery, a provider outage or an unreachable site never removes
    rows. Returns (rows, number kept from ``old``)."""
    if old is None or old.height == 0:
        return new, 0
    units = (new if covered is None else covered).select(on).unique()
    old = old.select(new.columns).cast(new.schema)
    kept = old.join(units.cast({c: old.schema[c] for c in on}), on=on, how="anti")
    return pl.concat([new, kept]), kept.height


__all__ = [
    "RULES",
    "Delivery",
    "DeliveryRule",
    "Rejection",
    "classify",
    "content_problems",
    "is_in_flight",
    "keep_earlier_rows",
    "split_deliveries",
]
