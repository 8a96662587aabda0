"""Event-driven daily backtest: the reference simulator against which the vectorised fast path is checked.

An explicit FIFO event queue is drained twice per session::

    open : MarketDataEvent(open)  -> OrderManager: OrderEvent per name (live target shares - current shares)
           OrderEvent             -> ExecutionSimulator (participation cap, costs) -> FillEvent
           FillEvent              -> Portfolio (shares, cash)
    close: MarketDataEvent(close) -> Portfolio marks to the close, pays overnight financing
                                  -> RiskManager (running peak, drawdown) -> daily pnl / positions rows
                                  -> SignalEvent if target weights are dated this session
           SignalEvent            -> OrderManager: target shares = weight * equity / close, live from now on

So weights dated D (decided with data to the close of D) trade at the open of D+1; see
``alpha_assets.lib.backtest.data`` for the full timing convention. Shares are fractional. A name without a
bar in a session cannot trade (its order waits) and is valued at its last close. Unfilled remainders carry
over to later sessions when ``CostModel.carry_unfilled`` (else they expire at the close).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, NamedTuple

import polars as pl

from alpha_assets.lib.backtest.costs import CostModel, daily_financing, trade_costs
from alpha_assets.lib.backtest.data import index_bars, index_target_weights
from alpha_assets.lib.backtest.results import FILL_SCHEMA, PNL_SCHEMA, POSITION_SCHEMA, BacktestResult


class Bar(NamedTuple):
    open: float
    close: float
    volume: float
    sigma: float
    adv_shares: float


@dataclass(frozen=True)
class MarketDataEvent:
    trade_date: date
    phase: Literal["open", "close"]


@dataclass(frozen=True)
class SignalEvent:
    trade_date: date
    weights: dict[str, float]


@dataclass(frozen=True)
class OrderEvent:
    trade_date: date
    ticker: str
    shares: float  # signed: + buy, - sell


@dataclass(frozen=True)
class FillEvent:
    trade_date: date
    ticker: str
    shares: float  # signed filled shares
    price: float
    impact_cost: float
    slippage_cost: float
    commission: float
    fee: float
    completes_order: bool
    capped: bool

    @property
    def total_cost(self) -> float:
        return self.impact_cost + self.slippage_cost + self.commission + self.fee


Event = MarketDataEvent | SignalEvent | OrderEvent | FillEvent


@dataclass
class Portfolio:
    """Cash, signed share holdings, last closes and the live target shares."""

    cash: float
    shares: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    last_close: dict[str, float] = field(default_factory=dict)

    def apply_fill(self, fill: FillEvent) -> None:
        # A completed order lands exactly on the target so no floating dust is re-traded the next day.
        new_shares = (
            self.targets.get(fill.ticker, 0.0)
            if fill.completes_order
            else (self.shares.get(fill.ticker, 0.0) + fill.shares)
        )
        if new_shares == 0.0:
            self.shares.pop(fill.ticker, None)
        else:
            self.shares[fill.ticker] = new_shares
        self.cash -= fill.shares * fill.price + fill.total_cost

    def market_values(self) -> dict[str, float]:
        return {ticker: held * self.last_close[ticker] for ticker, held in self.shares.items()}


class OrderManager:
    """Turns target weights into live target shares and live targets into orders at each open."""

    def __init__(self, portfolio: Portfolio) -> None:
        self.portfolio = portfolio

    def set_targets(self, signal: SignalEvent, equity: float) -> None:
        last_close = self.portfolio.last_close
        targets: dict[str, float] = {}
        for ticker, weight in signal.weights.items():
            close = last_close.get(ticker, 0.0)
            if close <= 0.0:
                if weight != 0.0:
                    raise ValueError(f"{signal.trade_date}: weight for {ticker} before it has any close")
                continue
            targets[ticker] = weight * equity / close
        self.portfolio.targets = targets  # names left out of a rebalance have target 0

    def orders_at_open(self, trade_date: date) -> list[OrderEvent]:
        portfolio = self.portfolio
        names = sorted(set(portfolio.targets) | set(portfolio.shares))
        orders = []
        for ticker in names:
            order = portfolio.targets.get(ticker, 0.0) - portfolio.shares.get(ticker, 0.0)
            if order != 0.0:
                orders.append(OrderEvent(trade_date, ticker, order))
        return orders

    def expire_unfilled(self) -> None:
        self.portfolio.targets = {t: s for t, s in self.portfolio.shares.items()}


class ExecutionSimulator:
    """Fills orders at the session open within the participation cap and prices their costs."""

    def __init__(self, costs: CostModel) -> None:
        self.costs = costs

    def execute(self, order: OrderEvent, bar: Bar | None) -> FillEvent | None:
        if bar is None or not bar.volume > 0.0:
            return None
        abs_order = abs(order.shares)
        cap = None if self.costs.max_participation is None else self.costs.max_participation * bar.volume
        if cap is None or abs_order <= cap:
            filled, completes, capped = order.shares, True, False
        else:
            filled, completes, capped = math.copysign(cap, order.shares), False, True
        abs_filled = abs(filled)
        impact, slippage, commission, fee = trade_costs(
            abs_filled, bar.open, bar.volume, bar.sigma, bar.adv_shares, filled < 0.0, self.costs
        )
        return FillEvent(
            order.trade_date,
            order.ticker,
            filled,
            bar.open,
            float(impact),
            float(slippage),
            float(commission),
            float(fee),
            completes,
            capped,
        )


class RiskManager:
    """Tracks the running equity peak (starting at the initial capital) and the drawdown from it."""

    def __init__(self, initial_capital: float) -> None:
        self.peak = initial_capital
        self.drawdown = 0.0

    def update(self, equity: float) -> float:
        self.peak = max(self.peak, equity)
        self.drawdown = equity / self.peak - 1.0
        return self.drawdown


class EventDrivenBacktest:
    """One backtest run over daily bars; build, then ``run()``."""

    def __init__(
        self,
        bars: pl.DataFrame,
        target_weights: pl.DataFrame,
        costs: CostModel | None = None,
        initial_capital: float = 1_000_000.0,
    ) -> None:
        self.costs = costs or CostModel()
        self.initial_capital = float(initial_capital)
        indexed = index_bars(bars, self.costs)
        self.sessions: list[date] = indexed.sessions.to_list()
        weights = index_target_weights(target_weights, indexed).sort("session_idx", "name_idx")
        prepared = indexed.frame.sort("session_idx", "name_idx")
        self._bars: dict[date, dict[str, Bar]] = {}
        for (session,), rows in prepared.partition_by(
            "trade_date", as_dict=True, maintain_order=True
        ).items():
            self._bars[session] = {
                row[0]: Bar(*row[1:])
                for row in rows.select("ticker", "open", "close", "volume", "sigma", "adv_shares").iter_rows()
            }
        self._weights: dict[date, dict[str, float]] = {
            session: dict(rows.select("ticker", "weight").iter_rows())
            for (session,), rows in weights.partition_by(
                "trade_date", as_dict=True, maintain_order=True
            ).items()
        }
        self.queue: deque[Event] = deque()
        self.portfolio = Portfolio(cash=self.initial_capital)
        self.order_manager = OrderManager(self.portfolio)
        self.execution = ExecutionSimulator(self.costs)
        self.risk = RiskManager(self.initial_capital)
        self._equity = self.initial_capital
        self._session_fills: list[FillEvent] = []
        self._fill_rows: list[tuple] = []
        self._position_rows: list[tuple] = []
        self._pnl_rows: list[tuple] = []

    def run(self) -> BacktestResult:
        for session in self.sessions:
            for phase in ("open", "close"):
                self.queue.append(MarketDataEvent(session, phase))
                self._drain()
        return BacktestResult(
            fills=pl.DataFrame(self._fill_rows, schema=FILL_SCHEMA, orient="row"),
            positions=pl.DataFrame(self._position_rows, schema=POSITION_SCHEMA, orient="row"),
            pnl=pl.DataFrame(self._pnl_rows, schema=PNL_SCHEMA, orient="row"),
            initial_capital=self.initial_capital,
        )

    def _drain(self) -> None:
        while self.queue:
            event = self.queue.popleft()
            if isinstance(event, MarketDataEvent) and event.phase == "open":
                self._on_open(event)
            elif isinstance(event, MarketDataEvent):
                self._on_close(event)
            elif isinstance(event, OrderEvent):
                fill = self.execution.execute(event, self._bars[event.trade_date].get(event.ticker))
                if fill is not None:
                    self.queue.append(fill)
            elif isinstance(event, FillEvent):
                self._on_fill(event)
            elif isinstance(event, SignalEvent):
                self.order_manager.set_targets(event, self._equity)

    def _on_open(self, event: MarketDataEvent) -> None:
        self._session_fills = []
        self.queue.extend(self.order_manager.orders_at_open(event.trade_date))

    def _on_fill(self, fill: FillEvent) -> None:
        self.portfolio.apply_fill(fill)
        self._session_fills.append(fill)
        self._fill_rows.append(
            (
                fill.trade_date,
                fill.ticker,
                "buy" if fill.shares > 0.0 else "sell",
                abs(fill.shares),
                fill.price,
                fill.impact_cost,
                fill.slippage_cost,
                fill.commission,
                fill.fee,
            )
        )

    def _on_close(self, event: MarketDataEvent) -> None:
        session, portfolio = event.trade_date, self.portfolio
        if not self.costs.carry_unfilled:
            self.order_manager.expire_unfilled()
        for ticker, bar in self._bars[session].items():
            portfolio.last_close[ticker] = bar.close
        market_values = portfolio.market_values()
        short_value = math.fsum(-mv for mv in market_values.values() if mv < 0.0)
        financing = daily_financing(short_value, portfolio.cash, self.costs)
        portfolio.cash -= financing
        long_short = math.fsum(market_values.values())
        gross = math.fsum(abs(mv) for mv in market_values.values())
        equity = portfolio.cash + long_short
        fills = self._session_fills
        impact = math.fsum(f.impact_cost for f in fills)
        slippage = math.fsum(f.slippage_cost for f in fills)
        commission = math.fsum(f.commission for f in fills)
        fee = math.fsum(f.fee for f in fills)
        traded_value = math.fsum(abs(f.shares) * f.price for f in fills)
        trading_costs = impact + slippage + commission + fee
        previous = self._equity
        net_pnl = equity - previous
        self._pnl_rows.append(
            (
                session,
                equity,
                net_pnl + trading_costs + financing,
                impact,
                slippage,
                commission,
                fee,
                financing,
                trading_costs + financing,
                net_pnl,
                net_pnl / previous,
                traded_value,
                traded_value / previous,
                gross / equity,
                long_short / equity,
                self.risk.update(equity),
                sum(f.capped for f in fills),
            )
        )
        for ticker in sorted(market_values):
            mv = market_values[ticker]
            self._position_rows.append((session, ticker, portfolio.shares[ticker], mv, mv / equity))
        self._equity = equity
        weights = self._weights.get(session)
        if weights is not None:
            self.queue.append(SignalEvent(session, weights))


def run_backtest(
    bars: pl.DataFrame,
    target_weights: pl.DataFrame,
    costs: CostModel | None = None,
    initial_capital: float = 1_000_000.0,
) -> BacktestResult:
    """Run the event-driven engine. See the module docstring for events, timing and the output tables."""
    return EventDrivenBacktest(bars, target_weights, costs, initial_capital).run()
