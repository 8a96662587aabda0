"""Small synthetic panels for the model-layer tests: names x sessions with a planted linear signal, or none."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl


def business_days(n: int, start: date = date(2024, 1, 2)) -> list[date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def make_panel(tickers: int = 60, days: int = 300, features: int = 8, signal: float = 0.1, seed: int = 0):
    """trade_date, ticker, f000..f00k, label: label = signal * (f000 - f001) + noise (unit variance)."""
    rng = np.random.default_rng(seed)
    sessions = business_days(days)
    n = tickers * days
    x = rng.normal(size=(n, features))
    label = signal * (x[:, 0] - x[:, 1]) + rng.normal(size=n)
    cols = {f"f{i:03d}": x[:, i] for i in range(features)}
    return pl.DataFrame(
        {
            "trade_date": pl.Series([d for d in sessions for _ in range(tickers)], dtype=pl.Date),
            "ticker": np.tile([f"T{i:03d}" for i in range(tickers)], days),
            **cols,
            "label": label,
        }
    )
