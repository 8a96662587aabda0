"""Our IC matches alphalens-reloaded's on the same scores and prices (the model report quotes both)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.models.metrics import daily_ic
from alpha_assets.lib.models.tearsheet import alphalens_summary
from partitions.calendar import sessions_from


def _world(n: int = 30, days: int = 80, seed: int = 4):
    rng = np.random.default_rng(seed)
    sessions = sessions_from(date(2024, 1, 2), days)
    tick = [f"T{i:02d}" for i in range(n)]
    signal = rng.normal(size=(days, n))
    rets = 0.01 * rng.normal(size=(days, n))
    rets[1:] += 0.004 * signal[:-1]  # today's score predicts tomorrow's return
    close = 50 * np.exp(np.cumsum(rets, axis=0))
    frame = pl.DataFrame(
        {
            "trade_date": np.repeat(np.array(sessions, dtype="datetime64[D]"), n),
            "ticker": np.tile(tick, days),
            "close": close.ravel(),
            "alpha_score": signal.ravel(),
        }
    ).with_columns(pl.col("trade_date").cast(pl.Date))
    return frame


def test_daily_ic_equals_alphalens_information_coefficient() -> None:
    frame = _world()
    summary = alphalens_summary(
        frame.select("trade_date", "ticker", "alpha_score"),
        frame.select("trade_date", "ticker", "close"),
        periods=(1,),
    )
    labelled = (
        frame.sort("ticker", "trade_date")
        .with_columns((pl.col("close").shift(-1).over("ticker") / pl.col("close") - 1).alias("fwd_ret_1"))
        .drop_nulls("fwd_ret_1")
    )
    ours = daily_ic(labelled, "alpha_score", "fwd_ret_1")
    theirs = summary["daily_ic_1d"]
    joined = ours.join(theirs, on="trade_date", suffix="_al")
    assert joined.height == theirs.height >= 70
    assert np.allclose(joined["ic"].to_numpy(), joined["ic_al"].to_numpy(), atol=1e-9)
    assert summary["ic_mean"]["1D"] > 0.2  # the planted signal
    q = summary["mean_return_by_quantile_1d"]
    assert q[5] > q[1]
