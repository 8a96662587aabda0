"""Parse and validate vendor files into canonical frames.

Each parser returns a canonical polars frame or raises ``VendorFileError`` with the file name, a one-line reason
and every failure as data (``failures``: file, row, column, reason, value); the asset then quarantines the file.
Checks: readable format, expected columns, then the file's contract (``contracts.PRICES``/``UNIVERSE``: types,
missing values, ticker shape and universe membership, ranges, high/low, dates against the file name, duplicate
keys), future dates. A parser never raises anything else: an unexpected error is a ``VendorFileError`` too.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import polars as pl

from alpha_assets.lib.ingestion.contracts import PRICES, UNIVERSE, Failure, summarize

PRICE_COLUMNS = ["trade_date", "ticker", "open", "high", "low", "close", "volume"]
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


class VendorFileError(ValueError):
    """A vendor file refused by its contract: ``reason`` summarizes, ``failures`` lists every failure as data
    (file, row, column, reason, value)."""

    def __init__(self, file: str, reason: str, failures: list[Failure] | None = None):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason
        self.failures = failures or [Failure(file, None, None, reason)]

    def details(self) -> list[dict]:
        return [f.as_dict() for f in self.failures]


@dataclass(frozen=True)
class ParsedPrices:
    file: str
    provider: str
    trade_date: date
    published_at: datetime | None
    rows: pl.DataFrame  # canonical PRICE_COLUMNS


def date_from_name(name: str) -> date | None:
    m = DATE_IN_NAME.search(name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def _require_date(name: str) -> date:
    d = date_from_name(name)
    if d is None:
        raise VendorFileError(name, "file name carries no valid YYYY-MM-DD trading date")
    return d


A_COLUMNS = {"date": "trade_date"}  # provider A's names for the canonical columns (the rest are the same)
B_COLUMNS = {
    "symbol": "ticker",
    "session_date": "trade_date",
    "px_open": "open",
    "px_high": "high",
    "px_low": "low",
    "px_last": "close",
    "shares_traded": "volume",
}


def _refuse(
    name: str, failures: list[Failure], vendor_names: dict[str, str] | None = None
) -> VendorFileError:
    """The error for a refused file, its failures naming the columns as the vendor's file does."""
    back = {v: k for k, v in (vendor_names or {}).items()}
    failures = [
        Failure(
            name,
            f.row,
            back.get(f.column, f.column) if f.column else None,
            _vendor_words(f.reason, back),
            f.value,
        )
        for f in failures
    ]
    return VendorFileError(name, summarize(failures), failures)


def _vendor_words(reason: str, back: dict[str, str]) -> str:
    for canonical, vendor in back.items():
        reason = reason.replace(f"column '{canonical}'", f"column '{vendor}'")
    return reason


def _validate_prices(
    name: str,
    df: pl.DataFrame,
    file_date: date,
    today: date | None,
    universe=None,
    vendor_names: dict[str, str] | None = None,
) -> pl.DataFrame:
    """The canonical rows, or ``VendorFileError`` listing every failure of the file against ``contracts.PRICES``
    (types, missing values, ticker shape and universe membership, ranges, high/low, dates, duplicates)."""
    failures, cast = PRICES.validate(name, df, universe=universe, file_date=file_date)
    if today is not None and file_date > today:
        failures.append(
            Failure(name, None, None, f"trading date {file_date} is in the future (today is {today})")
        )
    if failures:
        raise _refuse(name, failures, vendor_names)
    return cast.select(
        pl.col("trade_date").cast(pl.Date),
        pl.col("ticker").cast(pl.Utf8),
        *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close")],
        pl.col("volume").round(0).cast(pl.Int64),
    )


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:4096]


def guarded(parse):
    """A parser whose unexpected errors become a ``VendorFileError`` naming the file (never a traceback)."""

    @functools.wraps(parse)
    def wrapper(name: str, data: bytes, *args, **kwargs):
        try:
            return parse(name, data, *args, **kwargs)
        except VendorFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of a vendor file is data, never a crash
            raise VendorFileError(
                name, f"could not be validated ({type(exc).__name__}: {str(exc)[:160]})"
            ) from None

    return wrapper


