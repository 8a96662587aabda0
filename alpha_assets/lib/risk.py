"""Risk statistics of a portfolio's daily returns: VaR, expected shortfall, drawdowns and the drawdown control.

Conventions (the same in every function):

- Inputs are simple (not log) daily returns as a 1-D sequence: numpy array, list or polars Series. Missing or
  non-finite values raise ``ValueError``: a gap in a P&L series is a data problem to fix upstream, not to guess.
- **VaR and expected shortfall are positive loss numbers**: ``0.021`` means "a 2.1% loss". A negative VaR means
  that even the tail outcome is a gain.
- ``level`` is the confidence level (0.99); the tail probability is ``1 - level``.
- Horizons: the 5-day (weekly) historical figure uses *overlapping* 5-day compounded returns
  ``prod(1 + r[t:t+5]) - 1``; the parametric one scales the daily normal as ``mu * h`` and ``sigma * sqrt(h)``.
- Historical VaR is ``-percentile(returns, 100 * (1 - level))`` with numpy's linear interpolation, and expected
  shortfall the mean of the ``floor((n - 1) * (1 - level)) + 1`` worst returns, negated: the conventions of
  empyrical's ``value_at_risk`` and ``conditional_value_at_risk`` with ``cutoff = 1 - level``.
- Drawdowns are positive fractions from the running peak of compounded equity, which starts at 1 (the start
  counts as a peak): ``0.12`` is 12% below the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

WEEKLY_HORIZON = 5


@dataclass(frozen=True)
class RiskLimits:
    """Risk limits a PM tunes: VaR confidence and limits, and the drawdown control's trigger and cut."""

    level: float = 0.99
    daily_var_limit: float = 0.02
    weekly_var_limit: float = 0.05
    weekly_horizon: int = WEEKLY_HORIZON
    drawdown_threshold: float = 0.10
    reduce_factor: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError("level must lie in (0, 1)")
        if self.weekly_horizon < 1:
            raise ValueError("weekly_horizon must be at least one day")
        if not 0 < self.drawdown_threshold < 1:
            raise ValueError("drawdown_threshold must lie in (0, 1)")
        if not 0 <= self.reduce_factor <= 1:
            raise ValueError("reduce_factor must lie in [0, 1]")


