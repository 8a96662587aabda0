"""risk.risk_report: VaR both ways, limit breaches, drawdown state and the drawdown control's multiplier."""

import numpy as np
import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Failure,
    Output,
    asset,
)

from alpha_assets.automation import downstream
from alpha_assets.keys import PORTFOLIO_TARGET_WEIGHTS, RAW_PRICES, RISK_RISK_REPORT
from alpha_assets.lib.backtest.costs import CostModel
from alpha_assets.lib.risk import RiskLimits
from alpha_assets.lib.risk_state import REPORT_SCHEMA, RiskState, advance, book_returns, day_trades
from alpha_assets.lib.settings import NAV_USD
from alpha_assets.lib_config import config_of
from partitions import FEATURE_LOOKBACK_SESSIONS, feature_lookback, model_days, window_dates, window_overrun
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource


class RiskConfig(
    config_of(
        RiskLimits, ("level", "daily_var_limit", "weekly_var_limit", "drawdown_threshold", "reduce_factor")
    )
):
    """The risk limits (``lib.risk.RiskLimits``: VaR level and limits, the drawdown control) and the report's own
    settings."""

    var_window: int = 120  # sessions of book returns behind the VaR figures
    # The fund's NAV at inception (the orders' and the backtest's too): costs are charged on it, so drawdown follows
    # the fund's net P&L. The costs are the backtest's CostModel.
    nav_usd: float = NAV_USD


@asset(
    key=RISK_RISK_REPORT,
    ins={
        "weights": AssetIn(key=PORTFOLIO_TARGET_WEIGHTS, partition_mapping=feature_lookback),
        "prices": AssetIn(key=RAW_PRICES, partition_mapping=feature_lookback),
    },
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="risk",
    kinds={"polars", "delta"},
    automation_condition=downstream,
    check_specs=[
        AssetCheckSpec(
            "within_var_limits", asset=RISK_RISK_REPORT, description="daily VaR <= 2%, weekly <= 5%"
        )
    ],
)
def risk_report(
    context: AssetExecutionContext,
    config: RiskConfig,
    weights: pl.DataFrame,
    prices: pl.DataFrame,
    lake_store: DeltaLakeResource,
):
    """Daily risk of the book: historical and parametric VaR (1-day and 5-day), expected shortfall, drawdown of
    the fund's NAV net of trading costs and financing from its running peak, and the drawdown control: beyond the
    threshold, tomorrow's gross exposure is cut by ``reduce_factor`` until a new high. State is read from the
    previous day's row, so a day costs one day."""
    # book returns of the window's first day reach back FEATURE_LOOKBACK_SESSIONS (weights and prices come through
    # feature_lookback)
    if why := window_overrun(
        "var_window",
        config.var_window,
        FEATURE_LOOKBACK_SESSIONS,
        "weights and prices, partitions.feature_lookback",
    ):
        raise Failure(why)
    start, end = window_dates(*context.partition_time_window)
    limits: RiskLimits = config.lib()
    state = RiskState()
    lake = lake_store.lake
    if lake.exists("risk", "risk_report"):
        prev = lake.read("risk", "risk_report", shift_sessions(start, -10), shift_sessions(start, -1))
        if prev.height:
            last = prev.sort("trade_date").row(-1, named=True)
            state = RiskState(
                last["equity"],
                last["peak"],
                last["drawdown_control"],
                last["gross_multiplier_next"],
                last["multiplier"],
            )
    br = (
        book_returns(weights, prices)
        if weights.height
        else pl.DataFrame(schema={"trade_date": pl.Date, "book_return": pl.Float64})
    )
    costs = CostModel()
    trades = day_trades(weights, prices, costs) if weights.height else {}
    returns = br["book_return"].to_numpy()
    position = {d: i for i, d in enumerate(br["trade_date"].to_list())}
    rows = []
    for day in sessions_between(start, end):
        i = position.get(day)
        if i is None:
            continue
        hist = np.asarray(returns[max(0, i + 1 - config.var_window) : i + 1])
        rows.append(
            advance(state, day, float(returns[i]), hist, limits, trades.get(day), config.nav_usd, costs)
        )
    df = pl.DataFrame(rows, schema=REPORT_SCHEMA) if rows else pl.DataFrame(schema=REPORT_SCHEMA)
    breaches = df.filter(pl.col("breaches").is_not_null()) if df.height else df
    yield Output(
        df,
        metadata={
            "rows": df.height,
            "days_with_breaches": breaches.height,
            "drawdown_control_days": int(df["drawdown_control"].sum()) if df.height else 0,
        },
    )
    yield AssetCheckResult(
        check_name="within_var_limits",
        passed=breaches.height == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "breaches": breaches.select(pl.col("trade_date").cast(pl.Utf8), "breaches").head(20).to_dicts()
            if breaches.height
            else []
        },
    )