@guarded
def parse_provider_a(name: str, data: bytes, today: date | None = None, universe=None) -> ParsedPrices:
    """Provider A: CSV with ticker,date,open,high,low,close,volume,published_at. ``universe``: the day's
    tickers (None: not checked)."""
    file_date = _require_date(name)
    if not data.strip():
        raise VendorFileError(name, "file is empty")
    if _looks_binary(data):
        raise VendorFileError(name, "file is binary or corrupt (NUL bytes), not CSV text")
    try:
        raw = pl.read_csv(
            io.BytesIO(data),
            try_parse_dates=False,
            infer_schema_length=10000,
            schema_overrides={"ticker": pl.Utf8, "date": pl.Utf8, "published_at": pl.Utf8},
        )
    except Exception as exc:  # polars raises several error types for malformed CSV
        raise VendorFileError(name, f"not a readable CSV ({type(exc).__name__}: {str(exc)[:120]})") from None
    need = {"ticker", "date", "open", "high", "low", "close", "volume"}
    missing = need - set(raw.columns)
    if missing:
        raise VendorFileError(name, f"missing column(s) {sorted(missing)}; got {raw.columns}")
    published = None
    if "published_at" in raw.columns and raw.height:
        try:
            published = datetime.fromisoformat(str(raw["published_at"][0]))
        except ValueError:
            raise VendorFileError(
                name, f"published_at '{raw['published_at'][0]}' is not an ISO timestamp"
            ) from None
    rows = _validate_prices(name, raw.rename(A_COLUMNS), file_date, today, universe, A_COLUMNS)
    return ParsedPrices(name, "A", file_date, published, rows)


@guarded
def parse_provider_b(name: str, data: bytes, today: date | None = None, universe=None) -> ParsedPrices:
    """Provider B: Parquet with symbol, session_date, px_open, px_high, px_low, px_last, shares_traded, asof_ts."""
    file_date = _require_date(name)
    if not data:
        raise VendorFileError(name, "file is empty")
    try:
        raw = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise VendorFileError(name, f"not a readable Parquet file ({type(exc).__name__})") from None
    missing = set(B_COLUMNS) - set(raw.columns)
    if missing:
        raise VendorFileError(name, f"missing column(s) {sorted(missing)}; got {raw.columns}")
    published = None
    if "asof_ts" in raw.columns and raw.height:
        ts = raw["asof_ts"][0]
        published = ts if isinstance(ts, datetime) else None
    rows = _validate_prices(name, raw.rename(B_COLUMNS), file_date, today, universe, B_COLUMNS)
    return ParsedPrices(name, "B", file_date, published, rows)


@guarded
def parse_universe(name: str, data: bytes, today: date | None = None) -> pl.DataFrame:
    """Reference vendor: CSV snapshot of the universe on one date, checked against ``contracts.UNIVERSE``."""
    file_date = _require_date(name)
    if not data.strip() or _looks_binary(data):
        raise VendorFileError(name, "file is empty or binary")
    try:
        raw = pl.read_csv(
            io.BytesIO(data),
            infer_schema_length=10000,
            schema_overrides={"ticker": pl.Utf8, "name": pl.Utf8, "sector": pl.Utf8, "country": pl.Utf8},
        )
    except Exception as exc:
        raise VendorFileError(name, f"not a readable CSV ({type(exc).__name__})") from None
    need = {"ticker", "name", "sector", "country", "adv_usd"}
    missing = need - set(raw.columns)
    if missing:
        raise VendorFileError(name, f"missing column(s) {sorted(missing)}")
    if today is not None and file_date > today:
        raise VendorFileError(name, f"trading date {file_date} is in the future (today is {today})")
    failures, cast = UNIVERSE.validate(name, raw)
    if failures:
        raise _refuse(name, failures)
    return cast.select(
        pl.lit(file_date).alias("trade_date"),
        pl.col("ticker").cast(pl.Utf8),
        pl.col("name").cast(pl.Utf8),
        pl.col("sector").cast(pl.Utf8),
        pl.col("country").cast(pl.Utf8),
        pl.col("adv_usd").cast(pl.Float64),
        (
            pl.col("shares_outstanding").cast(pl.Float64, strict=False)
            if "shares_outstanding" in cast.columns
            else pl.lit(None, pl.Float64)
        ).alias("shares_outstanding"),
    )


def price_cutoff(d: date, next_session: date) -> datetime:
    """A day's prices are on time if published before 13:00 UTC of the next session (before the US open)."""
    return datetime(next_session.year, next_session.month, next_session.day, 13, 0, tzinfo=timezone.utc)


def is_late(parsed: ParsedPrices, next_session: date) -> bool:
    if parsed.published_at is None:
        return False
    pub = (
        parsed.published_at
        if parsed.published_at.tzinfo
        else parsed.published_at.replace(tzinfo=timezone.utc)
    )
    return pub > price_cutoff(parsed.trade_date, next_session)


__all__ = [
    "VendorFileError",
    "ParsedPrices",
    "parse_provider_a",
    "parse_provider_b",
    "parse_universe",
    "date_from_name",
    "is_late",
    "price_cutoff",
    "timedelta",
]
