"""Backtesting: event-driven engine, vectorised fast path, cost model, validation statistics, tear sheet.

Entry points::

    run_backtest(bars, target_weights, costs, initial_capital)    # event-driven reference engine
    run_vectorised(bars, target_weights, costs, initial_capital)  # same results, fast
    write_tearsheet(result.pnl, out_dir)                          # charts + summary dict
    cpcv_splits / cpcv_path_sharpes / walk_forward_evaluate / deflated_sharpe_ratio   # validation

The tear sheet (matplotlib) is imported lazily from ``alpha_assets.lib.backtest.tearsheet``.
"""

from alpha_assets.lib.backtest.costs import CostModel
from alpha_assets.lib.backtest.data import prepare_bars, prepare_target_weights
from alpha_assets.lib.backtest.engine import EventDrivenBacktest, run_backtest
from alpha_assets.lib.backtest.results import FILL_SCHEMA, PNL_SCHEMA, POSITION_SCHEMA, BacktestResult
from alpha_assets.lib.backtest.validation import (
    CPCVSplit,
    InSampleRowsError,
    cpcv_n_paths,
    cpcv_path_assignment,
    cpcv_path_returns,
    cpcv_path_sharpes,
    cpcv_splits,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    return_moments,
    sharpe_ratio,
    sharpe_ratio_std,
    walk_forward_evaluate,
    walk_forward_windows,
)
from alpha_assets.lib.backtest.vectorised import run_vectorised

__all__ = [
    "FILL_SCHEMA",
    "PNL_SCHEMA",
    "POSITION_SCHEMA",
    "BacktestResult",
    "CPCVSplit",
    "CostModel",
    "EventDrivenBacktest",
    "InSampleRowsError",
    "cpcv_n_paths",
    "cpcv_path_assignment",
    "cpcv_path_returns",
    "cpcv_path_sharpes",
    "cpcv_splits",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "prepare_bars",
    "prepare_target_weights",
    "probabilistic_sharpe_ratio",
    "return_moments",
    "run_backtest",
    "run_vectorised",
    "sharpe_ratio",
    "sharpe_ratio_std",
    "walk_forward_evaluate",
    "walk_forward_windows",
]
