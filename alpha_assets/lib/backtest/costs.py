"""Trading-cost model shared by the event-driven engine and the vectorised fast path.

One formula, used by both paths, so that a fill of the same size on the same bar costs exactly the same
dollars whichever path simulates it. All costs are positive dollar amounts charged on top of trading at the
reference price (the session open).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alpha_assets.lib.settings import SESSIONS_PER_YEAR

BPS = 1e-4


@dataclass(frozen=True)
class CostModel:
    """Execution and financing assumptions a portfolio manager tunes.

    Market impact (square-root law): ``impact_frac = impact_coef * sigma * sqrt(shares / adv_shares)``,
    where ``sigma`` is the name's daily return volatility and ``adv_shares`` its average daily volume, both
    known before the open of the trading session.

    Slippage (volume share): ``slippage_frac = slippage_bps * 1e-4 * participation`` with
    ``participation = shares / session volume``.

    Participation cap: at most ``max_participation`` of the session's volume is filled per name and day
    (``None``: no cap). With ``carry_unfilled`` the remainder stays live and is worked on the following
    sessions until filled or replaced by a new target; without it the remainder is dropped after the session.

    Commission on all traded value; a regulatory fee (SEC section 31 style) on sold value only.

    Financing, charged at each close on the positions held overnight, per trading day
    (``rate / days_per_year``): ``borrow_rate_annual`` on short market value, ``margin_rate_annual`` on a
    negative cash balance (leverage), and ``cash_rate_annual`` credited on a positive cash balance.
    """

    impact_coef: float = 1.0
    slippage_bps: float = 100.0
    max_participation: float | None = 0.10
    carry_unfilled: bool = True
    commission_bps: float = 5.0
    sell_fee_bps: float = 0.2
    borrow_rate_annual: float = 0.005
    margin_rate_annual: float = 0.0
    cash_rate_annual: float = 0.0
    days_per_year: int = SESSIONS_PER_YEAR
    vol_window: int = 20
    adv_window: int = 20
    default_sigma: float = 0.02

    def __post_init__(self) -> None:
        if self.max_participation is not None and not 0.0 < self.max_participation <= 1.0:
            raise ValueError(f"max_participation must be in (0, 1] or None, got {self.max_participation}")
        if self.vol_window < 2 or self.adv_window < 1:
            raise ValueError("vol_window must be >= 2 and adv_window >= 1")

    @property
    def slippage_rate(self) -> float:
        return self.slippage_bps * BPS

    @property
    def commission_rate(self) -> float:
        return self.commission_bps * BPS

    @property
    def sell_fee_rate(self) -> float:
        return self.sell_fee_bps * BPS

    @property
    def daily_borrow_rate(self) -> float:
        return self.borrow_rate_annual / self.days_per_year

    @property
    def daily_margin_rate(self) -> float:
        return self.margin_rate_annual / self.days_per_year

    @property
    def daily_cash_rate(self) -> float:
        return self.cash_rate_annual / self.days_per_year


def trade_costs(abs_shares, price, session_volume, sigma, adv_shares, is_sell, costs: CostModel):
    """Dollar costs of filling ``abs_shares`` (> 0) at ``price``; elementwise on floats or numpy arrays.

    Returns ``(impact_cost, slippage_cost, commission, fee)``. The arithmetic is written once and in a fixed
    order so the engine (scalars) and the fast path (arrays) agree to the last bit per fill.
    """
    traded_value = abs_shares * price
    impact_cost = costs.impact_coef * sigma * np.sqrt(abs_shares / adv_shares) * traded_value
    slippage_cost = costs.slippage_rate * (abs_shares / session_volume) * traded_value
    commission = costs.commission_rate * traded_value
    fee = np.where(is_sell, costs.sell_fee_rate * traded_value, 0.0)
    return impact_cost, slippage_cost, commission, fee


def daily_financing(short_market_value: float, cash: float, costs: CostModel) -> float:
    """Net financing cost (positive = paid) for one overnight hold."""
    return (
        costs.daily_borrow_rate * short_market_value
        + costs.daily_margin_rate * max(-cash, 0.0)
        - costs.daily_cash_rate * max(cash, 0.0)
    )
