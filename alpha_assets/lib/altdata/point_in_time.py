"""When an alternative-data value becomes usable, and point-in-time joins onto trading days.

Every raw alt-data row carries ``event_time`` (when the thing was observed: image capture, call end, filing
acceptance, page crawl) and ``published_at`` = event time + the vendor's delivery lag. A feature row for trading
day D is computed "as of" D's decision cut-off (22:00 UTC, after the US close all year round) and may use a row
only when ``published_at <= cut-off``. The lags are conservative defaults for each vendor type; a fund overrides
them per source in the asset config when it has measured its vendors' real delivery times.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone

import polars as pl

ASOF_TIME_UTC = time(22, 0)

# Delivery lag after the event, per source. Imagery: processed and delivered within hours of capture.
# Transcripts: the vendor's cleaned transcript follows the call by a few hours. Filings: EDGAR dissemination
# plus our poll interval. Web: the crawl itself is the event; parsing is immediate.
VENDOR_LAG: dict[str, timedelta] = {
    "parking": timedelta(hours=4),
    "tanks": timedelta(hours=4),
    "transcripts": timedelta(hours=3),
    "filings": timedelta(hours=1),
    "web": timedelta(minutes=30),
}

# When the event happens on its date when the file carries only a date: calls are after the close,
# filings are accepted late in the day, the crawler visits each day's pages mid-session.
DEFAULT_EVENT_TIME_UTC: dict[str, time] = {
    "transcripts": time(21, 30),
    "filings": time(21, 30),
    "web": time(16, 0),
}

# How long a value stays usable before the feature reads null (calendar days). Weekly imagery and catalogues
# need more than 7: a weekly gap that spans a holiday is 8-9 calendar days.
MAX_AGE_DAYS: dict[str, int] = {"parking": 10, "tanks": 10, "transcripts": 120, "filings": 120, "web": 10}

TS = pl.Datetime("us", "UTC")


def utc(d: date, at: time) -> datetime:
    return datetime.combine(d, at, tzinfo=timezone.utc)


def asof_cutoff(d: date, at: time = ASOF_TIME_UTC) -> datetime:
    """The instant at which trading day ``d``'s features are computed."""
    return utc(d, at)


def event_time_of(source: str, d: date) -> datetime:
    """The event time of a dated document that carries no time of its own."""
    return utc(d, DEFAULT_EVENT_TIME_UTC[source])


def session_cutoffs(sessions: Sequence[date], at: time = ASOF_TIME_UTC) -> pl.DataFrame:
    """trade_date and its decision cut-off (UTC), one row per session."""
    return pl.DataFrame(
        {"trade_date": list(sessions), "cutoff": [asof_cutoff(d, at) for d in sessions]},
        schema={"trade_date": pl.Date, "cutoff": TS},
    )


def published_at(source: str, event_time: datetime, lag: timedelta | None = None) -> datetime:
    return event_time + (VENDOR_LAG[source] if lag is None else lag)


def point_in_time(
    sessions: Sequence[date],
    tickers: Sequence[str] | None,
    events: pl.DataFrame,
    values: Sequence[str],
    prefix: str,
    max_age_days: float,
    cutoff_time: time = ASOF_TIME_UTC,
) -> pl.DataFrame:
    """For each (session, ticker) the latest event published by that session's cut-off, with its age.

    ``events`` needs ticker, published_at (UTC) and ``values``. Returns trade_date, ticker,
    ``<prefix>_<value>`` for each value, ``<prefix>_published_at`` and ``<prefix>_age_days`` (days between
    publication and the cut-off). A value older than ``max_age_days`` is dropped (null), so a dead feed reads
    as missing rather than as yesterday's number forever. ``tickers`` None means every ticker in ``events``.
    """
    out_cols = [f"{prefix}_{v}" for v in values]
    if tickers is None:
        tickers = sorted(set(events["ticker"].to_list())) if events.height else []
    grid = session_cutoffs(sessions, cutoff_time).join(
        pl.DataFrame({"ticker": list(tickers)}, schema={"ticker": pl.String}), how="cross"
    )
    ev = (
        events.select("ticker", pl.col("published_at").cast(TS), *values)
        .drop_nulls("published_at")
        .sort("ticker", "published_at")
        # several events published at the same instant: keep the last delivered
        .unique(["ticker", "published_at"], keep="last", maintain_order=True)
        .rename({v: c for v, c in zip(values, out_cols, strict=True)})
        .with_columns(pl.col("published_at").alias(f"{prefix}_published_at"))
    )
    # Both sides are sorted by (ticker, time) just above; polars cannot verify sortedness within ``by`` groups and
    # would warn on every call, so the check is off (the warning is an error in the tests).
    joined = grid.sort("ticker", "cutoff").join_asof(
        ev,
        left_on="cutoff",
        right_on="published_at",
        by="ticker",
        strategy="backward",
        check_sortedness=False,
    )
    age = (pl.col("cutoff") - pl.col(f"{prefix}_published_at")).dt.total_seconds() / 86400.0
    fresh = age <= max_age_days
    return (
        joined.with_columns(age.alias(f"{prefix}_age_days"))
        .with_columns(
            [pl.when(fresh).then(pl.col(c)).otherwise(None).alias(c) for c in out_cols]
            + [
                pl.when(fresh).then(pl.col(f"{prefix}_published_at")).otherwise(None),
                pl.when(fresh).then(pl.col(f"{prefix}_age_days")).otherwise(None),
            ]
        )
        .select("trade_date", "ticker", *out_cols, f"{prefix}_published_at", f"{prefix}_age_days")
        .sort("trade_date", "ticker")
    )
