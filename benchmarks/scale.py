"""The US universe on 2 cores: one new trading day through the whole daily graph, at thousands of names.

For each universe size: generate a world (prices over the whole history; alt data for a realistic subset of names
over the sessions the models need), hold back the last session's vendor files, backfill the price layers
(raw.prices, features.price_features, features.labels) over the history as one single run, build the data layer
over the window the models need, train the one quarterly block the last session needs (demo budget) and score the
book up to the day before; then deliver the last session's files and time one ``main`` run for that partition
(vendor files -> raw -> features -> matrix -> embeddings/predictions -> scores -> weights -> risk -> orders ->
monitoring), models scored, not retrained. Every stage runs in its own process (its peak RSS from ``wait4``), on
the same code path as ``alpha materialize``. For the largest size the same day also runs on a copy of the lake
pruned to the models' window (about a year), which gives ``history_ratio``. The code location's load time is
measured in fresh processes.

Usage: .venv/bin/python benchmarks/scale.py [--quick] [--names 1000,3000,5000] [--years 10] [--keep DIR]
       [--resume] [--price-chunk SESSIONS] [--prices-only]
Prints a table and, as the last line, one JSON object.

``--prices-only`` measures the price layer's single-run backfill alone at the largest size (a world of prices and
universe files, no alt data): ``raw.universe`` + ``raw.prices``, then ``features.price_features``, then
``features.labels``, each one single run over the whole history in its own process (wall, peak RSS, rows).

With ``--keep DIR --resume`` a rerun reuses every stage a previous run of the same sizes finished (each stage's
result is saved as ``<home>/.scale_<stage>.json``) and re-times only the day: after a fix to a daily asset,
``--keep DIR --resume`` measures the day again without regenerating the world or retraining. ``--price-chunk``
backfills the price layers in consecutive runs of at most that many sessions: at 5,000 names x 10 years the
single run needs more than the 24 GiB of this machine (``features.price_features`` passed 21 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

from _common import ROOT, emit, load_average, machine, print_table

warnings.filterwarnings("ignore")

PY = sys.executable
# Alt-data coverage of the US universe (the demo's 100 names have far denser coverage): imagery for 1% of names
# (parking lots) and 0.4% (tank farms), the web catalogue for 2%, calls and filings for 5% of names quarterly.
# Generation and the models' training window are what this bounds; the day's cost scales with these shares.
ALT = {"parking_share": 0.01, "tank_share": 0.004, "web_share": 0.02, "text_share": 0.05}
MODEL_WINDOW = 300  # sessions of data layer before the day: a training year + purge + the quarter so far
# --quick (a smoke run: make bench, CI): 20 names (the fewest a long/short book takes) over 254 sessions, from
# 2015-01-02 to the second session of 2016: the block of 2016-Q1 has 98% of its training year (a block trains
# from 90%), the book runs for the quarter's first session and the day is its second.
QUICK_NAMES, QUICK_SESSIONS = 20, 254
PRICE_LAYERS = ["raw/universe", "raw/prices", "features/price_features", "features/labels"]


# ------------------------------------------------------------------------------------------------ children
def _env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(
        ALPHA_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        ALPHA_MODEL_BUDGET="demo",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        YOLO_OFFLINE="True",
        YOLO_AUTOINSTALL="False",
        MLFLOW_ALLOW_FILE_STORE="true",
        DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS="true",
        PYTHONWARNINGS="ignore",
    )
    return env


def stage(home: Path, name: str, *args: str, resume: bool = False, saved_as: str | None = None) -> dict:
    """Run one stage in a child process; its wall seconds, peak RSS (GB) and the JSON it printed last.

    The result is saved in the home; with ``resume`` a saved result is returned instead of running again."""
    saved = home / f".scale_{saved_as or name}.json"
    if resume and saved.exists():
        return {**json.loads(saved.read_text()), "resumed": True}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [PY, __file__, "--child", name, str(home), *args],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"stage {name} failed ({proc.returncode}):\n{err[-3000:]}")
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1]) if lines else {}
    res["wall_s"] = round(wall, 2)
    saved.write_text(json.dumps(res))
    return res


def _child(name: str, home_dir: str, args: list[str]) -> None:
    from alpha_assets.app.demo import serve_vendor_site
    from alpha_assets.app.runs import materialize, train_alpha, train_models
    from alpha_assets.cli import _home

    ns = argparse.Namespace(home=home_dir)
    home = _home(ns, create=name == "world")
    out: dict = {}
    if name == "world":
        out = _make_world(
            home, int(args[0]), int(args[1]), args[2] == "quick", prices_only=args[2] == "prices"
        )
    elif name == "prices":
        lo, hi = date.fromisoformat(args[0]), date.fromisoformat(args[1])
        select = args[2].split(",") if len(args) > 2 else PRICE_LAYERS
        res = materialize(
            home, lo, hi, select=select, job_name="daily_data", quiet=True, refresh_dependents=False
        )
        assert res["success"], res["failed_steps"]
        out = {
            "run_s": round(res["seconds"], 2),
            "steps": _step_seconds(res["run_id"]),
            "rows": _rows_written(res["run_id"]),
        }
    elif name == "models":
        from partitions import block_key

        lo, q, hi = (date.fromisoformat(a) for a in args[:3])
        # --quick: the detector trains one epoch (the same training asset; its quality is not what is measured)
        det_config = (
            {"ops": {"models__car_detector": {"config": {"epochs": 1}}}} if "quick" in args[3:] else None
        )
        server = serve_vendor_site(home)
        try:
            det = train_models(home, quiet=True, run_config=det_config)
            assert det["success"], "car detector"
            res = materialize(home, lo, hi, job_name="daily_data", quiet=True, refresh_dependents=False)
            assert res["success"], res["failed_steps"]
            tr = train_alpha(home, [block_key(q)], quiet=True)
            assert tr["success"], "train_alpha"
            book = {"seconds": 0.0}
            if q <= hi:
                book = materialize(home, q, hi, job_name="daily_book", quiet=True, refresh_dependents=False)
                assert book["success"], book["failed_steps"]
        finally:
            if server is not None:
                server.stop()
        out = {
            "detector_s": round(det["seconds"], 1),
            "data_layer_s": round(res["seconds"], 1),
            "train_block_s": round(tr["seconds"], 1),
            "book_s": round(book["seconds"], 1),
        }
    elif name == "day":
        day = date.fromisoformat(args[0])
        _deliver(home)
        server = serve_vendor_site(home)
        try:
            res = materialize(home, day, day, job_name="main", quiet=True)
        finally:
            if server is not None:
                server.stop()
        assert res["success"], (res["failed_steps"], res["failed_checks"])
        out = {
            "run_s": round(res["seconds"], 2),
            "steps": _step_seconds(res["run_id"]),
            "refresh_runs": len(res["refreshed"]),
        }
    elif name == "load":
        t0 = time.perf_counter()
        import alpha_assets.definitions as d

        t_import = time.perf_counter() - t0
        d.defs()
        out = {"import_s": round(t_import, 2), "build_s": round(time.perf_counter() - t0, 2)}
    # The stage's own peak RSS (the in-process executor runs every step in this process; threads included).
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    print(json.dumps(out, default=str))


def _rows_written(run_id: str) -> dict:
    """Rows each asset's materialization wrote in a run (the IO manager's ``rows`` metadata)."""
    from dagster import DagsterInstance

    rows = {}
    for rec in DagsterInstance.get().all_logs(run_id):
        ev = rec.dagster_event
        if ev is not None and ev.event_type_value == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            if "rows" in mat.metadata:
                rows[mat.asset_key.to_user_string()] = mat.metadata["rows"].value
    return rows


def _make_world(home, n_names: int, n_sessions: int, quick: bool, prices_only: bool = False) -> dict:
    from alpha_world.altdata import AltDataConfig, write_alt_data
    from alpha_world.simulate import WorldConfig, simulate_world
    from alpha_world.vendors import write_world
    from partitions import configure_partitions_start
    from partitions.calendar import sessions_from

    start = date(2015, 1, 2)
    t0 = time.perf_counter()
    world = simulate_world(WorldConfig(tickers=n_names, start=start, days=n_sessions, seed=5))
    meta = write_world(world, home.root)
    configure_partitions_start(home.root, date.fromisoformat(meta["start"]))
    if prices_only:
        return {"world_s": round(time.perf_counter() - t0, 1)}
    window = min(MODEL_WINDOW, n_sessions)
    alt_cfg = AltDataConfig(
        **ALT,
        image_sessions=5 if quick else 30,
        web_sessions=10 if quick else 20,
        text_sessions=window,
        detector_images=16 if quick else 96,
        retail_tickers=2 if quick else None,
        tank_tickers=1 if quick else None,
    )
    alt = write_alt_data(world, home.root, alt_cfg)
    last = sessions_from(start, n_sessions)[-1]
    _hold_back(home, last)
    return {
        "world_s": round(time.perf_counter() - t0, 1),
        "last": last.isoformat(),
        "covered": alt["covered_names"],
        "transcripts": alt["transcripts"],
        "filings": alt["filings"],
        "parking_images": alt["parking_images"],
        "tank_images": alt["tank_images"],
    }


def _hold_back(home, day: date) -> None:
    """Move the day's vendor files (and dated image folders) out of the landing zone: they land when the day is
    measured."""
    held = home.root / "held"
    for p in sorted(home.landing.rglob(f"*{day.isoformat()}*"), key=lambda p: len(p.parts)):
        if p.exists():  # not inside a folder already moved
            dest = held / p.relative_to(home.landing)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(p), dest)


def _deliver(home) -> None:
    held = home.root / "held"
    for p in sorted(held.rglob("*"), key=lambda p: len(p.parts)) if held.exists() else []:
        dest = home.landing / p.relative_to(held)
        if p.exists() and not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(p), dest)
    shutil.rmtree(held, ignore_errors=True)


def _step_seconds(run_id: str) -> dict:
    """Seconds per step of a run, from its STEP_START / STEP_SUCCESS events."""
    from dagster import DagsterInstance

    starts, secs = {}, {}
    for rec in DagsterInstance.get().all_logs(run_id):
        ev = rec.dagster_event
        if ev is None or not ev.step_key:
            continue
        if ev.event_type_value == "STEP_START":
            starts[ev.step_key] = rec.timestamp
        elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and ev.step_key in starts:
            secs[ev.step_key] = round(rec.timestamp - starts[ev.step_key], 2)
    return dict(sorted(secs.items(), key=lambda kv: -kv[1]))


# ------------------------------------------------------------------------------------------------ driver
def prune_history(src: Path, dst: Path, keep_from: date) -> None:
    """A copy of a home whose lake holds only sessions from ``keep_from`` on (Delta files are immutable, so the
    lake and the landing zone are hard-linked; a Delta delete writes new files)."""
    from deltalake import DeltaTable

    for sub in src.iterdir():
        if sub.name in ("lake", "landing"):
            subprocess.run(["cp", "-al", str(sub), str(dst / sub.name)], check=True)
        elif sub.is_dir():
            shutil.copytree(sub, dst / sub.name, symlinks=True)
        else:
            shutil.copy2(sub, dst / sub.name)
    for log in (dst / "lake").rglob("_delta_log"):
        dt = DeltaTable(str(log.parent))
        if "trade_date" in dt.schema().to_arrow().names:
            dt.delete(f"trade_date < '{keep_from.isoformat()}'")


def price_backfill(home: Path, sessions: list[date], chunk: int, resume: bool) -> dict:
    """The price layers over ``sessions``: one single run, or consecutive runs of ``chunk`` sessions (the peak
    is the largest run's, the time the sum)."""
    if not chunk or chunk >= len(sessions):
        return stage(home, "prices", sessions[0].isoformat(), sessions[-1].isoformat(), resume=resume)
    parts = [sessions[i : i + chunk] for i in range(0, len(sessions), chunk)]
    runs = [
        stage(home, "prices", p[0].isoformat(), p[-1].isoformat(), resume=resume, saved_as=f"prices_{i}")
        for i, p in enumerate(parts)
    ]
    return {
        "runs": len(runs),
        "chunk_sessions": chunk,
        "wall_s": round(sum(r["wall_s"] for r in runs), 2),
        "peak_rss_gb": max(r["peak_rss_gb"] for r in runs),
    }


def run_size(
    root: Path,
    n_names: int,
    n_sessions: int,
    quick: bool,
    with_history: bool,
    resume: bool = False,
    price_chunk: int = 0,
) -> dict:
    from partitions.calendar import sessions_from, shift_sessions

    home = root / f"n{n_names}"
    res: dict = {"names": n_names, "sessions": n_sessions}
    w = stage(home, "world", str(n_names), str(n_sessions), "quick" if quick else "full", resume=resume)
    res["world"] = w
    day = date.fromisoformat(w["last"])
    prev = shift_sessions(day, -1)
    res["price_backfill"] = price_backfill(
        home, sessions_from(date(2015, 1, 2), n_sessions - 1), price_chunk, resume
    )
    from partitions import block_key

    q = date.fromisoformat(block_key(day))
    q = q if q.weekday() < 5 else shift_sessions(q, 1)
    lo = shift_sessions(day, -min(MODEL_WINDOW, n_sessions - 1))
    res["prepare_models"] = stage(
        home,
        "models",
        lo.isoformat(),
        q.isoformat(),
        prev.isoformat(),
        *(["quick"] if quick else []),
        resume=resume,
    )
    short = root / f"n{n_names}_1y"
    if with_history and not (resume and short.exists()):
        shutil.rmtree(short, ignore_errors=True)
        short.mkdir()
        prune_history(home, short, lo)
    res["day"] = stage(home, "day", day.isoformat())
    if with_history:
        res["day_short_history"] = stage(short, "day", day.isoformat())
        res["history_ratio"] = round(res["day"]["run_s"] / res["day_short_history"]["run_s"], 2)
    res["day_s"] = res["day"]["run_s"]
    return res


PRICE_STAGES = {
    "raw": "raw/universe,raw/prices",
    "price_features": "features/price_features",
    "labels": "features/labels",
}


def prices_only(root: Path, n_names: int, n_sessions: int, resume: bool = False) -> dict:
    """The price layer's single-run backfill over the whole history, one stage (process) per layer."""
    from partitions.calendar import sessions_from

    home = root / f"n{n_names}_prices"
    res: dict = {"names": n_names, "sessions": n_sessions}
    res["world"] = stage(home, "world", str(n_names), str(n_sessions), "prices", resume=resume)
    days = sessions_from(date(2015, 1, 2), n_sessions)
    for name, select in PRICE_STAGES.items():
        res[name] = stage(
            home,
            "prices",
            days[0].isoformat(),
            days[-1].isoformat(),
            select,
            resume=resume,
            saved_as=f"prices_{name}",
        )
    return res


def main_prices_only(args) -> None:
    n = max(int(x) for x in (args.names or "5000").split(","))
    n_sessions = int(round((1.5 if args.quick else args.years) * 252))
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="alpha-scale-prices-"))
    root.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    try:
        r = prices_only(root, 40 if args.quick else n, n_sessions, resume=args.resume and bool(args.keep))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    m = machine()
    m["load_before"], m["load_after"] = load_before, load_average()
    print(
        f"price layer, single-run backfill over the whole history — {m['cores']} cores, {m['memory_gib']} GiB; "
        f"load average {m['load_before']} before, {m['load_after']} after"
    )
    print(f"{r['names']} names x {r['sessions']} sessions; each layer one Dagster run in its own process")
    print_table(
        ["layer", "assets", "process s", "run s", "peak GB", "rows"],
        [
            [
                name,
                PRICE_STAGES[name],
                r[name]["wall_s"],
                r[name]["run_s"],
                r[name]["peak_rss_gb"],
                sum(r[name]["rows"].values()),
            ]
            for name in PRICE_STAGES
        ],
    )
    emit(
        {
            "benchmark": "scale_prices",
            "machine": m,
            "world_s": r["world"]["world_s"],
            "backfill_s": round(sum(r[k]["wall_s"] for k in PRICE_STAGES), 2),
            "peak_rss_gb": max(r[k]["peak_rss_gb"] for k in PRICE_STAGES),
            "results": r,
        }
    )


