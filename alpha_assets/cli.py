"""The ``alpha`` command: demo, world (generate, serve-site), train, materialize, backtest, sql, tables.

Only the CLI (and the tests) may import both the pipeline and the demo world.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from alpha_assets.home import AlphaHome

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run_config(run_config: dict | None) -> dict:
    """The caller's run config, with the console log at ALPHA_LOG_LEVEL (default WARNING: the CLI prints its own
    summary; every event is still in the instance's event log and the UI)."""
    level = os.environ.get("ALPHA_LOG_LEVEL", "WARNING").upper()
    return {"loggers": {"console": {"config": {"log_level": level}}}, **(run_config or {})}


def _home(args) -> AlphaHome:
    if getattr(args, "home", None):
        os.environ["ALPHA_HOME"] = str(Path(args.home).resolve())
    home = AlphaHome.from_env().ensure()
    os.environ["ALPHA_HOME"] = str(home.root)
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    cfg = home.dagster / "dagster.yaml"
    if not cfg.exists():
        shutil.copy(REPO_ROOT / "deploy" / "local" / "dagster.yaml", cfg)
    return home


def _default_world_start(days: int) -> date:
    """A world that ends on the last completed session, like a live feed."""
    from partitions.calendar import sessions_between

    today = datetime.now(timezone.utc).date()
    sess = sessions_between(today - timedelta(days=int(days * 1.6) + 30), today - timedelta(days=1))
    return sess[-days]


# --------------------------------------------------------------------------------------------- world
def cmd_world_generate(args) -> int:
    from alpha_assets.world.altdata import write_alt_data
    from alpha_assets.world.simulate import WorldConfig, simulate_world
    from alpha_assets.world.vendors import write_world

    out = Path(args.out).resolve()
    start = date.fromisoformat(args.start) if args.start else _default_world_start(args.days)
    cfg = WorldConfig(tickers=args.tickers, start=start, days=args.days, seed=args.seed,
                      signal_strength=args.signal_strength)  # fmt: skip
    t0 = time.perf_counter()
    world = simulate_world(cfg)
    meta = write_world(world, out)
    alt = write_alt_data(world, out) if getattr(args, "alt_data", True) else None
    print(f"world: {cfg.tickers} names x {cfg.days} sessions ({meta['start']}..{meta['end']}), seed {cfg.seed}, "
          f"signal strength {cfg.signal_strength} -> {out}/landing  ({time.perf_counter() - t0:.1f}s)")  # fmt: skip
    f = meta["faults"]
    print(f"faults planted: A missing {len(f['provider_a_missing'])}, A late {len(f['provider_a_late'])}, "
          f"A corrupt {len(f['provider_a_corrupt'])}, B missing {len(f['provider_b_missing'])}, "
          f"B bad rows {f['provider_b_bad_rows']}")  # fmt: skip
    if alt:
        print(f"alt data: {alt['stores']} stores and {alt['farms']} tank farms imaged on the last "
              f"{alt['image_days']} sessions, {alt['transcripts']} call transcripts, {alt['filings']} filings, "
              f"{alt['web_pages']} web catalogue pages ({out / 'vendor_site'})")  # fmt: skip
    return 0


def serve_vendor_site(home: AlphaHome, port: int = 0):
    """Serve the demo world's vendor web site on 127.0.0.1 and point the platform at it (ALPHA_WEB_VENDOR_URL);
    returns the running server, or None when the world has no site."""
    from alpha_assets.world.vendor_site import serve_site

    if not (home.vendor_site / "index.html").exists():
        return None
    server = serve_site(home.vendor_site, port=port)
    os.environ["ALPHA_WEB_VENDOR_URL"] = server.url
    return server


def cmd_serve_site(args) -> int:
    home = _home(args)
    server = serve_vendor_site(home, args.port)
    if server is None:
        print(f"no vendor site under {home.vendor_site}: run `alpha world generate` first", file=sys.stderr)
        return 1
    print(f"serving {home.vendor_site} at {server.url} (Ctrl-C stops)\n"
          f"for `make ui` in another shell:  export ALPHA_WEB_VENDOR_URL={server.url}")  # fmt: skip
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


