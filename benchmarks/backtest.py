"""Benchmark: vectorised backtest fast path at full universe size, and the event-driven engine on a slice.

Seeded synthetic bars (GBM closes, gapped opens, lognormal volumes) and AR(1) (rho 0.97) daily target weights for every
name (dollar-neutral, gross 1.0), all costs on (impact, slippage, participation cap with carry-over,
commission, sell fee, short borrow). The engine and the fast path are also run on the same small slice to
show the speed ratio and that they agree.

    .venv/bin/python benchmarks/backtest.py            # 5,000 names x 2,520 days + engine comparison
    .venv/bin/python benchmarks/backtest.py --quick    # 500 x 252

Prints a table; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpha_assets.lib.backtest import CostModel, prepare_bars, run_backtest, run_vectorised  # noqa: E402

COSTS = CostModel(max_participation=0.05, borrow_rate_annual=0.005)


def make_market(n_names: int, n_days: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Seeded daily bars and target weights for ``n_names`` over ``n_days`` weekday sessions."""
    rng = np.random.default_rng(seed)
    sessions, day = [], date(2015, 1, 5)
    while len(sessions) < n_days:
        if day.weekday() < 5:
            sessions.append(day)
        day += timedelta(days=1)
    tickers = pl.Series("ticker", [f"S{i:05d}" for i in range(n_names)])

    daily_vol = rng.uniform(0.01, 0.035, n_names)
    log_returns = rng.standard_normal((n_days, n_names)) * daily_vol
    close = rng.uniform(10.0, 200.0, n_names) * np.exp(np.cumsum(log_returns, axis=0))
    previous_close = np.vstack([close[:1], close[:-1]])
    opening = previous_close * np.exp(0.3 * daily_vol * rng.standard_normal((n_days, n_names)))
    adv = rng.lognormal(13.0, 1.0, n_names)
    volume = adv * rng.lognormal(0.0, 0.4, (n_days, n_names))

    signal = np.empty((n_days, n_names))
    signal[0] = rng.standard_normal(n_names)
    shocks = rng.standard_normal((n_days, n_names))
    for t in range(1, n_days):
        signal[t] = 0.97 * signal[t - 1] + np.sqrt(1 - 0.97**2) * shocks[t]
    signal -= signal.mean(axis=1, keepdims=True)
    weights = signal / np.abs(signal).sum(axis=1, keepdims=True)

    session_col = pl.Series("trade_date", sessions, dtype=pl.Date).gather(
        np.repeat(np.arange(n_days), n_names)
    )
    ticker_col = tickers.gather(np.tile(np.arange(n_names), n_days))
    bars = pl.DataFrame(
        [session_col, ticker_col]
        + [
            pl.Series(name, m.ravel())
            for name, m in (("open", opening), ("close", close), ("volume", volume))
        ]
    )
    target_weights = pl.DataFrame([session_col, ticker_col, pl.Series("weight", weights.ravel())])
    return bars, target_weights


def bench_backtest(n_names: int, n_days: int, seed: int = 0) -> dict:
    """Time the fast path over the whole universe with all costs; return seconds, rows, days, names."""
    bars, target_weights = make_market(n_names, n_days, seed)
    capital = 2e5 * n_names  # ~$200k gross per name
    started = time.perf_counter()
    prepared = prepare_bars(bars, COSTS)
    prepare_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = run_vectorised(bars, target_weights, COSTS, capital)
    seconds = time.perf_counter() - started
    del prepared
    pnl = result.pnl
    return {
        "names": n_names,
        "days": n_days,
        "rows": bars.height,
        "seconds": round(seconds, 3),
        "prepare_bars_seconds": round(prepare_seconds, 3),
        "fills": result.fills.height,
        "position_rows": result.positions.height,
        "capped_orders": int(pnl["capped_orders"].sum()),
        "final_equity": float(pnl["equity"][-1]),
        "mean_daily_turnover": float(pnl["turnover"].mean()),
        "total_costs": float(pnl["total_cost"].sum()),
    }


def bench_engine_vs_fast(n_names: int, n_days: int, seed: int = 1) -> dict:
    """Run the event-driven engine and the fast path on the same slice; speed ratio and max difference."""
    bars, target_weights = make_market(n_names, n_days, seed)
    capital = 2e7  # small enough for the cap to bind sometimes
    started = time.perf_counter()
    engine = run_backtest(bars, target_weights, COSTS, capital)
    engine_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fast = run_vectorised(bars, target_weights, COSTS, capital)
    fast_seconds = time.perf_counter() - started
    max_rel_equity = float(((engine.pnl["equity"] - fast.pnl["equity"]).abs() / engine.pnl["equity"]).max())
    return {
        "names": n_names,
        "days": n_days,
        "rows": bars.height,
        "engine_seconds": round(engine_seconds, 3),
        "fast_seconds": round(fast_seconds, 4),
        "speedup": round(engine_seconds / fast_seconds, 1),
        "engine_fills": engine.fills.height,
        "fills_equal": engine.fills.height == fast.fills.height,
        "capped_orders": int(engine.pnl["capped_orders"].sum()),
        "max_rel_equity_diff": max_rel_equity,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 names x 252 days")
    args = parser.parse_args()
    n_names, n_days = (500, 252) if args.quick else (5_000, 2_520)
    slice_names, slice_days = (100, 252) if args.quick else (200, 252)

    machine = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "numpy": np.__version__,
    }
    full = bench_backtest(n_names, n_days)
    small = bench_engine_vs_fast(slice_names, slice_days)

    print(f"machine: {machine}")
    print(f"{'case':<34}{'names':>7}{'days':>7}{'rows':>12}{'seconds':>10}  notes")
    print(
        f"{'fast path, all costs':<34}{full['names']:>7}{full['days']:>7}{full['rows']:>12,}{full['seconds']:>10.2f}"
        f"  prepare_bars {full['prepare_bars_seconds']:.2f}s, {full['fills']:,} fills, "
        f"{full['capped_orders']:,} capped orders"
    )
    print(
        f"{'event-driven engine':<34}{small['names']:>7}{small['days']:>7}{small['rows']:>12,}"
        f"{small['engine_seconds']:>10.2f}  {small['engine_fills']:,} fills"
    )
    print(
        f"{'fast path, same slice':<34}{small['names']:>7}{small['days']:>7}{small['rows']:>12,}"
        f"{small['fast_seconds']:>10.3f}  {small['speedup']}x faster, max rel equity diff "
        f"{small['max_rel_equity_diff']:.1e}"
    )
    print(json.dumps({"benchmark": "backtest", "machine": machine, "full": full, "engine_vs_fast": small}))


if __name__ == "__main__":
    main()
