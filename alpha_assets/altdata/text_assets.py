"""raw.call_sentiment and raw.filing_features: earnings calls and regulatory filings turned into numbers.

Both read a partition window's deliveries through the intake layer (``alpha_assets.intake``: the date in the file
name decides the window; names that are not deliveries are quarantined), check each document's header (ticker,
date, form) against its name and the point-in-time universe, score them with the ``sentiment`` resource's model and write
one row per ticker and document date. Bad documents (empty, binary, no recognisable layout, a header that
contradicts the name, a ticker outside the universe) are moved to ``quarantine/<prefix>/`` with a
``.reason.json`` listing every problem found, and the rest of the window proceeds. A re-run never loses rows
already written: a ticker-day is replaced only when a good document for it is scored in the run.

Point in time: ``event_time`` is the end of the call (the transcript's "Call time" header plus an hour, else the
source's default time on the call date) or the filing's default acceptance time; ``published_at`` adds the
vendor's delivery lag (``alpha_assets.lib.altdata.point_in_time``).
"""

import re
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)

from alpha_assets.compute import NLP, vendor_backfill_policy
from alpha_assets.intake import Intake, keep_table_rows
from alpha_assets.keys import RAW_CALL_SENTIMENT, RAW_FILING_FEATURES, RAW_UNIVERSE
from alpha_assets.lib.altdata import point_in_time as pit
from alpha_assets.lib.altdata.nlp.filings import (
    SECTIONS,
    FilingError,
    filing_features_frame,
    filing_row_schema,
    parse_filing,
)
from alpha_assets.lib.altdata.nlp.text import DocumentError, read_document
from alpha_assets.lib.altdata.nlp.transcripts import (
    TranscriptError,
    parse_transcript,
    score_transcripts,
    transcript_row_schema,
)
from alpha_assets.lib.determinism import STORED_DECIMALS
from alpha_assets.lib.ingestion.deliveries import Delivery, content_problems
from partitions import trading_days, window_dates
from resources.altdata import SentimentResource
from resources.lake import DeltaLake
from resources.lake_resource import DeltaLakeResource
from resources.landing import VendorLanding

TRANSCRIPTS, FILINGS = "transcripts", "filings"
MIN_PARSED_SHARE = 0.9  # documents_parsed warns below this share of the window's files
CALL_LENGTH = timedelta(hours=1)  # an earnings call's event time is its end: start + a typical call's length
_TOLERANCE = 1e-9  # float slack on range checks

_POINT_IN_TIME = {
    "trade_date": pl.Date,
    "ticker": pl.String,
    "event_time": pit.TS,
    "published_at": pit.TS,
}
_ROLES = ("ceo", "cfo", "executive", "analyst")
CALL_SCHEMA = {
    **_POINT_IN_TIME,
    "file": pl.String,
    "model": pl.String,
    "n_sentences": pl.Int64,
    **{
        c: pl.Float64
        for c in (
            "call_sentiment",
            "management_sentiment",
            "prepared_sentiment",
            "qa_sentiment",
            "positive_share",
            "negative_share",
        )
    },
    **{f"{r}_sentiment": pl.Float64 for r in _ROLES},
}
_FILING_FEATURE_COLUMNS = {
    k: v for k, v in filing_row_schema().items() if k not in ("file", "form", "ticker", "filed")
}
FILING_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.String,
    "form": pl.String,
    "event_time": pit.TS,
    "published_at": pit.TS,
    "file": pl.String,
    **_FILING_FEATURE_COLUMNS,
}

# Columns the values_in_range checks bound: polarity scores in [-1, 1], shares and similarities in [0, 1].
CALL_BOUNDS = {
    **{c: (-1.0, 1.0) for c in CALL_SCHEMA if c.endswith("_sentiment")},
    "positive_share": (0.0, 1.0),
    "negative_share": (0.0, 1.0),
}
FILING_BOUNDS = {
    **{f"{s}_sentiment": (-1.0, 1.0) for s in SECTIONS},
    **{f"{s}_{k}": (0.0, 1.0) for s in SECTIONS for k in ("negative_share", "negative_terms", "similarity")},
    "document_similarity": (0.0, 1.0),
}

_CALL_TIME = re.compile(
    r"^\s*(?:call\s+)?time\s*:\s*(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>[ap]\.?\s?m\.?)?\s*"
    r"(?P<tz>ET|EST|EDT|Eastern|UTC|GMT|Z)?\b",
    re.I | re.M,
)
_EASTERN = ZoneInfo("America/New_York")


# --- shared helpers --------------------------------------------------------------------------------------


def _in_window(quarantined: list[dict[str, str]], files: list[Delivery]) -> int:
    names = {f"{dv.prefix}/{dv.name}" for dv in files}
    return sum(q["file"] in names for q in quarantined)


