"""The fund's calendar constants and NAV, defined once for every layer (issue 21 item 2): annualisation (Sharpe,
volatility, costs per day), the training year, the quarter a model scores, the trailing IC window of the ensemble
weights and the capital the book trades all count in them. ``lib`` holds them so that the Dagster-free code can use
them; ``partitions`` builds the training window from them."""

from __future__ import annotations

SESSIONS_PER_YEAR = 252  # trading sessions in a year (US equities)
SESSIONS_PER_QUARTER = 63  # a quarter: the walk-forward test block and the CPCV test fold
# Sessions of trailing out-of-sample IC behind the ensemble weights (and the research benchmark's gate).
IC_WINDOW_SESSIONS = SESSIONS_PER_QUARTER
# The fund's NAV at inception, in dollars: the capital the orders size shares on, the risk report charges costs on
# and the backtest starts from.
NAV_USD = 10_000_000.0
