"""The fund's calendar constants and NAV, defined once for every layer (issue 21 item 2): annualisation (Sharpe,
volatility, costs per day), the training year, the quarter a model scores, the trailing IC window of the ensemble
weights and the capital the book trades all count in them. ``lib`` holds them so that the Dagster-free code can use
them; ``partitions`` builds the training window from them."""

from __future__ import annotations

SESSIONS_PER_YEAR = 252  # trading sessions in a year (US equities)
# Sessions between a training window's last label and the first session it scores (no overlapping labels).
PURGE_SESSIONS = 5
SESSIONS_PER_QUARTER = 63  # a quarter: the walk-forward test block and the CPCV test fold
# Sessions of trailing out-of-sample IC behind the ensemble weights (and the research benchmark's gate).
IC_WINDOW_SESSIONS = SESSIONS_PER_QUARTER
# Sessions the price features look back: momentum 120 skipping 5, the lag 60 of a 20-day return, rolling 60.
FEATURE_LOOKBACK_SESSIONS = 125
# The forward-return horizons of features.labels (fwd_ret_1, fwd_ret_5, fwd_ret_20), in sessions.
LABEL_HORIZONS = (1, 5, 20)


def label_horizon_of(label: str) -> int:
    """The horizon in sessions of a label column ``fwd_ret_<h>`` (one of ``LABEL_HORIZONS``)."""
    horizon = label.removeprefix("fwd_ret_")
    if not horizon.isdigit() or int(horizon) not in LABEL_HORIZONS:
        raise ValueError(
            f"{label!r} is not a label: one of {', '.join(f'fwd_ret_{h}' for h in LABEL_HORIZONS)}"
        )
    return int(horizon)


# The fund's NAV at inception, in dollars: the capital the orders size shares on, the risk report charges costs on
# and the backtest starts from.
NAV_USD = 10_000_000.0
