"""Parse and validate vendor files into canonical frames.

Each parser returns a canonical polars frame or raises ``VendorFileError`` with the file name and the reason;
the asset then quarantines the file. Checks: readable format, expected columns, types, NaN/inf, non-positive or
inconsistent prices, dates that do not match the file name, future dates, duplicate keys.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import polars as pl

PRICE_COLUMNS = ["trade_date", "ticker", "open", "high", "low", "close", "volume"]
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


class VendorFileError(ValueError):
    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


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


def _validate_prices(name: str, df: pl.DataFrame, file_date: date, today: date | None) -> pl.DataFrame:
    """The canonical rows, or ``VendorFileError`` listing every problem found in the file (not just the first)."""
    if df.height == 0:
        raise VendorFileError(name, "file has no rows")
    num = ["open", "high", "low", "close"]
    not_numbers = [f"column '{c}' is {df.schema[c]}, expected a number"
                   for c in [*num, "volume"] if not df.schema[c].is_numeric()]  # fmt: skip
    if not_numbers:  # nothing else can be checked on text prices
        raise VendorFileError(name, "; ".join(not_numbers))
    problems: list[str] = []
    df = df.with_columns([pl.col(c).cast(pl.Float64) for c in num] + [pl.col("volume").cast(pl.Float64)])
    bad = df.filter(
        pl.any_horizontal(
            [pl.col(c).is_null() | pl.col(c).is_nan() | pl.col(c).is_infinite() for c in [*num, "volume"]]
        )
    )
    if bad.height:
        problems.append(f"{bad.height} row(s) with missing, NaN or infinite values (e.g. {bad['ticker'][0]})")
    finite = df.join(bad.select("ticker"), on="ticker", how="anti")
    nonpos = finite.filter(pl.any_horizontal([pl.col(c) <= 0 for c in num]) | (pl.col("volume") < 0))
    if nonpos.height:
        problems.append(f"{nonpos.height} row(s) with non-positive prices or negative volume")
    incons = finite.filter(
        (pl.col("high") < pl.max_horizontal("open", "close", "low") * (1 - 1e-6))
        | (pl.col("low") > pl.min_horizontal("open", "close", "high") * (1 + 1e-6))
    )
    if incons.height:
        problems.append(f"{incons.height} row(s) where high/low do not bracket open/close")
    dates = df["trade_date"].unique()
    if dates.len() != 1 or dates[0] != file_date:
        problems.append(
            f"rows are dated {sorted(dates.drop_nulls().to_list())} but the file name says {file_date}"
        )
    if today is not None and file_date > today:
        problems.append(f"trading date {file_date} is in the future (today is {today})")
    dup = df.group_by("ticker").len().filter(pl.col("len") > 1)
    if dup.height:
        problems.append(f"duplicate rows for ticker(s) {sorted(dup['ticker'].to_list())[:5]}")
    if problems:
        raise VendorFileError(name, "; ".join(problems))
    return df.select(
        pl.col("trade_date").cast(pl.Date), pl.col("ticker").cast(pl.Utf8), *[pl.col(c) for c in num],
        pl.col("volume").round(0).cast(pl.Int64),
    )  # fmt: skip


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:4096]


def parse_provider_a(name: str, data: bytes, today: date | None = None) -> ParsedPrices:
    """Provider A: CSV with ticker,date,open,high,low,close,volume,published_at."""
    file_date = _require_date(name)
    if not data.strip():
        raise VendorFileError(name, "file is empty")
    if _looks_binary(data):
        raise VendorFileError(name, "file is binary or corrupt (NUL bytes), not CSV text")
    try:
        raw = pl.read_csv(io.BytesIO(data), try_parse_dates=False, infer_schema_length=10000)
    except Exception as exc:  # polars raises several error types for malformed CSV
        raise VendorFileError(name, f"not a readable CSV ({type(exc).__name__}: {str(exc)[:120]})") from None
    need = {"ticker", "date", "open", "high", "low", "close", "volume"}
    missing = need - set(raw.columns)
    if missing:
        raise VendorFileError(name, f"missing column(s) {sorted(missing)}; got {raw.columns}")
    try:
        df = raw.with_columns(pl.col("date").cast(pl.Utf8).str.to_date("%Y-%m-%d").alias("trade_date"))
    except Exception:
        raise VendorFileError(name, "column 'date' is not YYYY-MM-DD") from None
    published = None
    if "published_at" in raw.columns and raw.height:
        try:
            published = datetime.fromisoformat(str(raw["published_at"][0]))
        except ValueError:
            raise VendorFileError(
                name, f"published_at '{raw['published_at'][0]}' is not an ISO timestamp"
            ) from None
    rows = _validate_prices(name, df, file_date, today)
    return ParsedPrices(name, "A", file_date, published, rows)


def parse_provider_b(name: str, data: bytes, today: date | None = None) -> ParsedPrices:
    """Provider B: Parquet with symbol, session_date, px_open, px_high, px_low, px_last, shares_traded, asof_ts."""
    file_date = _require_date(name)
    if not data:
        raise VendorFileError(name, "file is empty")
    try:
        raw = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise VendorFileError(name, f"not a readable Parquet file ({type(exc).__name__})") from None
    mapping = {"symbol": "ticker", "session_date": "trade_date", "px_open": "open", "px_high": "high",
               "px_low": "low", "px_last": "close", "shares_traded": "volume"}  # fmt: skip
    missing = set(mapping) - set(raw.columns)
    if missing:
        raise VendorFileError(name, f"missing column(s) {sorted(missing)}; got {raw.columns}")
    df = raw.rename(mapping)
    if df.schema["trade_date"] != pl.Date:
        try:
            df = df.with_columns(pl.col("trade_date").cast(pl.Date))
        except Exception:
            raise VendorFileError(name, f"session_date is {raw.schema['session_date']}, not a date") from None
    published = None
    if "asof_ts" in raw.columns and raw.height:
        ts = raw["asof_ts"][0]
        published = ts if isinstance(ts, datetime) else None
    rows = _validate_prices(name, df, file_date, today)
    return ParsedPrices(name, "B", file_date, published, rows)


def parse_universe(name: str, data: bytes, today: date | None = None) -> pl.DataFrame:
    """Reference vendor: CSV snapshot of the universe on one date."""
    file_date = _require_date(name)
    if not data.strip() or _looks_binary(data):
        raise VendorFileError(name, "file is empty or binary")
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema_length=10000)
    except Exception as exc:
        raise VendorFileError(name, f"not a readable CSV ({type(exc).__name__})") from None
    need = {"ticker", "name", "sector", "country", "adv_usd"}
    missing = need - set(raw.columns)
    if missing:
        raise VendorFileError(name, f"missing column(s) {sorted(missing)}")
    if today is not None and file_date > today:
        raise VendorFileError(name, f"trading date {file_date} is in the future (today is {today})")
    if not raw.schema["adv_usd"].is_numeric():
        raise VendorFileError(name, "column 'adv_usd' is not numeric")
    df = raw.select(
        pl.lit(file_date).alias("trade_date"), pl.col("ticker").cast(pl.Utf8), pl.col("name").cast(pl.Utf8),
        pl.col("sector").cast(pl.Utf8), pl.col("country").cast(pl.Utf8), pl.col("adv_usd").cast(pl.Float64),
        (pl.col("shares_outstanding").cast(pl.Float64) if "shares_outstanding" in raw.columns
         else pl.lit(None, pl.Float64)).alias("shares_outstanding"),
    )  # fmt: skip
    if df["adv_usd"].is_nan().any() or df["adv_usd"].is_infinite().any() or df["adv_usd"].null_count():
        raise VendorFileError(name, "adv_usd has missing, NaN or infinite values")
    dup = df.group_by("ticker").len().filter(pl.col("len") > 1)
    if dup.height:
        raise VendorFileError(name, f"duplicate ticker(s) {sorted(dup['ticker'].to_list())[:5]}")
    return df


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


__all__ = ["VendorFileError", "ParsedPrices", "parse_provider_a", "parse_provider_b", "parse_universe",
           "date_from_name", "is_late", "price_cutoff", "timedelta"]  # fmt: skip
