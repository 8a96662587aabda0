"""Choose each day's prices from two providers and reconcile them.

Rule per trading day: provider A when its file is valid and on time; otherwise provider B when valid; otherwise
A's late file; otherwise nothing (the day is reported missing and existing rows are kept by the asset). Every row
records its ``source`` and, when not the primary, the ``failover_reason``. Where both providers delivered valid
files, every field that disagrees by more than ``tolerance`` is listed for the reconciliation table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from alpha_assets.lib.ingestion.vendor_files import PRICE_COLUMNS, ParsedPrices

RECON_SCHEMA = {
    "trade_date": pl.Date, "ticker": pl.Utf8, "field": pl.Utf8, "value_a": pl.Float64, "value_b": pl.Float64,
    "rel_diff": pl.Float64, "chosen_source": pl.Utf8,
}  # fmt: skip
PRICES_SCHEMA = {
    "trade_date": pl.Date, "ticker": pl.Utf8, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
    "close": pl.Float64, "volume": pl.Int64, "source": pl.Utf8, "failover_reason": pl.Utf8,
}  # fmt: skip


@dataclass
class DayInputs:
    trade_date: date
    a: ParsedPrices | None = None
    a_error: str | None = None  # why A is unusable: "missing", or the VendorFileError reason
    a_late: bool = False
    b: ParsedPrices | None = None
    b_error: str | None = None


@dataclass
class DayChoice:
    trade_date: date
    source: str | None  # "A", "B", "A_late" or None
    reason: str | None
    rows: pl.DataFrame
    reconciliation: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RECON_SCHEMA))


def choose_day(inp: DayInputs, tolerance: float = 0.005) -> DayChoice:
    if inp.a is not None and not inp.a_late:
        source, reason, chosen = "A", None, inp.a
    elif inp.b is not None:
        why = "provider A late" if inp.a is not None else f"provider A {inp.a_error or 'missing'}"
        source, reason, chosen = "B", why, inp.b
    elif inp.a is not None:
        source, reason, chosen = (
            "A_late",
            f"provider B {inp.b_error or 'missing'}; using A's late file",
            inp.a,
        )
    else:
        empty = pl.DataFrame(schema=PRICES_SCHEMA)
        why = f"A: {inp.a_error or 'missing'}; B: {inp.b_error or 'missing'}"
        return DayChoice(inp.trade_date, None, why, empty)
    rows = chosen.rows.select(PRICE_COLUMNS).with_columns(
        pl.lit(source).alias("source"), pl.lit(reason, dtype=pl.Utf8).alias("failover_reason")
    )
    recon = (
        reconcile(inp.a.rows, inp.b.rows, source, tolerance)
        if inp.a and inp.b
        else pl.DataFrame(schema=RECON_SCHEMA)
    )
    return DayChoice(inp.trade_date, source, reason, rows.cast(PRICES_SCHEMA), recon)


def reconcile(a: pl.DataFrame, b: pl.DataFrame, chosen: str, tolerance: float) -> pl.DataFrame:
    """Fields where A and B differ by more than ``tolerance`` (relative), and names only one provider has."""
    j = a.join(b, on=["trade_date", "ticker"], how="full", suffix="_b", coalesce=True)
    parts = []
    for f in ("open", "high", "low", "close", "volume"):
        va, vb = pl.col(f).cast(pl.Float64), pl.col(f"{f}_b").cast(pl.Float64)
        tol = tolerance if f != "volume" else max(tolerance, 0.05)
        diff = ((va - vb).abs() / vb.abs()).alias("rel_diff")
        parts.append(
            j.select(
                "trade_date",
                "ticker",
                pl.lit(f).alias("field"),
                va.alias("value_a"),
                vb.alias("value_b"),
                diff,
            ).filter(pl.col("rel_diff").is_null() | (pl.col("rel_diff") > tol))
        )
    out = pl.concat(parts).with_columns(pl.lit(chosen).alias("chosen_source"))
    # A name missing at one provider shows once (as its close), not five times.
    out = out.filter(pl.col("rel_diff").is_not_null() | (pl.col("field") == "close"))
    return out.cast(RECON_SCHEMA).sort("ticker", "field")
