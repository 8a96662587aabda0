"""reports.backtest: the event-driven-equivalent simulation of the executed books, with costs, and a tear sheet."""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    MetadataValue,
    Output,
    multi_asset,
)

from alpha_assets.keys import (
    PORTFOLIO_ORDERS,
    RAW_PRICES,
    REPORTS_BACKTEST_FILLS,
    REPORTS_BACKTEST_PNL,
    REPORTS_BACKTEST_POSITIONS,
)
from alpha_assets.lib.backtest import (
    CostModel,
    probabilistic_sharpe_ratio,
    return_moments,
    run_vectorised,
    sharpe_ratio,
)
from alpha_assets.lib.settings import NAV_USD
from alpha_assets.lib_config import config_of
from alpha_assets.metadata import plot_metadata
from resources.outbox import OutboxResource

# The tear sheet's pictures shown on the asset page and the dashboard (as the plots ``backtest_<file>``): file, title.
TEARSHEET_PICTURES = (
    ("equity", "Equity"),
    ("drawdown", "Drawdown"),
    ("monthly_returns", "Monthly net returns"),
)


def executed_targets(orders: pl.DataFrame, lo, hi) -> pl.DataFrame:
    """Every executed target between ``lo`` and ``hi``, zeros included: a day whose book is all zero (drawdown
    control at ``reduce_factor=0``) is a rebalance to flat, not a day without a decision."""
    return orders.select("trade_date", "ticker", pl.col("exec_weight").alias("weight")).filter(
        pl.col("trade_date").is_between(lo, hi)
    )


class BacktestConfig(
    config_of(
        CostModel,
        ("commission_bps", "sell_fee_bps", "borrow_rate_annual", "impact_coef", "max_participation"),
    )
):
    """The cost assumptions a PM tunes (``lib.backtest.costs.CostModel``, the rest at its defaults) and the
    backtest's span and capital."""

    start: str | None = None  # YYYY-MM-DD; default: first day with orders
    end: str | None = None
    initial_capital: float = NAV_USD


@multi_asset(
    outs={
        "backtest_pnl": AssetOut(key=REPORTS_BACKTEST_PNL, kinds={"polars", "delta"}),
        "backtest_fills": AssetOut(key=REPORTS_BACKTEST_FILLS, kinds={"polars", "delta"}),
        "backtest_positions": AssetOut(key=REPORTS_BACKTEST_POSITIONS, kinds={"polars", "delta"}),
    },
    ins={
        "orders": AssetIn(key=PORTFOLIO_ORDERS),
        "prices": AssetIn(key=RAW_PRICES),
    },
    group_name="reports",
)
def backtest(
    context: AssetExecutionContext,
    config: BacktestConfig,
    orders: pl.DataFrame,
    prices: pl.DataFrame,
    outbox: OutboxResource,
):
    """Simulate the executed books over a date range: weights decided at the close of D trade at D+1's open with
    square-root impact, volume-share slippage, a participation cap, commission, sell fees and short financing.
    Writes daily P&L, fills and positions, and a tear sheet (equity, drawdown, turnover, costs)."""
    from datetime import date

    from alpha_assets.lib.backtest.tearsheet import write_tearsheet

    lo = date.fromisoformat(config.start) if config.start else orders["trade_date"].min()
    hi = date.fromisoformat(config.end) if config.end else prices["trade_date"].max()
    w = executed_targets(orders, lo, hi)
    bars = prices.filter(pl.col("trade_date") <= hi).select("trade_date", "ticker", "open", "close", "volume")
    costs: CostModel = config.lib()
    traded = set(w["ticker"].unique().to_list())
    res = run_vectorised(bars.filter(pl.col("ticker").is_in(traded)), w, costs, config.initial_capital)
    pnl = res.pnl.filter(pl.col("trade_date") >= lo)
    summary = write_tearsheet(pnl, outbox.report_dir("backtest"))
    rets = pnl["return"].drop_nulls().to_numpy()
    sr = sharpe_ratio(rets)
    skew, kurt = return_moments(rets)
    psr = probabilistic_sharpe_ratio(sr, 0.0, len(rets), skew, kurt) if len(rets) > 2 else float("nan")
    md = {
        k: (float(v) if isinstance(v, int | float) else str(v))
        for k, v in summary.items()
        if not isinstance(v, dict)
    }
    report = outbox.report_dir("backtest")
    # The pictures on the asset page itself and on the dashboard's Reports page, with the link to them there
    # (the full HTML tear sheet stays a file for sharing).
    pictures = {}
    for key, title in TEARSHEET_PICTURES:
        pictures.update(
            plot_metadata(
                f"backtest_{key}",
                report / f"{key}.png",
                title,
                "/".join(REPORTS_BACKTEST_PNL.path),
                key=key,
                day=pnl["trade_date"].max() if pnl.height else None,
            )
        )
    yield Output(
        pnl,
        output_name="backtest_pnl",
        metadata={
            **md,
            "psr_vs_zero": float(psr),
            "days": pnl.height,
            **pictures,
            "tearsheet": MetadataValue.path(str(report / "tearsheet.html")),
        },
    )
    yield Output(res.fills, output_name="backtest_fills", metadata={"rows": res.fills.height})
    yield Output(res.positions, output_name="backtest_positions", metadata={"rows": res.positions.height})
