"""One new trading day through the whole graph vs a full recompute, through a real Dagster instance.

For each size: generate a world of D+1 sessions, hold back the last day's vendor files, materialize all D days in
one single-run backfill (the full recompute), then deliver the last day and materialize just that day (the
incremental day). Both go through the same code path as the demo and the UI (`alpha materialize`, in-process
executor, SQLite instance). Usage: .venv/bin/python benchmarks/incremental_vs_full.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from _common import emit, machine, print_table

warnings.filterwarnings("ignore")


def run(n_names: int, n_days: int, seed: int = 1) -> dict:
    from datetime import date

    from dagster import DagsterInstance

    from alpha_assets.cli import materialize
    from alpha_assets.home import AlphaHome
    from alpha_assets.world.simulate import WorldConfig, simulate_world
    from alpha_assets.world.vendors import write_world
    from partitions.calendar import sessions_from

    tmp = Path(tempfile.mkdtemp(prefix="alpha-bench-"))
    try:
        home = AlphaHome(tmp / "home").ensure()
        os.environ["ALPHA_HOME"] = str(home.root)
        start = date(2019, 1, 2)
        days = sessions_from(start, n_days + 1)
        t0 = time.perf_counter()
        world = simulate_world(WorldConfig(tickers=n_names, start=start, days=n_days + 1, seed=seed))
        write_world(world, home.root)
        t_world = time.perf_counter() - t0
        last = days[-1].isoformat()
        held = tmp / "held"
        held.mkdir()
        for p in list(home.landing.rglob(f"*{last}*")):
            shutil.move(str(p), held / p.name)
        (home.dagster).mkdir(exist_ok=True)
        with DagsterInstance.ephemeral() as inst:
            t0 = time.perf_counter()
            full = materialize(home, days[0], days[-2], quiet=True, instance=inst)
            t_full = time.perf_counter() - t0
            for p in held.iterdir():
                prefix = {"universe": "reference", "prices_a": "prices_a", "prices_b": "prices_b"}[
                    "universe" if p.name.startswith("universe") else p.name[:8]
                ]
                shutil.move(str(p), home.landing / prefix / p.name)
            t0 = time.perf_counter()
            inc = materialize(home, days[-1], days[-1], quiet=True, instance=inst)
            t_inc = time.perf_counter() - t0
        assert full["success"] and inc["success"], (full["failed_steps"], inc["failed_steps"])
        return {"names": n_names, "days": n_days, "world_s": round(t_world, 2), "full_s": round(t_full, 2),
                "incremental_day_s": round(t_inc, 2), "ratio": round(t_full / t_inc, 1)}  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [(20, 60)] if args.quick else [(50, 252), (500, 1260)]
    results = [run(n, d) for n, d in sizes]
    m = machine()
    print(
        f"one new day vs full recompute, whole graph through Dagster — {m['cores']} cores, python {m['python']}"
    )
    print_table(["names", "days", "full recompute s", "one new day s", "ratio"],
                [[r["names"], r["days"], r["full_s"], r["incremental_day_s"], r["ratio"]] for r in results])  # fmt: skip
    emit({"benchmark": "incremental_vs_full", "machine": m, "results": results})


if __name__ == "__main__":
    main()