def _universe_by_date(lake: DeltaLake, start: date, end: date) -> dict[date, set[str]]:
    """The point-in-time universe of each date of the window that ``raw.universe`` holds (empty when unknown)."""
    if not lake.exists("raw", "universe"):
        return {}
    rows = lake.read("raw", "universe", start, end, columns=["trade_date", "ticker"])
    return {d: set(g["ticker"].to_list()) for (d,), g in rows.group_by("trade_date")}


def _transcript_header(path: Path) -> dict:
    """What a transcript says about itself (its header only, never the file name)."""
    parsed = parse_transcript(read_document(path, TranscriptError))
    return {"ticker": parsed.ticker, "date": parsed.call_date}


def _filing_header(path: Path) -> dict:
    parsed = parse_filing(read_document(path, FilingError))
    return {"ticker": parsed.ticker, "date": parsed.filed, "form": parsed.form}


def _checked_documents(
    intake: Intake, lake: DeltaLake, prefix: str, start: date, end: date, header_of
) -> tuple[list[Delivery], dict[str, Delivery]]:
    """The window's deliveries and, by local path, those whose content agrees with their name and universe.

    A document is quarantined with *every* problem found: unreadable or unparseable content, a header ticker,
    date or form that contradicts the file name, a ticker outside the universe of its date."""
    files = intake.deliveries(prefix, start, end)
    universe = _universe_by_date(lake, start, end)
    located: dict[str, Delivery] = {}
    for dv in files:
        path = intake.local_path(prefix, dv.name)
        problems: list[str] = []
        try:
            header = header_of(path)
        except DocumentError as e:
            problems.append(e.reason)
            header = {}
        problems += content_problems(dv, header, universe.get(dv.trade_date))
        if problems:
            intake.quarantine(prefix, dv.name, "; ".join(problems))
        else:
            located[str(path)] = dv
    return files, located


def _quarantine_errors(
    intake: Intake, prefix: str, errors: Iterable[DocumentError], located: dict[str, Delivery]
) -> None:
    for e in errors:
        intake.quarantine(prefix, located[e.source].name, e.reason)


def _table_rows(
    intake, lake, prefix, key, schema, scored, located, event_of, start, end
) -> tuple[pl.DataFrame, int]:
    """Scored documents as table rows: trade_date from the file name, ticker from the header or the name,
    event_time / published_at, one document per ticker-day (the last by name), scores rounded to
    ``STORED_DECIMALS`` decimals, and the rows the table already holds for ticker-days not scored now. Returns
    (rows, number scored now)."""
    rows = []
    for r in scored.iter_rows(named=True):
        dv = located[r["file"]]
        event = event_of(r["file"], dv.trade_date)
        rows.append(
            {
                **r,
                "trade_date": dv.trade_date,
                "ticker": r["ticker"] or dv.fields["ticker"],
                "file": dv.name,
                "event_time": event,
                "published_at": pit.published_at(prefix, event),
            }
        )
    df = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    df = _nan_to_null(
        df.sort("trade_date", "ticker", "file").unique(
            ["trade_date", "ticker"], keep="last", maintain_order=True
        )
    ).with_columns(pl.col(pl.Float64).round(STORED_DECIMALS))
    # (deterministic results: the model gives the same bits for a document in any run on one platform; the
    # stored decimals also keep a BLAS build's last-bit differences out of the table, short of a rounding edge)
    new_rows = df.height
    df, _ = keep_table_rows(lake, key.path[0], key.path[-1], df, start, end, on=["trade_date", "ticker"])
    return df.sort("trade_date", "ticker"), new_rows


def _document_metadata(df, new_rows, files, seconds, model_name, intake: Intake, kind) -> dict:
    return {
        "rows": df.height,
        "documents": len(files),
        "scored": new_rows,
        "kept_from_table": df.height - new_rows,
        "seconds_per_document": round(seconds / len(files), 4) if files else 0.0,
        "model": model_name or f"not loaded (no {kind} in the window)",
        **intake.metadata(),
    }


def _nan_to_null(df: pl.DataFrame) -> pl.DataFrame:
    """A missing section, role or previous filing reads as null, never NaN."""
    return df.with_columns(pl.col(pl.Float64).fill_nan(None))


