"""A small price panel with the cases the price layer must handle: late listings, delistings, missed prints."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from partitions.calendar import sessions_from


def make_panel() -> pl.DataFrame:
    """40 names x 330 sessions: late listings, delistings, missed prints (gaps) and one name with a single print."""
    rng = np.random.default_rng(5)
    days = sessions_from(date(2020, 1, 2), 330)
    n = 40
    close = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(days), n)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, close.shape))
    keep = rng.random(close.shape) > 0.04  # about 4% of prints missed
    first = np.zeros(n, dtype=int)
    last = np.full(n, len(days) - 1)
    first[:8] = rng.integers(1, 250, 8)  # late listings, some inside the window's lookback
    last[8:14] = rng.integers(60, 320, 6)  # delistings
    first[14], last[14] = 200, 200  # one print only
    rows = np.arange(len(days))[:, None]
    keep &= (rows >= first) & (rows <= last)
    keep[first, np.arange(n)] = keep[last, np.arange(n)] = True
    ti, ni = np.nonzero(keep)
    return (
        pl.DataFrame(
            {
                "trade_date": np.array(days, dtype="datetime64[D]")[ti],
                "ticker": np.array([f"N{i:03d}" for i in range(n)])[ni],
                "open": open_[ti, ni],
                "high": np.maximum(open_, close)[ti, ni] * 1.01,
                "low": np.minimum(open_, close)[ti, ni] * 0.99,
                "close": close[ti, ni],
                "volume": rng.integers(0, 100_000, ti.size),
            }
        )
        .with_columns(pl.col("trade_date").cast(pl.Date))
        .sample(fraction=1.0, seed=3)
    )