# ------------------------------------------------------------------------------------------- models
def train_models(home: AlphaHome, instance=None, quiet: bool = False, run_config: dict | None = None) -> dict:
    """Materialize models/car_detector: trains on the labelled sample, or reuses the weights when the sample and
    the recipe are unchanged."""
    from dagster import DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources

    job = build_definitions(local_resources(home)).resolve_job_def("train_models")
    t0 = time.perf_counter()
    result = job.execute_in_process(instance=instance or DagsterInstance.get(), raise_on_error=False,
                                    run_config=_run_config(run_config))  # fmt: skip
    meta: dict = {}
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            meta = {k: getattr(v, "value", getattr(v, "text", None))
                    for k, v in e.event_specific_data.materialization.metadata.items()}  # fmt: skip
    out = {"success": result.success, "seconds": time.perf_counter() - t0, **meta}
    if not quiet:
        if not result.success:
            print(f"car detector FAILED after {out['seconds']:.0f}s (see the run's logs in the UI)")
        elif meta.get("reused"):
            print(f"car detector v{meta['version']} reused (inputs unchanged) in {out['seconds']:.1f}s")
        else:
            err = meta.get("val_count_mae_pct")
            err_s = f", validation count error {err:.1f}% of the mean" if isinstance(err, float) else ""
            print(f"car detector v{meta['version']} {meta.get('source')} in {out['seconds']:.0f}s{err_s}; "
                  f"MLflow run {str(meta.get('mlflow_run_id'))[:8]}")  # fmt: skip
    return out


def cmd_train(args) -> int:
    home = _home(args)
    cfg = (
        {"ops": {"models__car_detector": {"config": {"weights_path": args.weights}}}}
        if args.weights
        else None
    )
    return 0 if train_models(home, run_config=cfg)["success"] else 1


# ----------------------------------------------------------------------------------------- materialize
def materialize(home: AlphaHome, start: date | None = None, end: date | None = None,
                select: list[str] | None = None, quiet: bool = False, instance=None,
                run_config: dict | None = None) -> dict:  # fmt: skip
    """Materialize every selected asset over [start, end] as one single-run backfill on the local instance."""
    from dagster import AssetKey, DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources
    from partitions.calendar import sessions_between

    if start is None or end is None:
        lo, hi = landing_date_range(home)
        start, end = start or lo, end or hi
    if start is None or end is None:
        raise SystemExit(f"nothing to materialize: no dated vendor files under {home.landing}")
    sessions = sessions_between(start, end)
    if not sessions:
        raise SystemExit(f"no trading sessions between {start} and {end}")
    defs = build_definitions(local_resources(home))
    job = defs.resolve_job_def("main")
    keys = [AssetKey(k.split("/")) for k in select] if select else None
    if keys:
        # A subset keeps the selected assets' own checks but not the freshness checks (their sensor runs those).
        checks = {c for c in job.asset_layer.asset_graph.asset_check_keys
                  if c.asset_key in keys and c.name != "freshness_check"}  # fmt: skip
        job, keys = job.get_subset(asset_selection=set(keys), asset_check_selection=checks), None
    instance = instance or DagsterInstance.get()
    tags = {"dagster/asset_partition_range_start": sessions[0].isoformat(),
            "dagster/asset_partition_range_end": sessions[-1].isoformat(), "alpha/launched_by": "alpha-cli"}  # fmt: skip
    if not quiet:
        print(f"materializing {sessions[0]}..{sessions[-1]} ({len(sessions)} sessions) in one run "
              f"on the instance at {instance.root_directory}")  # fmt: skip
    t0 = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        tags=tags,
        asset_selection=keys,
        raise_on_error=False,
        run_config=_run_config(run_config),
    )
    secs = time.perf_counter() - t0
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    checks = [(e.event_specific_data.check_name, e.event_specific_data.passed) for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]  # fmt: skip
    if not quiet:
        per_asset: dict[str, int] = {}
        for e in mats:
            per_asset[e.asset_key.to_user_string()] = per_asset.get(e.asset_key.to_user_string(), 0) + 1
        for k, n in per_asset.items():
            print(f"  {k:32s} {n} partitions materialized")
        print(f"run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} in {secs:.1f}s")
        for s in failed:
            print(f"  failed step: {s}")
        for c in sorted({name for name, ok in checks if not ok}):
            print(f"  check not passed: {c}")
    return {"run_id": result.run_id, "success": result.success, "seconds": secs, "failed_steps": failed,
            "failed_checks": sorted({name for name, ok in checks if not ok}),
            "start": sessions[0], "end": sessions[-1]}  # fmt: skip


def landing_date_range(home: AlphaHome) -> tuple[date | None, date | None]:
    from alpha_assets.lib.ingestion.vendor_files import date_from_name

    dates = [d for p in home.landing.rglob("*") if p.is_file() and (d := date_from_name(p.name))]
    return (min(dates), max(dates)) if dates else (None, None)


