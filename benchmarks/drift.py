"""Feature drift for one day: the training side recomputed from the lake (what every daily run did) against the
reference kept with the model (what it does now: ``monitoring.assets._drift_reference``).

A lake with ``features/price_features`` for N names x 253 sessions and F float feature columns (random; PSI's cost
does not depend on the values), a real MLflow registry (SQLite, local artifacts) with one model version trained
through the last session. Timed, each several times, best and median:

- ``recompute``: read the 252-session training window from Delta + ``feature_references`` (quantile bins per
  feature) + the day's PSI;
- ``kept``: ``registry.run_json`` of the kept reference + the day's PSI (one day's rows);
- ``daily run``: what ``feature_drift`` does for one day: the kept reference, a read of the day's last 21
  sessions, ``pooled_drift`` (new observations, 20 sessions binned and added up, PSI);
- peer: pandas ``quantile`` + ``cut`` over the same in-memory window (the textbook PSI, no lake read).

    .venv/bin/python benchmarks/drift.py            # 5,000 names x 253 sessions x 40 features
    .venv/bin/python benchmarks/drift.py --quick    # 100 names (a smoke run: make bench, CI)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from _common import emit, machine, print_table


def timed(fn, reps: int) -> tuple[float, float, object]:
    out, times = None, []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 names (a smoke run)")
    ap.add_argument("--names", type=int)
    ap.add_argument("--features", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    names = args.names or (100 if args.quick else 5000)

    from datetime import date

    import pandas as pd
    import polars as pl

    from alpha_assets.lib.monitoring.drift import feature_psi_against, feature_references
    from alpha_assets.monitoring.assets import (
        DRIFT_REFERENCE,
        DRIFT_SESSIONS,
        _drift_reference,
        _raw_features,
        pooled_drift,
    )
    from partitions.calendar import sessions_from
    from resources.lake import DeltaLake
    from resources.model_registry import ModelRegistry

    days = sessions_from(date(2023, 1, 3), 253)
    feats = [f"f{i:02d}" for i in range(args.features)]
    rng = np.random.default_rng(0)
    n = names * len(days)
    frame = pl.DataFrame(
        {
            "trade_date": np.repeat(np.array(days, dtype="datetime64[D]"), names),
            "ticker": np.tile(np.array([f"T{i:05d}" for i in range(names)]), len(days)),
            **{f: rng.normal(size=n) for f in feats},
        }
    ).with_columns(pl.col("trade_date").cast(pl.Date))
    with tempfile.TemporaryDirectory(prefix="alpha_bench_drift_") as tmp:
        tmp = Path(tmp)
        lake = DeltaLake(tmp / "lake")
        t = time.perf_counter()
        lake.write_window("features", "price_features", frame, days[0], days[-1])
        write_s = time.perf_counter() - t
        registry = ModelRegistry(
            tracking_uri=f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}",
            artifact_root=str(tmp / "mlflow" / "artifacts"),
        )
        (tmp / "model.txt").write_text("weights")
        through = days[-2]  # trained through the day before: the live day is days[-1]
        mv = registry.log_model(
            "lightgbm_base",
            "bench",
            {},
            {"ic": 0.05},
            tmp / "model.txt",
            version_tags={"trained_through": through.isoformat()},
        )
        m = SimpleNamespace(name=mv.name, version=mv.version)
        ctx = SimpleNamespace(log=logging.getLogger("bench"))
        today = frame.filter(pl.col("trade_date") == days[-1])

        def recompute():
            refs = feature_references(_raw_features(lake, days[0], through), feats)
            return feature_psi_against(refs, today, feats)

        def kept():
            refs = registry.run_json(mv.run_id, DRIFT_REFERENCE)["features"]
            return feature_psi_against(refs, today, feats)

        def daily_run():
            refs = registry.run_json(mv.run_id, DRIFT_REFERENCE)["features"]
            current = _raw_features(lake, days[-1 - DRIFT_SESSIONS], days[-1])
            return pooled_drift(current, feats, {days[-1]: "b"}, {"b": refs})[0]

        window_pd = frame.filter(pl.col("trade_date") <= through).to_pandas()
        today_pd = today.to_pandas()

        def pandas_psi():
            out = {}
            for f in feats:
                edges = np.unique(window_pd[f].quantile(np.linspace(0, 1, 11)).to_numpy())
                edges[0], edges[-1] = -np.inf, np.inf
                e = pd.cut(window_pd[f], edges).value_counts(normalize=True, sort=False).clip(lower=1e-4)
                a = pd.cut(today_pd[f], edges).value_counts(normalize=True, sort=False).clip(lower=1e-4)
                out[f] = float(((a - e) * np.log(a / e)).sum())
            return out

        t = time.perf_counter()
        _drift_reference(ctx, lake, registry, m, feats)  # the first day of the model: computed and kept
        first_s = time.perf_counter() - t
        r_best, r_med, r_out = timed(recompute, args.reps)
        k_best, k_med, k_out = timed(kept, args.reps)
        d_best, d_med, d_out = timed(daily_run, args.reps)
        p_best, p_med, _ = timed(pandas_psi, args.reps)
        assert d_out["observations"].min() == names * DRIFT_SESSIONS  # random floats: every value is new
        assert r_out["psi"].to_list() == k_out["psi"].to_list(), "kept reference must give the same PSI"

    rows = [
        ["recompute from the lake (before)", r_best, r_med],
        ["kept with the model, one day's rows", k_best, k_med],
        [f"daily run now: kept + {DRIFT_SESSIONS} sessions pooled", d_best, d_med],
        ["peer: pandas quantile+cut, window in memory", p_best, p_med],
    ]
    print(
        f"feature drift for one day: {names:,} names x 252 training sessions x {len(feats)} features; "
        f"lake written in {write_s:.1f}s; first day of the model (compute + keep) {first_s:.2f}s; "
        f"machine: {machine()}"
    )
    print_table(["path", "best s", "median s"], rows)
    print(f"\nkept / recompute: {r_med / k_med:.0f}x faster per day; identical PSI values")
    emit(
        {
            "benchmark": "drift",
            "names": names,
            "sessions": 252,
            "features": len(feats),
            "recompute_s": round(r_med, 3),
            "kept_s": round(k_med, 4),
            "daily_pooled_s": round(d_med, 3),
            "pooled_sessions": DRIFT_SESSIONS,
            "peer_pandas_s": round(p_med, 3),
            "first_day_s": round(first_s, 2),
            "speedup": round(r_med / k_med, 1),
            "machine": machine(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