def _values_check(df: pl.DataFrame, bounds: dict[str, tuple[float, float]]) -> tuple[bool, dict]:
    floats = [c for c, t in df.schema.items() if t == pl.Float64]
    non_finite = {c: n for c in floats if (n := df.filter(~pl.col(c).is_finite()).height)}
    out_of_range = {
        c: n
        for c, (lo, hi) in bounds.items()
        if (n := df.filter((pl.col(c) < lo - _TOLERANCE) | (pl.col(c) > hi + _TOLERANCE)).height)
    }
    duplicates = df.height - df.select("trade_date", "ticker").unique().height
    missing_time = df.filter(pl.col("published_at").is_null() | pl.col("event_time").is_null()).height
    passed = not non_finite and not out_of_range and duplicates == 0 and missing_time == 0
    return passed, {
        "non_finite": MetadataValue.json(non_finite),
        "out_of_range": MetadataValue.json(out_of_range),
        "duplicate_ticker_days": duplicates,
        "missing_event_or_published_time": missing_time,
    }


def _parsed_check(documents: int, quarantined: int) -> tuple[bool, dict]:
    share = (documents - quarantined) / documents if documents else 1.0
    return share >= MIN_PARSED_SHARE, {
        "parsed": documents - quarantined,
        "quarantined": quarantined,
        "parsed_share": round(share, 4),
    }


# --- raw.call_sentiment ----------------------------------------------------------------------------------


def call_end_time(path: Path, d: date) -> datetime:
    """When a call ended, in UTC: its header's "Call time" (Eastern unless it says UTC/GMT) plus ``CALL_LENGTH``;
    the transcripts source's default time on ``d`` when the header carries no time."""
    with path.open("rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace")
    m = _CALL_TIME.search(head)
    if m is None or int(m.group("h")) > 23 or int(m.group("m") or 0) > 59:
        return pit.event_time_of(TRANSCRIPTS, d)
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    ampm = (m.group("ampm") or "").lower()
    if ampm.startswith("p") and hour < 12:
        hour += 12
    elif ampm.startswith("a") and hour == 12:
        hour = 0
    tz = timezone.utc if (m.group("tz") or "").upper() in ("UTC", "GMT", "Z") else _EASTERN
    start = datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz)
    return (start + CALL_LENGTH).astimezone(timezone.utc)


@asset(
    key=RAW_CALL_SENTIMENT,
    deps=[RAW_UNIVERSE],  # the content check reads the point-in-time universe
    partitions_def=trading_days,
    backfill_policy=vendor_backfill_policy(),
    op_tags=NLP.op_tags,
    pool=NLP.pool,
    metadata={"partition_expr": "trade_date"},
    group_name="alt_data",
    kinds={"polars", "delta"},
    check_specs=[
        AssetCheckSpec(
            "call_sentiment_values_in_range",
            asset=RAW_CALL_SENTIMENT,
            blocking=True,
            description="sentiments in [-1, 1], shares in [0, 1], no NaN/inf, one row per ticker-day, "
            "event and publication times set",
        ),
        AssetCheckSpec(
            "call_sentiment_documents_parsed",
            asset=RAW_CALL_SENTIMENT,
            description=f"at least {MIN_PARSED_SHARE:.0%} of the window's transcripts parsed",
        ),
    ],
)
def call_sentiment(
    context: AssetExecutionContext,
    landing: VendorLanding,
    sentiment: SentimentResource,
    lake_store: DeltaLakeResource,
):
    """Sentiment of each earnings call whose transcript (``landing/transcripts/<TICKER>_<date>.txt``) is dated in
    the window: one row per ticker and call date.

    Scores are sentence polarities (p_positive - p_negative) averaged over the call (operator excluded), management,
    prepared remarks, Q&A and each speaker role; positive/negative_share are the shares of sentences classified so.
    A section or role the call lacks is null. Two calls of a ticker on one date: the newest file wins. The model is
    loaded only when the window has transcripts; all of them are scored in one batched pass."""
    start, end = window_dates(*context.partition_time_window)
    intake, lake = Intake(landing, context.log), lake_store.lake
    files, located = _checked_documents(intake, lake, TRANSCRIPTS, start, end, _transcript_header)
    scored = pl.DataFrame(schema=transcript_row_schema())
    model_name, seconds = None, 0.0
    if located:
        model = sentiment.model()
        model_name = model.name
        t0 = time.perf_counter()
        scored, errors = score_transcripts(model, list(located))
        seconds = time.perf_counter() - t0
        _quarantine_errors(intake, TRANSCRIPTS, errors, located)
    df, new_rows = _table_rows(
        intake,
        lake,
        TRANSCRIPTS,
        RAW_CALL_SENTIMENT,
        CALL_SCHEMA,
        scored,
        located,
        lambda path, d: call_end_time(Path(path), d),
        start,
        end,
    )
    quarantined = intake.quarantined
    intake.add_partition_fingerprints(context, RAW_CALL_SENTIMENT)
    metadata = _document_metadata(df, new_rows, files, seconds, model_name, intake, "transcripts")
    yield Output(df, metadata=metadata)
    passed, meta = _values_check(df, CALL_BOUNDS)
    yield AssetCheckResult(check_name="call_sentiment_values_in_range", passed=passed, metadata=meta)
    passed, meta = _parsed_check(len(files), _in_window(quarantined, files))
    yield AssetCheckResult(
        check_name="call_sentiment_documents_parsed",
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        metadata={**meta, "quarantined_files": MetadataValue.json([q["file"] for q in quarantined])},
    )