def daily_returns(returns: Any) -> np.ndarray:
    """A 1-D float64 array of daily returns; raises on missing or non-finite values."""
    array = np.asarray(returns.to_numpy() if hasattr(returns, "to_numpy") else returns, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("returns contain missing or non-finite values")
    return array


def horizon_returns(returns: Any, horizon: int = 1) -> np.ndarray:
    """Overlapping ``horizon``-day compounded returns ``prod(1 + r[t:t+h]) - 1`` (length ``T - h + 1``)."""
    array = daily_returns(returns)
    if horizon < 1:
        raise ValueError("horizon must be at least one day")
    if horizon == 1 or array.size < horizon:
        return array if horizon == 1 else np.empty(0)
    return np.lib.stride_tricks.sliding_window_view(1.0 + array, horizon).prod(axis=1) - 1.0


def historical_var(returns: Any, level: float = 0.99, *, horizon: int = 1) -> float:
    """Historical VaR as a positive loss: minus the ``1 - level`` percentile of ``horizon``-day returns.

    NaN when there are fewer than ``horizon`` days.
    """
    outcomes = horizon_returns(returns, horizon)
    if outcomes.size == 0:
        return math.nan
    return -float(np.percentile(outcomes, 100.0 * (1.0 - level)))


def parametric_var(returns: Any, level: float = 0.99, *, horizon: int = 1) -> float:
    """Normal VaR as a positive loss: ``-(mu * h - z * sigma * sqrt(h))``, z the ``level`` normal quantile.

    ``mu`` and ``sigma`` (ddof=1) are the daily mean and standard deviation. NaN with fewer than 2 days.
    """
    array = daily_returns(returns)
    if array.size < 2:
        return math.nan
    z = NormalDist().inv_cdf(level)
    return -(float(array.mean()) * horizon - z * float(array.std(ddof=1)) * math.sqrt(horizon))


def expected_shortfall(returns: Any, level: float = 0.99, *, horizon: int = 1) -> float:
    """Historical expected shortfall (CVaR) as a positive loss: minus the mean of the worst outcomes.

    The tail holds the ``floor((n - 1) * (1 - level)) + 1`` worst of the ``n`` horizon returns (empyrical's
    count), so it is never empty. NaN when there are fewer than ``horizon`` days.
    """
    outcomes = horizon_returns(returns, horizon)
    if outcomes.size == 0:
        return math.nan
    tail_end = int((outcomes.size - 1) * (1.0 - level))
    return -float(np.mean(np.partition(outcomes, tail_end)[: tail_end + 1]))


def equity_curve(returns: Any) -> np.ndarray:
    """Compounded equity after each day, starting from 1 before the first day (length T)."""
    return np.cumprod(1.0 + daily_returns(returns))


def drawdown_series(returns: Any) -> np.ndarray:
    """Drawdown after each day, ``1 - equity / running peak``, with the starting equity of 1 as a peak."""
    equity = equity_curve(returns)
    peak = np.maximum.accumulate(np.maximum(equity, 1.0)) if equity.size else equity
    return 1.0 - equity / peak


def max_drawdown(returns: Any) -> float:
    """Largest drawdown from a running peak of compounded equity (0 when equity never fell; NaN if empty)."""
    drawdowns = drawdown_series(returns)
    return float(drawdowns.max()) if drawdowns.size else math.nan


def drawdown_control(
    returns: Any,
    threshold: float = 0.10,
    reduce_factor: float = 0.5,
    *,
    returns_are_realised: bool = False,
) -> np.ndarray:
    """Gross-exposure multiplier for each day: 1, or ``reduce_factor`` while the book is de-risked.

    Rule: when the drawdown from the running equity peak exceeds ``threshold`` at a day's close, exposure is
    cut to ``reduce_factor`` from the **next** day on; it is restored to 1 only after equity closes at or above
    its running peak (a new high), again from the next day on. ``multipliers[t]`` applies to day t's return.

    By default ``returns`` are the strategy's returns at full exposure and the tracked equity is the realised
    one, compounding ``multipliers[t] * returns[t]`` (so recovery is earned with the reduced book). With
    ``returns_are_realised=True`` the returns already include the control (a live P&L) and are compounded as
    they are.
    """
    return _control_path(returns, threshold, reduce_factor, returns_are_realised)[:-1]


def _control_path(returns: Any, threshold: float, reduce_factor: float, realised: bool) -> np.ndarray:
    """Multipliers for each day plus the one for the day after the last (length T + 1)."""
    array = daily_returns(returns)
    multipliers = np.ones(array.size + 1)
    equity = peak = 1.0
    reduced = False
    # A sequential state machine: each day's multiplier depends on the equity its predecessors produced.
    for day, daily in enumerate(array.tolist()):
        multiplier = reduce_factor if reduced else 1.0
        multipliers[day] = multiplier
        equity *= 1.0 + (daily if realised else multiplier * daily)
        if equity >= peak:
            peak = equity
            reduced = False
        elif 1.0 - equity / peak > threshold:
            reduced = True
    multipliers[-1] = reduce_factor if reduced else 1.0
    return multipliers


def risk_report_row(returns: Any, limits: RiskLimits | None = None) -> dict[str, Any]:
    """One row of the daily risk report from the portfolio's realised daily returns up to today.

    Keys: ``n_days``, ``level``, ``var_hist_1d``, ``var_param_1d``, ``var_hist_5d``, ``var_param_5d`` (weekly
    horizon), ``es_1d``, ``drawdown`` (today's), ``max_drawdown``, ``gross_multiplier`` (the drawdown control's
    multiplier for tomorrow, following the realised equity), and ``breaches``: one line per VaR figure above
    its limit (daily limit for 1-day figures, weekly for 5-day). VaR and drawdowns are positive losses;
    figures that need more history than available are NaN and never breach.
    """
    limits = limits or RiskLimits()
    array = daily_returns(returns)
    horizon = limits.weekly_horizon
    drawdowns = drawdown_series(array)
    row: dict[str, Any] = {
        "n_days": int(array.size),
        "level": limits.level,
        "var_hist_1d": historical_var(array, limits.level),
        "var_param_1d": parametric_var(array, limits.level),
        "var_hist_5d": historical_var(array, limits.level, horizon=horizon),
        "var_param_5d": parametric_var(array, limits.level, horizon=horizon),
        "es_1d": expected_shortfall(array, limits.level),
        "drawdown": float(drawdowns[-1]) if drawdowns.size else math.nan,
        "max_drawdown": max_drawdown(array),
        "gross_multiplier": float(
            _control_path(array, limits.drawdown_threshold, limits.reduce_factor, realised=True)[-1]
        ),
    }
    breaches = []
    for key, limit, label in (
        ("var_hist_1d", limits.daily_var_limit, "daily"),
        ("var_param_1d", limits.daily_var_limit, "daily"),
        ("var_hist_5d", limits.weekly_var_limit, "weekly"),
        ("var_param_5d", limits.weekly_var_limit, "weekly"),
    ):
        if row[key] > limit:
            breaches.append(f"{key} {row[key]:.2%} > {label} VaR limit {limit:.2%}")
    row["breaches"] = breaches
    return row


__all__ = [
    "RiskLimits",
    "daily_returns",
    "drawdown_control",
    "drawdown_series",
    "equity_curve",
    "expected_shortfall",
    "historical_var",
    "horizon_returns",
    "max_drawdown",
    "parametric_var",
    "risk_report_row",
]