def run_backtest(home: AlphaHome, start: str | None = None, end: str | None = None, instance=None,
                 quiet: bool = False) -> dict:  # fmt: skip
    """Run the backtest job (reports.backtest_*) over the executed books on the local instance."""
    from dagster import DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources

    defs = build_definitions(local_resources(home))
    job = defs.resolve_job_def("backtest_report")
    cfg = {"ops": {"backtest": {"config": {k: v for k, v in (("start", start), ("end", end)) if v}}}}
    t0 = time.perf_counter()
    result = job.execute_in_process(
        instance=instance or DagsterInstance.get(), run_config=_run_config(cfg), raise_on_error=False
    )
    out = {"success": result.success, "seconds": time.perf_counter() - t0, "run_id": result.run_id}
    if not quiet:
        summary_file = home.outbox / "reports" / "backtest" / "summary.json"
        print(f"backtest {'succeeded' if result.success else 'FAILED'} in {out['seconds']:.1f}s")
        if summary_file.exists():
            s = json.loads(summary_file.read_text())
            print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()
                                   if not isinstance(v, dict)))  # fmt: skip
            print(f"  tear sheet: {summary_file.parent / 'tearsheet.html'}")
    return out


def cmd_backtest(args) -> int:
    home = _home(args)
    return 0 if run_backtest(home, args.date_from, args.date_to)["success"] else 1


def cmd_materialize(args) -> int:
    home = _home(args)
    res = materialize(home, date.fromisoformat(args.date_from) if args.date_from else None,
                      date.fromisoformat(args.date_to) if args.date_to else None,
                      args.select.split(",") if args.select else None)  # fmt: skip
    return 0 if res["success"] else 1


# ------------------------------------------------------------------------------------------------ sql
def _lake_sql(home: AlphaHome):
    from resources.lake import DeltaLake
    from resources.sql import LakeSQL

    return LakeSQL(DeltaLake(home.lake))


def _print_frame(df, fmt: str) -> None:
    import polars as pl

    if fmt == "csv":
        sys.stdout.write(df.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str) + "\n")
    else:
        with pl.Config(tbl_rows=50, tbl_cols=20, fmt_str_lengths=40, tbl_width_chars=160):
            print(df)


def cmd_sql(args) -> int:
    from resources.sql import ReadOnlyError

    home = _home(args)
    db = _lake_sql(home)
    if args.query:
        try:
            _print_frame(db.query(args.query), args.format)
        except ReadOnlyError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except Exception as e:
            print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        return 0
    print(f"alpha sql: read-only DuckDB over {home.lake}. Tables: {', '.join(db.tables) or '(none)'}")
    print("End statements with ';'. Ctrl-D to quit.")
    buf = ""
    while True:
        try:
            line = input("alpha> " if not buf else "  ...> ")
        except EOFError:
            print()
            return 0
        buf += line + "\n"
        if not buf.strip().endswith(";"):
            continue
        try:
            _print_frame(db.query(buf), args.format)
        except Exception as e:
            print(f"error: {e}")
        buf = ""


def cmd_tables(args) -> int:
    import polars as pl

    home = _home(args)
    infos = _lake_sql(home).table_infos()
    df = pl.DataFrame([i.__dict__ for i in infos]) if infos else pl.DataFrame()
    _print_frame(df, args.format)
    return 0


# ----------------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    home = _home(args)
    t0 = time.perf_counter()
    print(f"ALPHA_HOME={home.root}")
    gen = argparse.Namespace(out=str(home.root), tickers=args.tickers, start=args.start, days=args.days,
                             seed=args.seed, signal_strength=args.signal_strength, alt_data=True)  # fmt: skip
    cmd_world_generate(gen)
    server = serve_vendor_site(home)
    try:
        if any((home.landing / "detector_training").glob("images/*/*.png")):
            train_models(home)
        res = materialize(home)
    finally:
        if server is not None:
            server.stop()
    if res["success"]:
        run_backtest(home)
    summary(home)
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f}s")
    print("next:\n  make ui                 # Dagster UI on http://127.0.0.1:3000 over this instance\n"
          "  .venv/bin/alpha tables  # every Delta table, rows, dates\n"
          "  .venv/bin/alpha sql \"SELECT source, count(*) FROM raw.prices GROUP BY 1\"")  # fmt: skip
    return 0 if res["success"] else 1


