"""Shared benchmark helpers: machine description, table printing, synthetic prices."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict:
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [
        [f"{c:,.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def synthetic_prices(n_names: int, n_days: int, seed: int = 0):
    """Random-walk OHLCV on the XNYS calendar, every name every day (polars)."""
    from datetime import date

    import numpy as np
    import polars as pl

    from partitions.calendar import sessions_from

    rng = np.random.default_rng(seed)
    days = sessions_from(date(2010, 1, 4), n_days)
    r = rng.normal(0.0003, 0.02, (n_days, n_names))
    close = 50 * np.exp(np.cumsum(r, axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, close.shape))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    vol = rng.integers(10_000, 1_000_000, close.shape)
    tickers = [f"T{i:05d}" for i in range(n_names)]
    return pl.DataFrame(
        {
            "trade_date": np.repeat(np.array(days, dtype="datetime64[D]"), n_names),
            "ticker": np.tile(np.array(tickers), n_days),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": vol.ravel().astype(np.int64),
        }
    ).with_columns(pl.col("trade_date").cast(pl.Date))


def emit(figures: dict) -> None:
    print(json.dumps(figures, default=str))


def load_average() -> str:
    """The machine's 1/5/15-minute load average: the machine is shared, so every benchmark records it."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
