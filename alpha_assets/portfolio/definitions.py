"""Portfolio, risk and backtest's part of the code location: the books, their risk report, the orders and the
cost-aware backtest."""

from __future__ import annotations

from dagster import Definitions

from alpha_assets.backtest.assets import backtest
from alpha_assets.portfolio.assets import orders, target_weights
from alpha_assets.risk.assets import risk_report

BOOK_ASSETS = [target_weights, risk_report, orders]
defs = Definitions(assets=[*BOOK_ASSETS, backtest])
