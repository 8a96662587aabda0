"""The backtest asset hands the engine every executed target: a book that goes all-zero goes flat."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from alpha_assets.backtest.assets import executed_targets
from alpha_assets.lib.backtest import CostModel, run_vectorised

DAYS = [date(2024, 1, 2) + timedelta(days=i) for i in range(6)]


def _bars() -> pl.DataFrame:
    rows = [
        {"trade_date": d, "ticker": t, "open": 100.0 + i, "close": 100.5 + i, "volume": 1e9}
        for i, d in enumerate(DAYS)
        for t in ("A", "B")
    ]
    return pl.DataFrame(rows)


def _orders(flat_day: date) -> pl.DataFrame:
    book = {DAYS[0]: (0.5, -0.5), DAYS[1]: (0.5, -0.5), flat_day: (0.0, 0.0)}
    return pl.DataFrame(
        [
            {"trade_date": d, "ticker": t, "exec_weight": w}
            for d, weights in book.items()
            for t, w in zip(("A", "B"), weights, strict=True)
        ]
    )


def test_a_day_whose_book_is_all_zero_goes_flat():
    orders = _orders(flat_day=DAYS[2])  # drawdown control at reduce_factor=0 on day 3

    targets = executed_targets(orders, DAYS[0], DAYS[-1])
    result = run_vectorised(_bars(), targets, CostModel(), 1_000_000.0)

    assert targets.filter(pl.col("trade_date") == DAYS[2])["weight"].to_list() == [0.0, 0.0]
    # Decided at the close of day 3, traded at day 4's open: flat from then on.
    after = result.positions.filter(pl.col("trade_date") >= DAYS[3])
    assert after.filter(pl.col("shares") != 0).height == 0
    assert result.pnl.filter(pl.col("trade_date") >= DAYS[3])["gross_exposure"].max() == 0.0
