"""The blocking checks of raw.prices, re-verified on the table the asset writes (not on what it meant to write).

``price_problems``: malformed tickers, missing, non-finite or non-positive prices, duplicate ticker-days.
``contradicted_rows``: rows the other provider contradicts beyond ``BLOCK_TOLERANCE`` that the name's own
history does not side with. Either failing stops everything downstream of raw.prices (features, books, orders).
"""

from __future__ import annotations

import polars as pl

from alpha_assets.lib.ingestion.contracts import TICKER_PATTERN
from alpha_assets.lib.ingestion.prices import BLOCK_TOLERANCE, PRICE_FIELDS, History


def price_problems(df: pl.DataFrame) -> list[dict]:
    """One entry per kind of problem: {"problem", "rows", "examples"} (empty when the table is valid)."""
    out = []
    ticker = pl.col("ticker")
    prices = [pl.col(c) for c in PRICE_FIELDS]
    for problem, bad in (
        (
            "ticker missing or not upper-case A-Z0-9.-",
            ticker.is_null() | ~ticker.str.contains(TICKER_PATTERN),
        ),
        (
            "price missing, NaN, infinite or not positive",
            pl.any_horizontal([c.is_null() | ~c.is_finite() | (c <= 0) for c in prices]),
        ),
        ("volume missing or negative", pl.col("volume").is_null() | (pl.col("volume") < 0)),
        ("duplicate ticker-day", pl.struct("trade_date", "ticker").is_duplicated()),
    ):
        rows = df.filter(bad.fill_null(True))
        if rows.height:
            examples = rows.select(pl.col("trade_date").cast(pl.Utf8), "ticker").head(5).to_dicts()
            out.append({"problem": problem, "rows": rows.height, "examples": examples})
    return out


def contradicted_rows(
    df: pl.DataFrame, recon: pl.DataFrame, before: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Rows of ``df`` whose price the other provider contradicts beyond ``BLOCK_TOLERANCE`` (``recon``, the
    reconciliation of the window) while the name's history (``before`` the window, then ``df`` itself) does not
    side with the value used: the value jumps beyond the name's bound from its previous close."""
    schema = {
        "trade_date": pl.Date,
        "ticker": pl.Utf8,
        "source": pl.Utf8,
        "close": pl.Float64,
        "reason": pl.Utf8,
    }
    if recon.height == 0 or df.height == 0:
        return pl.DataFrame(schema=schema)
    disputed = (
        recon.filter(pl.col("field").is_in(list(PRICE_FIELDS)) & (pl.col("rel_diff") > BLOCK_TOLERANCE))
        .select("trade_date", "ticker")
        .unique()
        .join(df.select("trade_date", "ticker", "source", "close"), on=["trade_date", "ticker"], how="inner")
    )
    out = []
    past = before.select("trade_date", "ticker", "close") if before is not None else None
    for d, t, source, close in disputed.sort("trade_date", "ticker").iter_rows():
        earlier = df.filter((pl.col("ticker") == t) & (pl.col("trade_date") < d)).select(
            "trade_date", "ticker", "close"
        )
        if past is not None:
            earlier = pl.concat([past.filter(pl.col("ticker") == t), earlier])
        history = History(earlier)
        jump = history.jump(t, close)
        if jump is None or jump > history.bound(t):
            why = (
                "no history to side with it"
                if jump is None
                else f"jumps {jump:.2f} in log from the last close"
            )
            out.append(
                {
                    "trade_date": d,
                    "ticker": t,
                    "source": source,
                    "close": close,
                    "reason": f"the other provider disagrees beyond {BLOCK_TOLERANCE:.0%}; {why}",
                }
            )
    return pl.DataFrame(out, schema=schema) if out else pl.DataFrame(schema=schema)


__all__ = ["contradicted_rows", "price_problems"]