def summary(home: AlphaHome) -> None:
    db = _lake_sql(home)
    print("\ntables")
    for i in db.table_infos():
        print(f"  {i.name:30s} {i.rows:>9,d} rows  {i.first_date}..{i.last_date}  (delta v{i.version})")
    if "raw.prices" in db.tables:
        src = db.query(
            "SELECT source, count(DISTINCT trade_date) AS days FROM raw.prices GROUP BY 1 ORDER BY 1"
        )
        print("price sources by day: " + ", ".join(f"{r['source']}={r['days']}" for r in src.to_dicts()))
    _alt_quality()
    quarantined = sorted(
        p for p in home.quarantine.rglob("*") if p.is_file() and not p.name.endswith(".json")
    )
    print(f"quarantined files: {len(quarantined)}")
    for q in quarantined[:10]:
        reason = (
            json.loads(Path(str(q) + ".reason.json").read_text())["reason"]
            if Path(str(q) + ".reason.json").exists()
            else ""
        )
        print(f"  {q.relative_to(home.root)}: {reason}")


def _alt_quality() -> None:
    """The alt-data assets' latest error figures against the demo world's truth (from their metadata)."""
    from dagster import AssetKey, DagsterInstance

    wanted = {
        "raw/parking_lot_counts": ("truth_count_mae_pct", "car count error {:.1f}% of the mean count"),
        "raw/oil_tank_levels": ("truth_fill_mae", "tank fill MAE {:.4f}"),
        "raw/call_sentiment": ("truth_spearman_call_sentiment", "call sentiment vs true tone Spearman {:.2f}"),
        "raw/filing_features": ("truth_spearman_risk_factors_negative_terms",
                                "filing negative terms vs true risk Spearman {:.2f}"),
    }  # fmt: skip
    parts = []
    try:
        instance = DagsterInstance.get()
    except Exception:  # no instance configured: nothing to report
        return
    for key, (field, fmt) in wanted.items():
        event = instance.get_latest_materialization_event(AssetKey(key.split("/")))
        value = (
            event.asset_materialization.metadata.get(field) if event and event.asset_materialization else None
        )
        if value is not None and isinstance(getattr(value, "value", None), int | float):
            parts.append(fmt.format(value.value))
    if parts:
        print("alt data vs the world's truth (latest run): " + "; ".join(parts))


# ----------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alpha", description="The alpha asset platform")
    p.add_argument("--home", help="ALPHA_HOME (default $ALPHA_HOME or ./.alpha)")
    sub = p.add_subparsers(dest="cmd", required=True)

    def world_args(sp):
        sp.add_argument("--tickers", type=int, default=50)
        sp.add_argument("--days", type=int, default=252)
        sp.add_argument(
            "--start", help="first session (default: the world ends on the last completed session)"
        )
        sp.add_argument("--seed", type=int, default=7)
        sp.add_argument("--signal-strength", type=float, default=0.05, dest="signal_strength")

    w = sub.add_parser("world", help="the demo world simulator")
    wsub = w.add_subparsers(dest="world_cmd", required=True)
    g = wsub.add_parser("generate", help="write a seeded world's vendor files into DIR/landing")
    g.add_argument("--out", required=True)
    world_args(g)
    g.set_defaults(fn=cmd_world_generate)

    g.add_argument("--no-alt-data", dest="alt_data", action="store_false",
                   help="prices and reference data only (no imagery, transcripts, filings, web site)")  # fmt: skip
    ss = wsub.add_parser("serve-site", help="serve the world's vendor web site on 127.0.0.1 (for the UI)")
    ss.add_argument("--port", type=int, default=8765)
    ss.set_defaults(fn=cmd_serve_site)

    tr = sub.add_parser(
        "train", help="train (or reuse) the car detector: models/car_detector, logged to MLflow"
    )
    tr.add_argument(
        "--weights", help="use these YOLO weights instead of training (e.g. a pretrained yolov8n.pt)"
    )
    tr.set_defaults(fn=cmd_train)

    d = sub.add_parser("demo", help="generate a world and materialize every asset over it")
    world_args(d)
    d.set_defaults(fn=cmd_demo)

    m = sub.add_parser(
        "materialize", help="materialize assets over the files in landing/ (one single-run backfill)"
    )
    m.add_argument("--from", dest="date_from")
    m.add_argument("--to", dest="date_to")
    m.add_argument("--select", help="comma-separated asset keys, e.g. raw/prices,features/price_features")
    m.set_defaults(fn=cmd_materialize)

    b = sub.add_parser(
        "backtest", help="simulate the executed books with costs; writes reports.* and a tear sheet"
    )
    b.add_argument("--from", dest="date_from")
    b.add_argument("--to", dest="date_to")
    b.set_defaults(fn=cmd_backtest)

    s = sub.add_parser("sql", help="read-only SQL over the lake (no query: interactive shell)")
    s.add_argument("query", nargs="?")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.set_defaults(fn=cmd_sql)

    t = sub.add_parser("tables", help="list Delta tables with row counts and latest date")
    t.add_argument("--format", choices=["table", "csv", "json"], default="table")
    t.set_defaults(fn=cmd_tables)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
