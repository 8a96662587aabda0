"""One new trading day through the whole daily graph vs a full recompute, through a real Dagster instance.

For each size: generate a world of D+1 sessions, hold back the last day's vendor files, materialize all D days in
one single-run backfill (the full recompute), then deliver the last day and materialize just that day (the
incremental day). Both go through the same code path as the demo and the UI (`alpha materialize`, in-process
executor, SQLite instance). Usage: .venv/bin/python benchmarks/incremental_vs_full.py [--quick]

The graph measured: the data layer (job daily_data: ingestion, price features, labels, alt data, feature matrix),
then the book of a price signal (mom_20, as the portfolio tests trade it) with its risk report and orders. The
model layer (predictions, alpha_scores, monitoring) is left out: it scores only with trained blocks, and a block
needs a training year of history (`alpha train --alpha`), which these worlds do not have; without them
models.predictions fails (before fusion became opt-in, features.fused_embeddings failed first, for the same
reason: no trained encoder).
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


# The book from a price signal (no models needed), as alpha_assets_tests/portfolio/test_portfolio_assets.py runs it.
BOOK = ["portfolio/target_weights", "portfolio/weights_audit", "risk/risk_report", "portfolio/orders"]


def run(n_names: int, n_days: int, seed: int = 1, cov_window: int = 60) -> dict:
    from datetime import date

    from dagster import DagsterInstance

    from alpha_assets.app.runs import materialize
    from alpha_assets.home import AlphaHome
    from alpha_world.simulate import WorldConfig, simulate_world
    from alpha_world.vendors import write_world
    from partitions.calendar import sessions_from
    from resources.lake import DeltaLake

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
        book_config = {
            "ops": {"target_weights": {"config": {"alpha_source": "mom_20", "cov_window": cov_window}}}
        }

        def graph(first, last) -> dict:
            data = materialize(home, first, last, quiet=True, instance=inst, job_name="daily_data")
            if not data["success"]:
                return data
            return materialize(
                home, first, last, select=BOOK, quiet=True, instance=inst, run_config=book_config
            )

        with DagsterInstance.ephemeral() as inst:
            t0 = time.perf_counter()
            full = graph(days[0], days[-2])
            t_full = time.perf_counter() - t0
            for p in held.iterdir():
                prefix = {"universe": "reference", "prices_a": "prices_a", "prices_b": "prices_b"}[
                    "universe" if p.name.startswith("universe") else p.name[:8]
                ]
                shutil.move(str(p), home.landing / prefix / p.name)
            t0 = time.perf_counter()
            inc = graph(days[-1], days[-1])
            t_inc = time.perf_counter() - t0
        assert full["success"] and inc["success"], (full["failed_steps"], inc["failed_steps"])
        # The runs did the work: a book for the new day, and one for most days of the full recompute.
        book_days = set(DeltaLake(home.lake).read("portfolio", "target_weights")["trade_date"].to_list())
        assert days[-1] in book_days and len(book_days) > n_days // 2, (days[-1], sorted(book_days))
        return {
            "names": n_names,
            "days": n_days,
            "book_days": len(book_days),
            "world_s": round(t_world, 2),
            "full_s": round(t_full, 2),
            "incremental_day_s": round(t_inc, 2),
            "ratio": round(t_full / t_inc, 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    # --quick: a smoke run (make bench), 60 sessions, so the book's covariance window is 20 sessions.
    results = [run(20, 60, cov_window=20)] if args.quick else [run(50, 252), run(500, 1260)]
    m = machine()
    print(
        f"one new day vs full recompute, whole graph through Dagster — {m['cores']} cores, python {m['python']}"
    )
    print_table(
        ["names", "days", "full recompute s", "one new day s", "ratio"],
        [[r["names"], r["days"], r["full_s"], r["incremental_day_s"], r["ratio"]] for r in results],
    )
    emit({"benchmark": "incremental_vs_full", "machine": m, "results": results})


if __name__ == "__main__":
    main()