def code_location_load(root: Path) -> dict:
    home = root / "load_home"
    home.mkdir(exist_ok=True)
    (home / "landing").mkdir(exist_ok=True)
    imp = stage(home, "load")
    t0 = time.perf_counter()
    subprocess.run(
        [str(Path(PY).parent / "dagster"), "definitions", "validate", "-m", "alpha_assets.definitions"],
        env=_env(home),
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return {
        "import_s": imp["import_s"],
        "definitions_s": imp["build_s"],
        "process_s": imp["wall_s"],
        "dagster_validate_s": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_NAMES} names, {QUICK_SESSIONS} sessions, the detector trained one epoch: a smoke run for "
        "make bench and CI (no fit per 1,000 names)",
    )
    ap.add_argument("--names", help="comma-separated universe sizes (default 1000,3000,5000)")
    ap.add_argument("--years", type=float, default=10, help="history of the largest size")
    ap.add_argument("--short-years", type=float, default=1.5, help="history of the smaller sizes")
    ap.add_argument("--keep", help="build the homes under this folder and keep them")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="with --keep: reuse the stages a previous run finished; only the day runs again",
    )
    ap.add_argument(
        "--price-chunk",
        type=int,
        default=0,
        help="backfill the price layers in runs of at most this many sessions (0: one single run)",
    )
    ap.add_argument(
        "--prices-only",
        action="store_true",
        help="only the price layer's single-run backfill at the largest size, one process per layer",
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2:])
        return
    if args.prices_only:
        main_prices_only(args)
        return
    sizes = [
        int(x) for x in (args.names or (str(QUICK_NAMES) if args.quick else "1000,3000,5000")).split(",")
    ]
    years, short_years = (1.5, 1.5) if args.quick else (args.years, args.short_years)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="alpha-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    t_all = time.perf_counter()
    try:
        load = code_location_load(root)
        results = []
        for n in sizes:
            largest = n == max(sizes)
            n_sessions = (
                QUICK_SESSIONS if args.quick else int(round((years if largest else short_years) * 252))
            )
            results.append(
                run_size(
                    root,
                    n,
                    n_sessions,
                    args.quick,
                    with_history=largest,
                    resume=args.resume and bool(args.keep),
                    price_chunk=args.price_chunk,
                )
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    m = machine()
    m["load_before"], m["load_after"] = load_before, load_average()
    big = results[-1]
    fit = _linear_fit([(r["names"], r["day_s"]) for r in results])
    figures = {
        "benchmark": "scale",
        "machine": m,
        "alt_coverage": ALT,
        "model_window_sessions": MODEL_WINDOW,
        "day_seconds_largest": big["day_s"],
        "names_largest": big["names"],
        f"day_seconds_{big['names']}": big["day_s"],
        "history_ratio": big.get("history_ratio"),
        "code_location": load,
        "seconds_per_1000_names": fit,
        "total_s": round(time.perf_counter() - t_all),
        "results": results,
    }
    print(
        f"US scale, whole daily graph — {m['cores']} cores, {m['memory_gib']} GiB; load average "
        f"{m['load_before']} before, {m['load_after']} after; alt coverage {ALT}"
    )
    print_table(
        [
            "names",
            "sessions",
            "world s",
            "price backfill s",
            "backfill peak GB",
            "models prep s",
            "day s",
            "day peak GB",
            "day (1y lake) s",
            "history ratio",
        ],
        [
            [
                r["names"],
                r["sessions"],
                r["world"]["world_s"],
                r["price_backfill"]["wall_s"],
                r["price_backfill"]["peak_rss_gb"],
                r["prepare_models"]["wall_s"],
                r["day_s"],
                r["day"]["peak_rss_gb"],
                r.get("day_short_history", {}).get("run_s", "-"),
                r.get("history_ratio", "-"),
            ]
            for r in results
        ],
    )
    print(f"\nslowest steps of the {big['names']}-name day (seconds):")
    print_table(["step", "s"], [[k, v] for k, v in list(big["day"]["steps"].items())[:15]])
    print(
        f"\ncode location: import {load['import_s']} s, Definitions built {load['definitions_s']} s, "
        f"fresh process {load['process_s']} s, `dagster definitions validate` {load['dagster_validate_s']} s"
    )
    print(f"marginal cost of a day: {fit} s per extra 1,000 names (linear fit over {sizes})")
    emit(figures)


def _linear_fit(points: list[tuple[int, float]]) -> float | None:
    if len(points) < 2:
        return None
    import numpy as np

    x, y = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    return round(float(np.polyfit(x, y, 1)[0]) * 1000, 2)


if __name__ == "__main__":
    main()