# --- raw.filing_features ---------------------------------------------------------------------------------


def previous_filings(deliveries: list[Delivery], start: date, end: date) -> dict[str, Delivery]:
    """For each ticker filing in [start, end], its latest filing dated strictly before its first one there."""
    first: dict[str, date] = {}
    for dv in deliveries:
        ticker = dv.fields["ticker"]
        if start <= dv.trade_date <= end and dv.trade_date < first.get(ticker, date.max):
            first[ticker] = dv.trade_date
    previous: dict[str, Delivery] = {}
    for dv in deliveries:  # oldest first: the last one seen before the first in the window wins
        ticker = dv.fields["ticker"]
        if ticker in first and dv.trade_date < first[ticker]:
            previous[ticker] = dv
    return previous


@asset(
    key=RAW_FILING_FEATURES,
    deps=[RAW_UNIVERSE],
    partitions_def=trading_days,
    backfill_policy=vendor_backfill_policy(),
    op_tags=NLP.op_tags,
    pool=NLP.pool,
    metadata={"partition_expr": "trade_date"},
    group_name="alt_data",
    kinds={"polars", "delta"},
    check_specs=[
        AssetCheckSpec(
            "filing_features_values_in_range",
            asset=RAW_FILING_FEATURES,
            blocking=True,
            description="sentiments in [-1, 1], shares and similarities in [0, 1], no NaN/inf, one row per "
            "ticker-day, event and publication times set",
        ),
        AssetCheckSpec(
            "filing_features_documents_parsed",
            asset=RAW_FILING_FEATURES,
            description=f"at least {MIN_PARSED_SHARE:.0%} of the window's filings parsed",
        ),
    ],
)
def filing_features(
    context: AssetExecutionContext,
    landing: VendorLanding,
    sentiment: SentimentResource,
    lake_store: DeltaLakeResource,
):
    """Features of each 10-K / 10-Q filing (``landing/filings/<TICKER>_<form>_<date>.txt``) dated in the window:
    one row per ticker and filing date.

    For Item 1A Risk Factors and the MD&A: words, sentences, Gunning fog, negative-term share, model sentiment and
    negative-sentence share; and against the company's previous filing (the one before it in the window, or for
    its first filing here the latest earlier one in the landing zone): log change in section length, TF-IDF
    similarity per section and for the whole document. Change features are null without a previous filing."""
    start, end = window_dates(*context.partition_time_window)
    intake, lake = Intake(landing, context.log), lake_store.lake
    files, located = _checked_documents(intake, lake, FILINGS, start, end, _filing_header)
    previous = {
        t: str(intake.local_path(FILINGS, dv.name))
        for t, dv in previous_filings(intake.deliveries(FILINGS), start, end).items()
    }
    features = pl.DataFrame(schema=filing_row_schema())
    model_name, seconds = None, 0.0
    if located:
        model = sentiment.model()
        model_name = model.name
        t0 = time.perf_counter()
        features, errors = filing_features_frame(list(located), model, previous)
        seconds = time.perf_counter() - t0
        _quarantine_errors(intake, FILINGS, errors, located)
    df, new_rows = _table_rows(
        intake,
        lake,
        FILINGS,
        RAW_FILING_FEATURES,
        FILING_SCHEMA,
        features,
        located,
        lambda _path, d: pit.event_time_of(FILINGS, d),
        start,
        end,
    )
    quarantined = intake.quarantined
    intake.add_partition_fingerprints(context, RAW_FILING_FEATURES)
    metadata = {
        **_document_metadata(df, new_rows, files, seconds, model_name, intake, "filings"),
        "with_previous_filing": df.filter(pl.col("document_similarity").is_not_null()).height,
        "previous_from_earlier_windows": MetadataValue.json(sorted(Path(p).name for p in previous.values())),
    }
    yield Output(df, metadata=metadata)
    passed, meta = _values_check(df, FILING_BOUNDS)
    yield AssetCheckResult(check_name="filing_features_values_in_range", passed=passed, metadata=meta)
    passed, meta = _parsed_check(len(files), _in_window(quarantined, files))
    yield AssetCheckResult(
        check_name="filing_features_documents_parsed",
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        metadata={**meta, "quarantined_files": MetadataValue.json([q["file"] for q in quarantined])},
    )


TEXT_ASSETS = [call_sentiment, filing_features]
