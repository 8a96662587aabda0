"""The fund's calendar constant, defined once for every layer (issue 21 item 2): annualisation (Sharpe, volatility,
costs per day), the training year and the simulator's default year all count in it. ``lib`` holds it so that the
Dagster-free code can use it; ``partitions`` builds the training window from it."""

from __future__ import annotations

SESSIONS_PER_YEAR = 252  # trading sessions in a year (US equities)
# The fund's NAV at inception, in dollars: the capital the orders size shares on, the risk report charges costs on
# and the backtest starts from.
NAV_USD = 10_000_000.0
