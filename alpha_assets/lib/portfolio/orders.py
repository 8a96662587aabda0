"""The daily trade list: the book's target weights, scaled by the risk report's gross multiplier, sized in whole
shares on the fund's NAV, minus the previous book, each order capped at the name's liquidity. Pure polars: the
``portfolio/orders`` asset reads the inputs and writes the frames (table and outbox files)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import polars as pl

ORDERS_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "ticker": pl.Utf8(),
    "target_weight": pl.Float64(),
    "exec_weight": pl.Float64(),
    "close": pl.Float64(),
    "current_shares": pl.Int64(),
    "target_shares": pl.Int64(),
    "order_shares": pl.Int64(),
    "order_value": pl.Float64(),
    "rounding_residual_value": pl.Float64(),
    "side": pl.Utf8(),
}
# The execution system's file: the trades only (no "hold" rows), whole shares.
ORDER_FILE_COLUMNS = [
    "trade_date",
    "ticker",
    "side",
    "order_shares",
    "close",
    "order_value",
    "target_shares",
    "current_shares",
    "target_weight",
    "exec_weight",
    "rounding_residual_value",
]


# No order trades more than this multiple of the name's liquidity limit, its average daily dollar volume (raw.universe's
# adv_usd): an order above it (a bad price, a runaway weight) is cut to it, never sent whole. A name the universe
# gives no ADV for (one leaving it) is not cut, so that it can always be sold.
MAX_ORDER_ADV_MULTIPLE = 1.0


def cap_to_liquidity(o: pl.DataFrame, universe: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """``o`` (one day's orders) with every order above ``MAX_ORDER_ADV_MULTIPLE`` x ADV cut to it (whole shares;
    ``target_shares`` follows), and the cut orders as {"ticker", "order_value", "limit_usd"}."""
    adv = universe.select("ticker", pl.col("adv_usd").cast(pl.Float64)).unique("ticker", keep="last")
    o = o.join(adv, on="ticker", how="left").with_columns(
        (pl.col("adv_usd") * MAX_ORDER_ADV_MULTIPLE).alias("_limit")
    )
    over = (
        pl.col("_limit").is_not_null()
        & (pl.col("close") > 0)
        & (pl.col("order_value").abs() > pl.col("_limit"))
    ).fill_null(False)
    cut = o.filter(over).select("ticker", "order_value", pl.col("_limit").alias("limit_usd")).to_dicts()
    shares = (pl.col("order_shares").sign() * (pl.col("_limit") / pl.col("close")).floor()).cast(pl.Int64)
    o = o.with_columns(pl.when(over).then(shares).otherwise(pl.col("order_shares")).alias("order_shares"))
    o = o.with_columns((pl.col("current_shares") + pl.col("order_shares")).alias("target_shares"))
    return _sides(o).drop("adv_usd", "_limit"), cut


def _sides(o: pl.DataFrame) -> pl.DataFrame:
    """``order_value`` and ``side`` (buy, sell, hold) from ``order_shares`` and ``close``."""
    return o.with_columns(
        (pl.col("order_shares") * pl.col("close")).alias("order_value"),
        pl.when(pl.col("order_shares") > 0)
        .then(pl.lit("buy"))
        .when(pl.col("order_shares") < 0)
        .then(pl.lit("sell"))
        .otherwise(pl.lit("hold"))
        .alias("side"),
    )


def book_orders(
    weights: pl.DataFrame,
    multipliers: dict[date, float],
    prices: pl.DataFrame,
    universe: pl.DataFrame,
    nav_usd: float,
    sessions: Iterable[date],
) -> tuple[list[pl.DataFrame], list[dict]]:
    """One ``ORDERS_SCHEMA`` frame per session of ``sessions`` with a book in ``weights`` (trade_date, ticker,
    weight; the previous book day included), and the orders cut to liquidity ({"trade_date", "ticker",
    "order_value", "limit_usd"}). ``multipliers``: the drawdown control's gross multiplier by day (default 1);
    ``prices``: the closes of those days; ``universe``: each day's ``adv_usd``. A frame holds every name of the
    day's book and of the previous one (``side`` "hold" when nothing trades), with ``rounding_residual_value`` the
    value the rounding to whole shares leaves out of each position."""
    closes = prices.select("trade_date", "ticker", "close")
    w = (
        weights.select("trade_date", "ticker", "weight")
        .with_columns(
            pl.col("trade_date")
            .replace_strict(multipliers, default=1.0, return_dtype=pl.Float64)
            .alias("mult")
        )
        .with_columns((pl.col("weight") * pl.col("mult")).alias("exec_weight"))
        .join(closes, on=["trade_date", "ticker"], how="left")
    )
    exact = pl.col("exec_weight") * nav_usd / pl.col("close")
    w = w.with_columns(
        exact.round(0).cast(pl.Int64).alias("shares"),
        ((exact - exact.round(0)) * pl.col("close")).alias("rounding_residual_value"),
    )
    days = sorted(set(w["trade_date"].to_list()))
    previous_book_day = dict(zip(days[1:], days[:-1], strict=True))
    frames: list[pl.DataFrame] = []
    cut: list[dict] = []
    for day in sessions:
        if day not in days:
            continue
        prev = previous_book_day.get(day)
        cur = (
            w.filter(pl.col("trade_date") == prev).select("ticker", pl.col("shares").alias("current_shares"))
            if prev is not None
            else pl.DataFrame(schema={"ticker": pl.Utf8, "current_shares": pl.Int64})
        )
        tgt = w.filter(pl.col("trade_date") == day)
        o = (
            tgt.join(cur, on="ticker", how="full", coalesce=True)
            .with_columns(
                pl.lit(day).alias("trade_date"),
                pl.col("weight").fill_null(0.0).alias("target_weight"),
                pl.col("exec_weight").fill_null(0.0),
                pl.col("current_shares").fill_null(0),
                pl.col("shares").fill_null(0).alias("target_shares"),
                pl.col("rounding_residual_value").fill_null(0.0),
            )
            .with_columns((pl.col("target_shares") - pl.col("current_shares")).alias("order_shares"))
        )
        o = o.join(
            closes.filter(pl.col("trade_date") == day).select("ticker", pl.col("close").alias("close_d")),
            on="ticker",
            how="left",
        ).with_columns(pl.coalesce("close", "close_d").alias("close"))
        o, day_cut = cap_to_liquidity(_sides(o), universe.filter(pl.col("trade_date") == day))
        cut += [{"trade_date": str(day), **c} for c in day_cut]
        frames.append(o.select(list(ORDERS_SCHEMA)).cast(pl.Schema(ORDERS_SCHEMA)).sort("ticker"))
    return frames, cut
