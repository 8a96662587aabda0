"""The ``alpha`` command: demo, world (generate, serve-site), train, materialize, backtest, sql, tables,
serve-api, dashboard, api-key.

Only the CLI (and the tests) may import both the pipeline and the demo world.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from alpha_assets.home import AlphaHome
from alpha_assets.lib.settings import SESSIONS_PER_YEAR

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run_config(run_config: dict | None) -> dict:
    """The caller's run config, with the console log at ALPHA_LOG_LEVEL (default WARNING: the CLI prints its own
    summary; every event is still in the instance's event log and the UI)."""
    level = os.environ.get("ALPHA_LOG_LEVEL", "WARNING").upper()
    return {"loggers": {"console": {"config": {"log_level": level}}}, **(run_config or {})}


@contextlib.contextmanager
def progress(instance, run_id: str, quiet: bool = False, every: float = 2.0, run_tag: str | None = None):
    """While a run executes, print each step as it finishes (asset, seconds, steps so far, elapsed), read from
    the instance's event log by a background thread. Plain lines: readable on a terminal and in a log file
    alike. With ``run_tag``, the run is the one whose ``alpha/cli_run`` tag is ``run_id`` (a run created by
    dagster's ``execute_job``, whose id is not ours to choose)."""
    import threading

    if quiet:
        yield
        return
    from dagster import DagsterEventType

    stop, seen, t0 = threading.Event(), set(), time.perf_counter()
    started: dict[str, float] = {}

    def poll() -> None:
        rid = None if run_tag else run_id
        while not stop.wait(every):
            try:
                if rid is None:
                    from dagster import RunsFilter

                    runs = instance.get_runs(RunsFilter(tags={run_tag: run_id}), limit=1)
                    rid = runs[0].run_id if runs else None
                    continue
                records = instance.all_logs(
                    rid,
                    of_type={
                        DagsterEventType.STEP_START,
                        DagsterEventType.STEP_SUCCESS,
                        DagsterEventType.STEP_FAILURE,
                    },
                )
            except Exception:  # the run is not stored yet, or the storage is busy: try again
                continue
            for r in records:
                key, kind = r.step_key, r.dagster_event.event_type_value
                if kind == "STEP_START":
                    started.setdefault(key, r.timestamp)
                elif (key, kind) not in seen:
                    seen.add((key, kind))
                    took = r.timestamp - started.get(key, r.timestamp)
                    word = "done" if kind == "STEP_SUCCESS" else "FAILED"
                    print(
                        f"    {key.replace('__', '/'):34s} {word} in {took:5.0f}s   "
                        f"({len(seen)} step(s), {time.perf_counter() - t0:.0f}s elapsed)",
                        flush=True,
                    )

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _home(args, create: bool = False) -> AlphaHome:
    """ALPHA_HOME from --home or the environment. Only the commands that make one (demo, world generate) create
    it; every other command refuses a missing or mistyped home instead of working on an empty new one."""
    if getattr(args, "home", None):
        os.environ["ALPHA_HOME"] = str(Path(args.home).resolve())
    home = AlphaHome.from_env()
    why = home.unusable()
    if why:  # before anything runs: never a failure halfway through the steps
        raise UserError(f"ALPHA_HOME={home.root} cannot be used: {why}")
    if not create and not (home.root / "landing").is_dir():
        raise UserError(
            f"ALPHA_HOME={home.root} is not an alpha home (no landing/ folder): set ALPHA_HOME or "
            "--home to the folder `alpha demo` or `alpha world generate --out DIR` made"
        )
    try:
        home = home.ensure()
        home.check_writable()
    except OSError as e:
        raise UserError(
            f"ALPHA_HOME={home.root} cannot be used: {e.strerror or e}"
            + (f" ({e.filename})" if getattr(e, "filename", None) else "")
        ) from None
    # One "planned" event per asset for a range run instead of one per partition (12,600 events before the first
    # step of the demo's 504-session run, about 7 minutes on SQLite under load). Dagster's documented trade-off:
    # partitions of a failed range run are not marked failed (the run and its step failures still are).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    os.environ["ALPHA_HOME"] = str(home.root)
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    cfg = home.dagster / "dagster.yaml"
    # A home made before run monitoring keeps an unmodified copy of an older default: it gets the current one (a
    # copy the user edited is left alone).
    if not cfg.exists() or hashlib.sha256(cfg.read_bytes()).hexdigest() in _OLDER_LOCAL_INSTANCE_FILES:
        shutil.copy(REPO_ROOT / "deploy" / "local" / "dagster.yaml", cfg)
    return home


# sha256 of the earlier versions of deploy/local/dagster.yaml (before run monitoring), as `alpha demo` copied them.
_OLDER_LOCAL_INSTANCE_FILES = {
    "9a231a1bf774525abbfd9d793e86bb25e2b93e70d57ed8399b230bcc969d80a7",
    "f9c7174cb3f9e29d8b0a1daf4237df2e2a2b6a4d881bf3cad34c6cab29af130b",
}


def cli_tags() -> dict[str, str]:
    """Tags of every run the CLI executes in its own process: who launched it, and on which host (the local run
    monitoring checks the run's process only on the host that runs it: alpha_assets/run_launcher.py)."""
    from alpha_assets.run_launcher import HOST_TAG, this_host

    return {"alpha/launched_by": "alpha-cli", HOST_TAG: this_host()}


def _default_world_start(days: int) -> date:
    """A world that ends on the last completed session, like a live feed."""
    from partitions.calendar import sessions_between

    today = datetime.now(timezone.utc).date()
    sess = sessions_between(today - timedelta(days=int(days * 1.6) + 30), today - timedelta(days=1))
    return sess[-days]


# --------------------------------------------------------------------------------------------- world
def require_world() -> None:
    """The demo world is its own package (``alpha_world``), installed with a development checkout and absent from
    the production image: a command that needs it says so in one line there."""
    import importlib.util

    if importlib.util.find_spec("alpha_world") is None:
        raise UserError(
            "the demo world (package alpha_world) is not installed here: it comes with a development checkout "
            "(`make setup`), not with the production image"
        )


def cmd_world_generate(args) -> int:
    require_world()
    from alpha_world.altdata import write_alt_data
    from alpha_world.simulate import WorldConfig, simulate_world
    from alpha_world.vendors import write_world

    out = Path(args.out).resolve()
    start = parse_day(args.start, "--start") or _default_world_start(args.days)
    regime_break = getattr(args, "regime_break", None)
    cfg = WorldConfig(
        tickers=args.tickers,
        start=start,
        days=args.days,
        seed=args.seed,
        signal_strength=args.signal_strength,
        regime_break=parse_day(regime_break, "--regime-break"),
        regime_mode=getattr(args, "regime_mode", None) or "flip",
    )
    t0 = time.perf_counter()
    world = simulate_world(cfg)
    t_sim = time.perf_counter()
    meta = write_world(world, out)
    from partitions import configure_partitions_start  # the UI's partitions start at the lake's first session

    configure_partitions_start(out, date.fromisoformat(meta["start"]))
    t_files = time.perf_counter()
    alt = (
        write_alt_data(world, out, after_detector_set=getattr(args, "after_detector_set", None))
        if getattr(args, "alt_data", True)
        else None
    )
    print(
        f"world: {cfg.tickers} names x {cfg.days} sessions ({meta['start']}..{meta['end']}), seed {cfg.seed}, "
        f"signal strength {cfg.signal_strength} -> {out}/landing  ({time.perf_counter() - t0:.1f}s)"
    )
    if cfg.regime_break:
        print(
            f"regime break: planted alpha {'flipped' if cfg.regime_mode == 'flip' else 'removed'} "
            f"from {cfg.regime_break}"
        )
    f = meta["faults"]
    print(
        f"faults planted: A missing {len(f['provider_a_missing'])}, A late {len(f['provider_a_late'])}, "
        f"A corrupt {len(f['provider_a_corrupt'])}, B missing {len(f['provider_b_missing'])}, "
        f"B bad rows {f['provider_b_bad_rows']}"
    )
    stages = {
        "simulate": t_sim - t0,
        "prices_and_reference_files": t_files - t_sim,
        **(alt or {}).get("seconds", {}),
    }
    print("generation seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    if alt:
        names = alt["covered_names"]
        print(
            f"alt data over the whole span: {alt['parking_images']} parking images ({alt['stores']} stores of "
            f"{names['parking']} names, {alt['image_days']} sessions), {alt['tank_images']} tank images "
            f"({alt['farms']} farms of {names['tanks']} names, {alt['tank_days']} sessions), "
            f"{alt['transcripts']} call transcripts and {alt['filings']} filings ({names['text']} names), "
            f"{alt['web_pages']} web catalogue pages ({names['web']} names, {alt['web_days']} sessions; "
            f"{out / 'vendor_site'})"
        )
        ic = alt["oracle_ic_oos"]
        print(
            f"oracle (truth only): the delivered data can reveal an IC of {ic['ic']:.4f} (t {ic['t_stat']:.1f}, "
            f"{ic['n_days']} days) over the second half; see {out / 'ground_truth' / 'oracle_ic.json'}"
        )
    return 0


def serve_vendor_site(home: AlphaHome, port: int = 0):
    """Serve the demo world's vendor web site on 127.0.0.1 and point the platform at it (ALPHA_WEB_VENDOR_URL);
    returns the running server, or None when the world has no site."""
    if not (home.vendor_site / "index.html").exists():
        return None
    require_world()
    from alpha_world.vendor_site import serve_site

    server = serve_site(home.vendor_site, port=port)
    os.environ["ALPHA_WEB_VENDOR_URL"] = server.url
    return server


def cmd_serve_site(args) -> int:
    home = _home(args)
    server = serve_vendor_site(home, args.port)
    if server is None:
        print(f"no vendor site under {home.vendor_site}: run `alpha world generate` first", file=sys.stderr)
        return 1
    print(
        f"serving {home.vendor_site} at {server.url} (Ctrl-C stops)\n"
        f"for `make ui` in another shell:  export ALPHA_WEB_VENDOR_URL={server.url}"
    )
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
    instance = instance or DagsterInstance.get()
    if not quiet:
        print("car detector: training or reusing (about 1.5 minutes when it trains)", flush=True)
    run_id = make_run_id()
    with progress(instance, run_id, quiet):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_id=run_id,
            run_config=_run_config(run_config),
            tags=cli_tags(),
        )
    meta: dict = {}
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            meta = {
                k: getattr(v, "value", getattr(v, "text", None))
                for k, v in e.event_specific_data.materialization.metadata.items()
            }
    out = {"success": result.success, "seconds": time.perf_counter() - t0, **meta}
    if not quiet:
        if not result.success:
            print(f"car detector FAILED after {out['seconds']:.0f}s (see the run's logs in the UI)")
        elif meta.get("reused"):
            print(f"car detector v{meta['version']} reused (inputs unchanged) in {out['seconds']:.1f}s")
        else:
            err = meta.get("val_count_mae_pct")
            err_s = f", validation count error {err:.1f}% of the mean" if isinstance(err, float) else ""
            print(
                f"car detector v{meta['version']} {meta.get('source')} in {out['seconds']:.0f}s{err_s}; "
                f"MLflow run {str(meta.get('mlflow_run_id'))[:8]}"
            )
    return out


def cmd_train(args) -> int:
    home = _home(args)
    if args.alpha:
        if args.budget:
            os.environ["ALPHA_MODEL_BUDGET"] = args.budget
        return 0 if train_alpha(home)["success"] else 1
    cfg = (
        {"ops": {"models__car_detector": {"config": {"weights_path": args.weights}}}}
        if args.weights
        else None
    )
    return 0 if train_models(home, run_config=cfg)["success"] else 1


def trainable_blocks(
    home: AlphaHome, train_sessions: int | None = None, purge_sessions: int | None = None
) -> tuple[list[str], str]:
    """The quarterly blocks the feature matrix can train (a full training year + purge before the block, the rule of
    ``partitions.first_trainable_block``; default window: the training defaults), and why none when there are none."""
    from partitions import PURGE_SESSIONS, TRAIN_SESSIONS, block_key, first_trainable_block
    from partitions.calendar import sessions_between
    from resources.lake import DeltaLake

    lake = DeltaLake(home.lake)
    if not lake.exists("features", "feature_matrix"):
        return [], "features.feature_matrix does not exist: run `alpha materialize --job daily_data` first"
    days = (
        lake.scan("features", "feature_matrix").select("trade_date").unique().collect()["trade_date"].sort()
    )
    lo, hi = days[0], days[-1]
    train_sessions = TRAIN_SESSIONS if train_sessions is None else train_sessions
    purge_sessions = PURGE_SESSIONS if purge_sessions is None else purge_sessions
    # the block's whole quarter is scored, so the history must precede its first session
    first = first_trainable_block(lo, train_sessions, purge_sessions)
    blocks = [b for b in dict.fromkeys(block_key(d) for d in sessions_between(lo, hi)) if b >= first]
    if not blocks:
        return [], (
            f"the feature matrix covers {len(days)} sessions ({lo}..{hi}); a block needs "
            f"{train_sessions + purge_sessions} sessions of history before it (a training year + the purge): "
            "generate a longer world (--days 400+)"
        )
    return blocks, ""


def train_alpha(
    home: AlphaHome,
    blocks: list[str] | None = None,
    instance=None,
    quiet: bool = False,
    run_config: dict | None = None,
) -> dict:
    """Materialize models/fusion_encoder and models/alpha_models for each trainable block (one run per block). The
    encoder trains only when the run config's recipes include fusion (default: base alone, no encoder)."""
    from dagster import DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources

    if blocks is None:
        blocks, why = trainable_blocks(home)
        if not blocks:
            if not quiet:
                print(f"alpha models: skipped: {why}")
            return {"success": False, "blocks": [], "reason": why}
    job = build_definitions(local_resources(home)).resolve_job_def("train_alpha")
    instance = instance or DagsterInstance.get()
    ok, t0 = True, time.perf_counter()
    for i, block in enumerate(blocks, 1):
        tb = time.perf_counter()
        res = job.execute_in_process(
            instance=instance,
            partition_key=block,
            raise_on_error=False,
            run_config=_run_config(run_config),
            tags=cli_tags(),
        )
        ok &= res.success
        if not quiet:
            ics = {}
            for e in res.all_events:
                if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == "alpha_models":
                    md = e.event_specific_data.materialization.metadata
                    ics = md["validation_ic"].value if "validation_ic" in md else {}
            status = "trained" if res.success else "FAILED (see the run in the UI)"
            print(
                f"  block {block} [{i}/{len(blocks)}] {status} in {time.perf_counter() - tb:.0f}s"
                + (
                    "; validation IC " + ", ".join(f"{k} {v:+.3f}" for k, v in sorted(ics.items()))
                    if ics
                    else ""
                )
            )
    return {"success": ok, "blocks": blocks, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------------------- materialize
class UserError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2, no traceback."""


def make_run_id() -> str:
    import uuid

    return str(uuid.uuid4())


def resolve_selection(job, select: list[str]) -> list:
    """Asset keys from user spellings: ``raw/prices`` (Dagster's) or ``raw.prices`` (the SQL table name); assets
    that only materialize together (a multi-asset's outputs) are added; an unknown key lists the close matches."""
    import difflib

    from dagster import AssetKey

    graph = job.asset_layer.asset_graph
    known = {k.to_user_string(): k for k in graph.get_all_asset_keys() if graph.get(k).is_executable}
    in_job = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    keys: list[AssetKey] = []
    for raw in select:
        name = raw.strip().replace(".", "/")
        if not name:
            continue
        if name not in in_job:
            hint = difflib.get_close_matches(name, sorted(in_job), n=3)
            where = f" (it is not in job {job.name})" if name in known else ""
            raise UserError(
                f"unknown asset '{raw.strip()}'{where}"
                + (f"; did you mean {', '.join(hint)}?" if hint else "")
                + f"\nassets of job {job.name}: {', '.join(sorted(in_job))}"
            )
        for k in graph.get_execution_set_asset_and_check_keys(known[name]):
            if isinstance(k, AssetKey) and k not in keys:
                keys.append(k)
    if not keys:
        raise UserError("--select names no asset")
    return keys


def parse_day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{flag} {value!r} is not a date: use YYYY-MM-DD (e.g. 2026-11-30)") from None


def materialize(
    home: AlphaHome,
    start: date | None = None,
    end: date | None = None,
    select: list[str] | None = None,
    quiet: bool = False,
    instance=None,
    run_config: dict | None = None,
    job_name: str = "main",
    refresh_dependents: bool = True,
    executor: str = "in_process",
    dask_address: str | None = None,
) -> dict:
    """Materialize every selected asset of ``job_name`` over [start, end] as one single-run backfill on the local
    instance. Then, with ``refresh_dependents``, re-run the existing partitions of the job's assets that read a
    re-run day through their partition mappings (the labels of the sessions before the window, the windowed
    features after it): see ``partitions.stale``. ``executor="dask"`` runs the steps on the Dask scheduler at
    ``dask_address`` (a local cluster when None): see ``alpha_assets.executors``.

    A job over the model layer (daily_book, explain, serving) has partitions from the first session a model can
    exist (``partitions.model_days``): a range that starts earlier is clipped to it (said in one line), and a range
    wholly before it is refused naming that session. ``main`` is daily_data then daily_book over the range."""
    from dagster import DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources
    from partitions.calendar import sessions_between

    if start is None or end is None:
        lo, hi = landing_date_range(home)
        start, end = start or lo, end or hi
    if start is None or end is None:
        raise UserError(f"nothing to materialize: no dated vendor files under {home.landing}")
    sessions = sessions_between(start, end)
    if not sessions:
        raise UserError(f"no trading sessions between {start} and {end}")
    defs = build_definitions(local_resources(home))
    run = {
        "quiet": quiet,
        "instance": instance or DagsterInstance.get(),
        "run_config": run_config,
        "executor": executor,
        "dask_address": dask_address,
    }
    if job_name == "main":
        return _materialize_main(home, defs, sessions, select, refresh_dependents, run)
    job = defs.resolve_job_def(job_name)
    sessions = _clip_to_partitions(job, sessions, quiet)
    keys = resolve_selection(job, select) if select else None
    out = _run_job_range(home, job, sessions, keys, **run)
    if refresh_dependents and out["success"]:
        job = defs.resolve_job_def(job_name)
        _refresh_stale_dependents(
            home, out, job.asset_layer.asset_graph, out["rerun_keys"], part_of=lambda _key: job_name, **run
        )
    out.pop("rerun_keys")
    return out


def _clip_to_partitions(job, sessions: list[date], quiet: bool) -> list[date]:
    """The sessions of the range that are partitions of ``job``: a range starting before its first partition (the
    model layer's jobs start where a model can exist) is clipped with one line; one wholly before it is refused."""
    pdef = job.partitions_def
    first = date.fromisoformat(pdef.get_first_partition_key()) if pdef is not None else None
    if first is None or sessions[0] >= first:
        return sessions
    if sessions[-1] < first:
        raise UserError(
            f"job {job.name} starts at {first}, the first session a trained model can exist "
            f"(a training year + the purge after the lake's first session): "
            f"{sessions[0]}..{sessions[-1]} is before it; use --from {first} or later"
        )
    kept = [d for d in sessions if d >= first]
    if not quiet:
        print(
            f"{job.name}: starting at {first}, the first session a trained model can exist "
            f"({len(sessions) - len(kept)} earlier sessions of {sessions[0]}..{sessions[-1]} have no "
            f"{job.name} partition)"
        )
    return kept


def _materialize_main(
    home: AlphaHome, defs, sessions: list[date], select: list[str] | None, refresh_dependents: bool, run: dict
) -> dict:
    """``main``: daily_data over the range, then daily_book over its sessions where a model can exist (no Dagster job
    holds both: their partitions start on different sessions, see ``alpha_assets.jobs``). A range wholly before the
    model layer runs the data layer alone and says so."""
    from alpha_assets.jobs import MAIN_PARTS

    jobs = {name: defs.resolve_job_def(name) for name in MAIN_PARTS}
    part_keys = _main_selection(jobs, select)
    out: dict | None = None
    for name, keys in part_keys.items():
        job = jobs[name]
        first = date.fromisoformat(job.partitions_def.get_first_partition_key())
        if sessions[-1] < first:
            if not run["quiet"]:
                print(
                    f"{name}: skipped, {sessions[0]}..{sessions[-1]} is before {first}, the first session a "
                    "trained model can exist"
                )
            continue
        res = _run_job_range(home, job, _clip_to_partitions(job, sessions, run["quiet"]), keys, **run)
        out = res if out is None else _merge_results(out, res)
        if not res["success"]:
            break
    assert out is not None  # the data part always runs
    out["start"], out["end"] = sessions[0], sessions[-1]
    rerun_keys = out.pop("rerun_keys")
    if refresh_dependents and out["success"]:
        graph = defs.resolve_asset_graph()
        owner = {k: name for name, job in jobs.items() for k in job.asset_layer.executable_asset_keys}
        _refresh_stale_dependents(home, out, graph, rerun_keys, part_of=owner.get, **run)
    return out


def _main_selection(jobs: dict, select: list[str] | None) -> dict[str, list | None]:
    """``--select`` for ``main``, split between its jobs (each asset goes to the job that holds it); no selection:
    every asset of each job."""
    if not select:
        return dict.fromkeys(jobs)
    names = [n for raw in select if (n := raw.strip().replace(".", "/"))]
    held = {
        name: {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
        for name, job in jobs.items()
    }
    unknown = [n for n in names if not any(n in keys for keys in held.values())]
    if unknown:  # the error of the first job, listing close matches over both
        import difflib

        every = sorted(set().union(*held.values()))
        hint = difflib.get_close_matches(unknown[0], every, n=3)
        raise UserError(
            f"unknown asset '{unknown[0]}'"
            + (f"; did you mean {', '.join(hint)}?" if hint else "")
            + f"\nassets of job main: {', '.join(every)}"
        )
    out: dict[str, list | None] = {}
    for name, job in jobs.items():
        mine = [n for n in names if n in held[name]]
        if mine:
            out[name] = resolve_selection(job, mine)
    return out


def _merge_results(a: dict, b: dict) -> dict:
    """Two runs' summaries as one (``main``'s parts)."""
    return {
        **b,
        "success": a["success"] and b["success"],
        "seconds": a["seconds"] + b["seconds"],
        "failed_steps": a["failed_steps"] + b["failed_steps"],
        "failure_reasons": {**a["failure_reasons"], **b["failure_reasons"]},
        "failovers": a["failovers"] + b["failovers"],
        "failed_checks": sorted(set(a["failed_checks"]) | set(b["failed_checks"])),
        "refreshed": a["refreshed"] + b["refreshed"],
        "book_days": sorted(set(a["book_days"]) | set(b["book_days"])),
        "rerun_keys": a["rerun_keys"] | b["rerun_keys"],
        "run_ids": a["run_ids"] + b["run_ids"],
    }


def _run_job_range(
    home: AlphaHome,
    job,
    sessions: list[date],
    keys: list | None,
    quiet: bool,
    instance,
    run_config: dict | None,
    executor: str,
    dask_address: str | None,
) -> dict:
    """One single-run backfill of ``job`` (its ``keys`` when given) over ``sessions``, and its summary."""
    job_name = job.name
    checks: set = set()
    if keys:
        # A subset keeps the selected assets' own checks but not the freshness checks (their sensor runs those).
        checks = {
            c
            for c in job.asset_layer.asset_graph.asset_check_keys
            if c.asset_key in keys and c.name != "freshness_check"
        }
        job = job.get_subset(asset_selection=set(keys), asset_check_selection=checks)
    tags = {
        "dagster/asset_partition_range_start": sessions[0].isoformat(),
        "dagster/asset_partition_range_end": sessions[-1].isoformat(),
        **cli_tags(),
    }
    where = {"in_process": "", "dask": f" on Dask ({dask_address or 'a local cluster'})"}[executor]
    if not quiet:
        print(
            f"materializing {job_name}: {sessions[0]}..{sessions[-1]} ({len(sessions)} sessions) in one run "
            f"on the instance at {instance.root_directory}{where}"
        )
    t0 = time.perf_counter()
    run_id = make_run_id()
    if executor == "dask":
        from alpha_assets.dask_runs import run_on_dask
        from alpha_assets.executors import DaskUnavailable

        with progress(instance, run_id, quiet, run_tag="alpha/cli_run"):
            try:
                result = run_on_dask(
                    job_name,
                    str(home.root),
                    instance,
                    {**tags, "alpha/cli_run": run_id},
                    _run_config(run_config),
                    asset_keys=[k.to_user_string() for k in keys] if keys else None,
                    check_keys=[[c.asset_key.to_user_string(), c.name] for c in checks],
                    address=dask_address,
                )
            except DaskUnavailable as e:
                raise UserError(str(e)) from None
    else:
        with progress(instance, run_id, quiet):
            result = job.execute_in_process(
                instance=instance,
                tags=tags,
                raise_on_error=False,
                run_config=_run_config(run_config),
                run_id=run_id,
            )
    secs = time.perf_counter() - t0
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    failures = {
        e.step_key: failure_reason(e.event_specific_data.error)
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    }
    failed = list(failures)
    checks = [
        (e.event_specific_data.check_name, e.event_specific_data.passed)
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    if not quiet:
        per_asset: dict[str, int] = {}
        for e in mats:
            per_asset[e.asset_key.to_user_string()] = per_asset.get(e.asset_key.to_user_string(), 0) + 1
        for k, n in per_asset.items():
            print(f"  {k:32s} {n} partitions materialized")
        print(f"run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} in {secs:.1f}s")
        for s, why in failures.items():
            print(f"  failed step: {s.replace('__', '/')}: {why}")
        if failures:
            print(f"  (full tracebacks: the run's event log, run id {result.run_id})")
        for c in sorted({name for name, ok in checks if not ok}):
            print(f"  check not passed: {c}")
    from alpha_assets.keys import RAW_PRICES

    failovers = (
        price_failovers(home, sessions[0], sessions[-1])
        if not quiet and any(e.asset_key == RAW_PRICES for e in mats)
        else []
    )
    if not quiet and failovers:
        print("  failovers (names not from provider A):")
        for line in failovers[:FAILOVER_LINES]:
            print(
                f"    {line['trade_date']}  {line['names']:3d} name(s) from {line['source']}: {line['reason']}"
            )
        if len(failovers) > FAILOVER_LINES:
            print(
                f'    ... {len(failovers) - FAILOVER_LINES} more: alpha sql "SELECT trade_date, ticker, source, '
                f"failover_reason FROM raw.prices WHERE source <> 'A' AND trade_date BETWEEN '{sessions[0]}' "
                f"AND '{sessions[-1]}'\""
            )
    return {
        "run_id": result.run_id,
        "run_ids": [result.run_id],
        "success": result.success,
        "seconds": secs,
        "failed_steps": failed,
        "failure_reasons": failures,
        "failovers": failovers,
        "failed_checks": sorted({name for name, ok in checks if not ok}),
        "start": sessions[0],
        "end": sessions[-1],
        "refreshed": [],
        "book_days": book_days(mats),
        "rerun_keys": {e.asset_key for e in mats},
    }


FAILOVER_LINES = 20  # lines of the failover summary; the rest is one query away
BOOK_LAYER = "portfolio"  # a materialization of portfolio/* changed a book the serving store may hold


def book_days(mats) -> list[date]:
    """The trading days whose book (any ``portfolio/*`` asset) these materialization events rewrote."""
    return sorted(
        {date.fromisoformat(e.partition) for e in mats if e.asset_key.path[0] == BOOK_LAYER and e.partition}
    )


def republish(home: AlphaHome, days: list[date], quiet: bool = False, instance=None) -> dict:
    """Materialize the ``serving`` job (pipeline log, marts, publication) over the days whose book a run changed,
    so that the API and the dashboard serve the book the lake holds."""
    lo, hi = days[0], days[-1]
    if not quiet:
        print(
            f"republishing the serving store for {lo}..{hi}: the run changed the book of {len(days)} "
            "session(s), and the API and dashboard serve what is published"
        )
    res = materialize(
        home, lo, hi, job_name="serving", refresh_dependents=False, quiet=quiet, instance=instance
    )
    if not res["success"] and not quiet:
        print(
            f"serving store NOT republished (the API and dashboard say how many sessions behind the lake they "
            f"are): retry with `alpha materialize --job serving --from {lo} --to {hi}`"
        )
    return res


def failure_reason(error) -> str:
    """One line saying why a step failed: the first line of the exception the asset raised (under Dagster's own
    wrappers), not the traceback (that stays in the run's event log)."""
    if error is None:
        return "no error recorded"
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    lines = [ln.strip() for ln in (error.message or "").splitlines() if ln.strip()]
    first = lines[0] if lines else (error.cls_name or "error")
    return first if len(first) <= 300 else first[:297] + "..."


def price_failovers(home: AlphaHome, start: date, end: date) -> list[dict]:
    """Each day's names not taken from provider A in [start, end], grouped by source and reason (from raw.prices'
    ``source`` and ``failover_reason``), in date order."""
    import polars as pl

    from resources.lake import DeltaLake

    lake = DeltaLake(home.lake)
    try:
        rows = lake.read("raw", "prices", start, end) if lake.exists("raw", "prices") else None
    except Exception as e:  # the summary never fails a run that succeeded
        print(
            f"  (failovers unavailable: cannot read raw.prices: {str(e).splitlines()[0] if str(e) else e!r})"
        )
        return []
    if rows is None:
        return []
    if "failover_reason" not in rows.columns or "source" not in rows.columns:
        return []
    grouped = (
        rows.filter(pl.col("source") != "A")
        .group_by("trade_date", "source", "failover_reason")
        .agg(names=pl.len())
        .sort("trade_date", "names", "failover_reason", descending=[False, True, False])
    )
    return [
        {
            "trade_date": r["trade_date"],
            "source": r["source"],
            "names": r["names"],
            "reason": r["failover_reason"] or "(no reason recorded)",
        }
        for r in grouped.to_dicts()
    ]


def _refresh_stale_dependents(home: AlphaHome, out: dict, graph, rerun_keys: set, part_of, **run) -> None:
    """Re-run what the run made stale outside its window (``partitions.stale``), one run per contiguous range and
    job (``part_of(key)``: the job that holds an asset of ``graph``; None leaves it out)."""
    from partitions.stale import refresh_runs, stale_dependents

    instance = run["instance"]
    stale = stale_dependents(
        graph,
        rerun_keys,
        out["start"],
        out["end"],
        instance.get_materialized_partitions,
        within=lambda key: part_of(key) is not None,
    )
    for lo, hi, keys in refresh_runs(stale, graph):
        by_job: dict[str, list] = {}
        for k in keys:
            by_job.setdefault(part_of(k), []).append(k)
        for job_name, job_keys in by_job.items():
            # this job's stale days in the range (the model layer's start after the data layer's)
            days = [d for k in job_keys for d in stale.get(k, ()) if lo <= d <= hi] or [lo, hi]
            first, last = min(days), max(days)
            names = [k.to_user_string() for k in job_keys]
            if not run["quiet"]:
                print(f"refreshing {len(names)} assets that read the re-run days, {first}..{last}")
            res = materialize(
                home, first, last, select=names, refresh_dependents=False, job_name=job_name, **run
            )
            out["refreshed"].append({"start": first, "end": last, "assets": names, "success": res["success"]})
            out["success"] &= res["success"]
            out["book_days"] = sorted(set(out["book_days"]) | set(res["book_days"]))
            out["failed_steps"] += res["failed_steps"]
            out["failure_reasons"].update(res["failure_reasons"])


def landing_date_range(home: AlphaHome) -> tuple[date | None, date | None]:
    from alpha_assets.lib.ingestion.vendor_files import date_from_name

    # A file dated after today (UTC) is refused at intake: it never stretches the default --to into the future.
    today = datetime.now(timezone.utc).date()
    dates = [
        d for p in home.landing.rglob("*") if p.is_file() and (d := date_from_name(p.name)) and d <= today
    ]
    return (min(dates), max(dates)) if dates else (None, None)


def run_backtest(
    home: AlphaHome, start: str | None = None, end: str | None = None, instance=None, quiet: bool = False
) -> dict:
    """Run the backtest job (reports.backtest_*) over the executed books on the local instance."""
    from dagster import DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources

    defs = build_definitions(local_resources(home))
    job = defs.resolve_job_def("backtest_report")
    cfg = {"ops": {"backtest": {"config": {k: v for k, v in (("start", start), ("end", end)) if v}}}}
    t0 = time.perf_counter()
    result = job.execute_in_process(
        instance=instance or DagsterInstance.get(),
        run_config=_run_config(cfg),
        raise_on_error=False,
        tags=cli_tags(),
    )
    out = {"success": result.success, "seconds": time.perf_counter() - t0, "run_id": result.run_id}
    if not quiet:
        summary_file = home.outbox / "reports" / "backtest" / "summary.json"
        print(f"backtest {'succeeded' if result.success else 'FAILED'} in {out['seconds']:.1f}s")
        if summary_file.exists():
            s = json.loads(summary_file.read_text())
            print(
                "  "
                + ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in s.items()
                    if not isinstance(v, dict)
                )
            )
            print(f"  tear sheet: {summary_file.parent / 'tearsheet.html'}")
    return out


def cmd_backtest(args) -> int:
    home = _home(args)
    return 0 if run_backtest(home, args.date_from, args.date_to)["success"] else 1


def cmd_materialize(args) -> int:
    home = _home(args)
    start, end = parse_day(args.date_from, "--from"), parse_day(args.date_to, "--to")
    if start and end and start > end:
        raise UserError(f"--from {start} is after --to {end}")
    if args.dask_address and args.executor != "dask":
        raise UserError("--dask-address needs --executor dask")
    if args.dask_address:  # a malformed address: refused before anything loads
        from alpha_assets.executors import DaskUnavailable, address_problem

        try:
            address_problem(args.dask_address)
        except DaskUnavailable as e:
            raise UserError(str(e)) from None
    res = materialize(
        home,
        start,
        end,
        args.select.split(",") if args.select else None,
        job_name=args.job,
        executor=args.executor,
        dask_address=args.dask_address,
    )
    ok = res["success"]
    if args.job != "serving" and res["book_days"]:  # the lake's book changed: publish it
        ok &= republish(home, res["book_days"])["success"]
    return 0 if ok else 1


# ------------------------------------------------------------------------------------------------ sql
def _lake_sql(home: AlphaHome):
    from alpha_assets.serving import marts_db_path
    from resources.lake import DeltaLake
    from resources.sql import LakeSQL

    def warn(name: str, why: str) -> None:  # one unreadable table: named once, the others still work
        print(f"warning: table {name} skipped (cannot be read: {why})", file=sys.stderr)

    # tables are opened when a query names them: `alpha sql "SELECT 1"` reads none
    return LakeSQL(DeltaLake(home.lake), marts_db=marts_db_path(home), on_skip=warn)


SHELL_ROWS = (
    50  # rows the table format shows; more are counted, never dropped in silence (--format csv for all)
)


def _print_frame(df, fmt: str) -> None:
    import polars as pl

    if fmt == "csv":
        sys.stdout.write(df.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str) + "\n")
    else:
        with pl.Config(tbl_rows=SHELL_ROWS, tbl_cols=20, fmt_str_lengths=40, tbl_width_chars=160):
            print(df)
        if df.height > SHELL_ROWS:
            print(f"({df.height:,} rows, {SHELL_ROWS} shown: add a LIMIT, or --format csv for every row)")


SHELL_HELP = """statements end with ';' and may span lines. Commands (no ';'):
  .tables            every table with rows and dates       .schema TABLE   its columns and types
  help               this text                             exit, quit      leave (Ctrl-D works too)
Ctrl-C drops the statement being typed. History is kept in $ALPHA_HOME/.sql_history."""


def _run_sql(db, sql: str, fmt: str) -> int:
    from resources.sql import ReadOnlyError

    if not sql.strip().rstrip(";").strip():
        print("error: empty query", file=sys.stderr)
        return 2
    try:
        _print_frame(db.query(sql), fmt)
    except ReadOnlyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def _shell_command(db, line: str, fmt: str) -> bool | None:
    """A dot-command or word command: True handled, False quit, None not a command."""
    word = line.strip().rstrip(";").strip()
    if word.lower() in ("exit", "quit", ".exit", ".quit", r"\q"):
        return False
    if word.lower() in ("help", ".help", "?"):
        print(SHELL_HELP)
        return True
    if word.lower() == ".tables":
        for i in db.table_infos():
            print(f"  {i.name:32s} {i.rows:>10,d} rows  {i.first_date}..{i.last_date}")
        return True
    if word.lower().startswith(".schema"):
        table = word[len(".schema") :].strip()
        if table not in db.tables:
            print(f"error: no table {table!r}; .tables lists them")
        else:
            _run_sql(db, f"DESCRIBE {table}", fmt)
        return True
    if word.startswith("."):
        print(f"error: unknown command {word.split()[0]!r}; type help")
        return True
    return None


def cmd_sql(args) -> int:
    home = _home(args)
    db = _lake_sql(home)
    if args.query is not None:
        return _run_sql(db, args.query, args.format)
    try:
        import readline

        history = home.root / ".sql_history"
        if history.exists():
            readline.read_history_file(str(history))
        readline.set_history_length(1000)
    except (ImportError, OSError):
        readline, history = None, None
    print(f"alpha sql: read-only DuckDB over {home.lake}. Tables: {', '.join(db.tables) or '(none)'}")
    print("End statements with ';'. Type help for commands, exit or Ctrl-D to quit.")
    buf = ""
    try:
        while True:
            try:
                line = input("alpha> " if not buf else "  ...> ")
            except KeyboardInterrupt:  # drop the statement being typed, keep the shell
                print()
                buf = ""
                continue
            except EOFError:
                print()
                return 0
            if not buf:
                handled = _shell_command(db, line, args.format)
                if handled is False:
                    return 0
                if handled:
                    continue
                if not line.strip():
                    continue
            buf += line + "\n"
            if not buf.strip().endswith(";"):
                continue
            try:
                _run_sql(db, buf, args.format)
            except KeyboardInterrupt:
                print("(query interrupted)")
            buf = ""
    finally:
        if readline is not None and history is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(str(history))


def cmd_tables(args) -> int:
    import polars as pl

    home = _home(args)
    infos = _lake_sql(home).table_infos()
    df = pl.DataFrame([i.__dict__ for i in infos]) if infos else pl.DataFrame()
    _print_frame(df, args.format)
    return 0


# ----------------------------------------------------------------------------------------------- demo
def run_job(home: AlphaHome, job_name: str, instance=None, quiet: bool = False) -> dict:
    """Run an unpartitioned job (e.g. model_report) on the local instance."""
    from dagster import DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources

    job = build_definitions(local_resources(home)).resolve_job_def(job_name)
    t0 = time.perf_counter()
    res = job.execute_in_process(
        instance=instance or DagsterInstance.get(),
        raise_on_error=False,
        run_config=_run_config(None),
        tags=cli_tags(),
    )
    out = {"success": res.success, "seconds": time.perf_counter() - t0, "run_id": res.run_id}
    if not quiet and not res.success:
        print(f"{job_name} FAILED after {out['seconds']:.0f}s (run {res.run_id[:8]}; see its logs in the UI)")
    return out


# A quarterly block needs a training year + the purge before it, and the first full quarter after that may start up
# to a quarter later: below this the demo would have no out-of-sample book to show.
MIN_DEMO_SESSIONS = SESSIONS_PER_YEAR + 5 + 63 + 20


def demo_lanes(job) -> tuple[list[str], list[str], list[str]]:
    """The data job's assets in three groups for the demo: ``imagery`` (the parking-lot counts, which need the car
    detector), ``rest`` (everything that does not read them) and ``after`` (what reads them, inside the job)."""
    from dagster import AssetKey

    from alpha_assets.keys import RAW_PARKING_LOT_COUNTS

    graph = job.asset_layer.asset_graph
    in_job = set(job.asset_layer.executable_asset_keys)
    imagery = {
        k
        for k in graph.get_execution_set_asset_and_check_keys(RAW_PARKING_LOT_COUNTS)
        if isinstance(k, AssetKey)
    }
    after: set = set()
    todo = list(imagery)
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child in in_job and child not in after and child not in imagery:
                after.add(child)
                todo.append(child)
    rest = in_job - imagery - after

    def names(keys: set) -> list[str]:
        return sorted(k.to_user_string() for k in keys)

    return names(imagery), names(rest), names(after)


def _imagery_lane(home_root: str, log: str, out: str, world_written) -> None:
    """The demo's second process: train the car detector, then (once ``world_written`` is set: the parking images
    are drawn by then) count the parking lots; output to ``log``, the summary as JSON to ``out``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import warnings

    # as `alpha` itself (cli.main): a library's warning is not the user's news
    warnings.simplefilter("ignore")
    os.environ["ALPHA_HOME"] = home_root
    home = AlphaHome.from_env()
    result: dict = {"detector": train_models(home)}
    import multiprocessing

    parent = multiprocessing.parent_process()
    while not world_written.wait(2.0):
        if parent is not None and not parent.is_alive():
            return  # the demo was killed: nothing to count for
    if result["detector"]["success"] and (home.landing / "parking").is_dir():
        from alpha_assets.keys import RAW_PARKING_LOT_COUNTS

        # the same selection as demo_lanes' imagery: materialize adds the multi-asset's parking_lot_images
        imagery = [RAW_PARKING_LOT_COUNTS.to_user_string()]
        res = materialize(home, job_name="daily_data", select=imagery, refresh_dependents=False)
        keep = ("success", "seconds", "failed_steps", "failure_reasons", "failed_checks", "run_ids")
        result["imagery"] = {k: res[k] for k in keep}
    sys.stdout.flush()
    Path(out).write_text(json.dumps(result, default=str))


class ImageryLane:
    """The demo's second process (``_imagery_lane``): started as soon as the world has written the detector's
    training set, it trains the car detector while the world's other files are drawn, and counts the parking
    lots once ``world_written()`` has been called."""

    def __init__(self, home: AlphaHome):
        import multiprocessing

        logs = home.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log, self.out = logs / "demo_imagery_lane.log", logs / "demo_imagery_lane.json"
        self.out.unlink(missing_ok=True)
        ctx = multiprocessing.get_context("spawn")
        self._written = ctx.Event()
        self.process = ctx.Process(
            target=_imagery_lane,
            args=(str(home.root), str(self.log), str(self.out), self._written),
            name="imagery-lane",
        )

    @property
    def started(self) -> bool:
        return self.process.pid is not None

    def start(self) -> None:
        print(
            f"car detector training, then the parking lots: in a second process beside this one (log: {self.log})",
            flush=True,
        )
        self.process.start()

    def world_written(self) -> None:
        self._written.set()

    def stop(self) -> None:
        self.world_written()
        if self.started:
            if self.process.is_alive():
                self.process.terminate()
            self.process.join()


def data_layer_in_two_lanes(home: AlphaHome, lane: ImageryLane) -> dict:
    """``daily_data`` for the demo on two cores: ``lane`` (a second process, training the car detector since the
    world wrote its training set) counts the parking lots while this process materializes everything that does not
    read them (prices, universe, tanks, texts, web, labels, price features); then the assets that read both (alt
    features, the feature matrix). The same assets and partitions as one ``daily_data`` run, in three runs on the
    instance; the detector's training (about 3 minutes of one core) no longer waits in line."""
    from alpha_assets.definitions import build_definitions, local_resources

    job = build_definitions(local_resources(home)).resolve_job_def("daily_data")
    imagery, rest, after = demo_lanes(job)
    lane.world_written()
    try:
        res = materialize(home, job_name="daily_data", select=rest, refresh_dependents=False)
    except BaseException:
        lane.stop()
        raise
    lane.process.join()
    done = json.loads(lane.out.read_text()) if lane.out.exists() else {}
    det, img = done.get("detector", {}), done.get("imagery")
    if not det.get("success"):
        print(f"car detector FAILED (exit code {lane.process.exitcode}; see {lane.log})")
        return {**res, "success": False}
    err = det.get("val_count_mae_pct")
    print(
        f"car detector v{det.get('version')} "
        + ("reused" if det.get("reused") else f"trained in {det.get('seconds', 0):.0f}s")
        + (f", validation count error {err:.1f}% of the mean" if isinstance(err, float) else "")
    )
    if not img or not img["success"]:
        why = "; ".join(f"{s}: {r}" for s, r in (img or {}).get("failure_reasons", {}).items())
        print(f"parking lots FAILED ({why or f'exit code {lane.process.exitcode}'}; see {lane.log})")
        return {**res, "success": False}
    print(f"  {', '.join(imagery)}: run {img['run_ids'][0][:8]} succeeded in {img['seconds']:.0f}s")
    if not res["success"]:
        return res
    last = materialize(home, job_name="daily_data", select=after, refresh_dependents=False)
    return {
        **last,
        "start": res["start"],
        "failed_steps": img["failed_steps"] + last["failed_steps"],
        "failed_checks": sorted(
            set(res["failed_checks"]) | set(img["failed_checks"]) | set(last["failed_checks"])
        ),
        "run_ids": res["run_ids"] + img["run_ids"] + last["run_ids"],
    }


def cmd_demo(args) -> int:
    require_world()
    if args.days < MIN_DEMO_SESSIONS:
        print(
            f"alpha demo: --days {args.days} is too short for the model layer: the models train on a year "
            f"(252 sessions + a 5-session purge) before each quarter they score, so the demo needs at least "
            f"{MIN_DEMO_SESSIONS} sessions (default 504). For the data layer alone: "
            f"`alpha world generate --days {args.days} --out DIR` and `alpha materialize --job daily_data`.",
            file=sys.stderr,
        )
        return 2
    if args.tickers < 20:
        print(
            f"alpha demo: --tickers {args.tickers} is too few for a long/short book and a cross-sectional IC; "
            "use 20 or more (default 100).",
            file=sys.stderr,
        )
        return 2
    home = _home(args, create=True)
    t0 = time.perf_counter()
    os.environ.setdefault("ALPHA_MODEL_BUDGET", "demo")  # budgets that fit the demo's 10 minutes on 2 cores
    stages: list[tuple[str, float]] = []

    def cpu_seconds() -> float:  # this process and its finished children (the world's render workers, pools)
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    cpu = [cpu_seconds()]

    def stage(name: str, since: float) -> float:
        # CPU seconds and the load average beside the wall time: on a busy machine the wall time says little
        now, used = time.perf_counter(), cpu_seconds()
        stages.append((name, now - since))
        print(
            f"-- {name}: {now - since:.0f}s (CPU {used - cpu[0]:.0f}s, load average {os.getloadavg()[0]:.1f})"
        )
        cpu[0] = used
        return now

    print(f"ALPHA_HOME={home.root}")
    gen = argparse.Namespace(
        out=str(home.root),
        tickers=args.tickers,
        start=args.start,
        days=args.days,
        seed=args.seed,
        signal_strength=args.signal_strength,
        alt_data=True,
        regime_break=getattr(args, "regime_break", None),
        regime_mode=getattr(args, "regime_mode", "flip"),
        after_detector_set=(lane := ImageryLane(home)).start,
    )
    server = None
    ok = False
    try:
        cmd_world_generate(gen)
        t = stage("world", t0)
        server = serve_vendor_site(home)
        if lane.started:
            res = data_layer_in_two_lanes(home, lane)
            t = stage("car detector, vendor data and features", t)
        else:
            res = materialize(home, job_name="daily_data")
            t = stage("vendor data and features", t)
        ok = res["success"]
    finally:
        if not ok:  # never leave the second process behind (a failed world, a failed run, Ctrl-C)
            lane.stop()
        if server is not None:
            server.stop()
    if not ok:
        print("demo stopped: the data run failed (see the failed steps above)")
        return 1
    trained = train_alpha(home)
    t = stage("alpha models", t)
    if trained["blocks"] and trained["success"]:
        first = _block_first_session(trained["blocks"][0])
        res = materialize(home, start=first, end=res["end"], job_name="daily_book")
        ok &= res["success"]
        t = stage("scores, books, risk, orders", t)
        if res["success"]:
            from partitions.calendar import shift_sessions

            materialize(home, start=shift_sessions(res["end"], -2), end=res["end"], job_name="explain")
            t = stage("explanations (last 3 sessions)", t)
            run_backtest(home)
            run_job(home, "model_report")
            t = stage("backtest and model report", t)
            # the marts and the serving store (API, dashboard) over every day of the book
            ok &= materialize(home, start=first, end=res["end"], job_name="serving")["success"]
            t = stage("marts and serving store", t)
    else:
        ok = False
    summary(home)
    model_summary(home)
    total = time.perf_counter() - t0
    print(
        f"\ndemo finished in {total:.0f}s ("
        + ", ".join(f"{n} {s:.0f}s" for n, s in stages)
        + ")"
        + f"; CPU {cpu_seconds():.0f}s, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        "next:\n  make ui                 # Dagster UI on http://127.0.0.1:3000 over this instance\n"
        "  .venv/bin/alpha tables  # every Delta table, rows, dates\n"
        '  .venv/bin/alpha sql "SELECT model, recipe, count(*) FROM models.predictions GROUP BY ALL"\n'
        "  .venv/bin/alpha explain TICKER --date YYYY-MM-DD   # why a name got its score\n"
        "  .venv/bin/alpha dashboard   # the fund's dashboard on http://127.0.0.1:8050\n"
        "  .venv/bin/alpha serve-api   # the read-only REST API on http://127.0.0.1:8000 (docs at /docs)"
    )
    return 0 if ok else 1


def _serve(args, dashboard: bool) -> int:
    """`alpha serve-api` / `alpha dashboard`: the read-only API (and the dashboard pages) over the serving store."""
    if getattr(args, "home", None):
        os.environ["ALPHA_HOME"] = str(Path(args.home).resolve())
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is not a TCP port (1-65535)")
    from alpha_assets.serving.api import create_app, serve
    from alpha_assets.serving.security import OPERATOR_PATHS, KeyRing, KeysError
    from alpha_assets.serving.store import serving_url

    url = serving_url()
    home = AlphaHome.from_env().root
    if not os.environ.get("ALPHA_SERVING_URL") and not home.is_dir():
        raise UserError(
            f"ALPHA_HOME={home} does not exist: set ALPHA_HOME or --home to the "
            "folder `alpha demo` made, or ALPHA_SERVING_URL to the serving database"
        )
    workers = getattr(args, "workers", 1)
    if not 1 <= workers <= 64:
        raise UserError(f"--workers {workers}: give 1 to 64 processes")
    try:
        keys = KeyRing.from_env()
    except KeysError as e:
        raise UserError(str(e)) from None
    cert = getattr(args, "tls_cert", None) or os.environ.get("ALPHA_TLS_CERT") or None
    key = getattr(args, "tls_key", None) or os.environ.get("ALPHA_TLS_KEY") or None
    if bool(cert) != bool(key):
        raise UserError(
            "TLS needs both a certificate and its private key: --tls-cert and --tls-key "
            "(or ALPHA_TLS_CERT and ALPHA_TLS_KEY)"
        )
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path and not Path(path).is_file():
            raise UserError(f"{flag} {path}: no such file (a PEM file)")
    # the access log: --access-log, else ALPHA_ACCESS_LOG, else the home's logs/access.log when the store is the
    # home's own (a PostgreSQL store's server logs to stderr, for its service manager)
    log = (
        getattr(args, "access_log", None)
        or os.environ.get("ALPHA_ACCESS_LOG")
        or ("-" if os.environ.get("ALPHA_SERVING_URL") else str(home / "logs" / "access.log"))
    )
    log = "" if log == "off" else log
    where = f"{'https' if cert else 'http'}://{args.host}:{args.port}"
    exposed = not _is_loopback(args.host) and not keys.enabled
    if exposed:  # the book, to anyone who can reach the port
        print(
            f"warning: serving on {args.host} (not loopback) without API keys: anyone who can reach port "
            f"{args.port} can read the book; set ALPHA_API_KEYS_FILE (`alpha api-key`) or ALPHA_API_TOKEN",
            file=sys.stderr,
            flush=True,
        )
    auth = keys.describe()
    if keys.enabled:
        auth += f"; operator-only: {', '.join(sorted(OPERATOR_PATHS))}; open: /api/health"
    print(
        f"serving store: {url.rsplit('@', 1)[-1]}\n"
        + (f"dashboard: {where}/   " if dashboard else "")
        + f"API: {where}/api/health   docs: {where}/docs   (Ctrl-C stops)\n"
        + f"auth: {auth}\n"
        + (
            f"TLS: on (certificate {cert})\n"
            if cert
            else "TLS: off (plain HTTP; --tls-cert/--tls-key for HTTPS)\n"
        )
        + f"access log: {'stderr' if log == '-' else log or 'off'}"
        + ("\naccess: OPEN to the network (no API keys)" if exposed else ""),
        flush=True,
    )
    tls = {"ssl_certfile": cert, "ssl_keyfile": key} if cert else {}
    if workers > 1:
        os.environ["ALPHA_SERVING_URL"] = url  # each worker process resolves the same store
        os.environ["ALPHA_ACCESS_LOG"] = log  # and writes the same access log
        serve(None, host=args.host, port=args.port, workers=workers, dashboard=dashboard, **tls)
    else:
        serve(
            create_app(url, dashboard=dashboard, keys=keys, access_log=log),
            host=args.host,
            port=args.port,
            **tls,
        )
    return 0


def cmd_api_key(args) -> int:
    """`alpha api-key --name pm1 --role reader`: mint a key; print it once and its hash line for the keys file."""
    from alpha_assets.serving.security import KeyRing, KeysError, key_line, mint_key

    secret = mint_key()
    try:
        line = key_line(args.name, args.role, secret)
    except KeysError as e:
        raise UserError(str(e)) from None
    if args.append:
        path = Path(args.append)
        try:
            existing = path.read_text() if path.exists() else ""
            names = {k.name for k in KeyRing.parse(existing, str(path))}
        except (OSError, KeysError) as e:
            raise UserError(f"--append {path}: {e}") from None
        if args.name in names:
            raise UserError(
                f"--append {path}: a key named {args.name!r} is already there (one name, one key)"
            )
        with path.open("a") as f:
            f.write(("" if not existing or existing.endswith("\n") else "\n") + line + "\n")
        path.chmod(0o600)
    print(f"key for {args.name} ({args.role}), shown once and stored nowhere: {secret}")
    print(f"its line (name:role:sha256): {line}")
    print(
        f"appended to {args.append}"
        if args.append
        else "add the line to the file ALPHA_API_KEYS_FILE names (or to ALPHA_API_KEYS), then restart the server"
    )
    return 0


def _is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: whatever it resolves to, assume the network can reach it
        return False


def cmd_serve_api(args) -> int:
    return _serve(args, dashboard=False)


def cmd_dashboard(args) -> int:
    return _serve(args, dashboard=True)


def _block_first_session(block: str) -> date:
    from alpha_assets.models.common import block_sessions

    return block_sessions(block)[0]


def model_summary(home: AlphaHome) -> None:
    """Out-of-sample IC (t-stat) of the ensemble and each model against the oracle IC, and the book's net Sharpe."""

    from alpha_assets.lib.backtest.validation import sharpe_ratio
    from resources.lake import DeltaLake

    lake = DeltaLake(home.lake)
    if not lake.exists("reports", "model_report"):
        return
    rep = lake.read("reports", "model_report")
    first, last = rep["first_day"][0], rep["last_day"][0]
    oracle = _oracle_ic(home, first, last)
    print(f"\nout-of-sample IC with the next-day return, {first}..{last} ({rep['n_days'].max()} sessions)")
    if oracle:
        print(f"  {'planted alpha (the whole truth)':44s} IC {oracle['planted_ic']:+.4f}")
        print(
            f"  {'oracle: every delivered channel (alt + prices)':44s} IC {oracle['ic']:+.4f}  "
            f"t {oracle['t_stat']:+.1f}"
        )
        print(
            f"  {'oracle: alt deliveries alone':44s} IC {oracle['alt_ic']:+.4f}  t {oracle['alt_t_stat']:+.1f}"
        )
    for r in rep.sort("name").to_dicts():
        share = f"  ({r['ic'] / oracle['ic']:.0%} of oracle)" if oracle and oracle["ic"] > 0 else ""
        print(f"  {r['name']:44s} IC {r['ic']:+.4f}  t {r['t_stat']:+.1f}{share}")
    summary_file = home.outbox / "reports" / "backtest" / "summary.json"
    if summary_file.exists() and lake.exists("reports", "backtest_pnl"):
        s = json.loads(summary_file.read_text())
        pnl = lake.read("reports", "backtest_pnl").sort("trade_date")
        gross = (pnl["gross_pnl"] / pnl["equity"].shift(1)).drop_nulls().drop_nans()
        gross_sharpe = (
            sharpe_ratio(gross.to_numpy(), periods_per_year=SESSIONS_PER_YEAR)
            if gross.len() > 2
            else float("nan")
        )
        costs = s.get("total_costs", {}).get("all", float("nan")) / s.get("start_equity", float("nan"))
        print(
            f"backtest of the model book, {s['start_date']}..{s['end_date']}: net Sharpe {s['sharpe']:.2f}, "
            f"gross Sharpe {gross_sharpe:.2f} before costs; average daily turnover "
            f"{s['avg_daily_turnover']:.0%}, costs {costs:.1%} of the starting NAV"
        )


def _oracle_ic(home: AlphaHome, start: date, end: date) -> dict | None:
    """The demo world's oracle IC over [start, end] against the same next-day returns the models are scored on
    (ground truth: None outside the demo)."""
    import polars as pl

    from resources.lake import DeltaLake

    path = home.ground_truth / "oracle.parquet"
    lake = DeltaLake(home.lake)
    if not path.exists() or not lake.exists("raw", "prices"):
        return None
    try:
        from alpha_world.oracle import oracle_ic

        px = lake.read("raw", "prices", start, None, columns=["trade_date", "ticker", "close"])
        res = oracle_ic(pl.read_parquet(path), px, start, end)
        return {
            "ic": float(res["oracle_all_z"]["ic"]),
            "t_stat": float(res["oracle_all_z"]["t_stat"]),
            "alt_ic": float(res["oracle_z"]["ic"]),
            "alt_t_stat": float(res["oracle_z"]["t_stat"]),
            "planted_ic": float(res["planted_z"]["ic"]),
        }
    except Exception as e:  # the demo's truth is a bonus: never fail the summary over it
        print(f"(oracle IC unavailable: {e})")
        return None


def summary(home: AlphaHome) -> None:
    db = _lake_sql(home)
    print("\ntables")
    for i in db.table_infos():
        where = f"delta v{i.version}" if i.version is not None else "marts DuckDB"
        print(f"  {i.name:30s} {i.rows:>9,d} rows  {i.first_date}..{i.last_date}  ({where})")
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
    """The alt-data assets' latest error figures against the demo world's truth (from the demo-only truth
    checks' metadata, ``alpha_assets/altdata/truth.py``)."""
    from dagster import AssetCheckKey, DagsterInstance

    from alpha_assets.keys import (
        RAW_CALL_SENTIMENT,
        RAW_FILING_FEATURES,
        RAW_OIL_TANK_LEVELS,
        RAW_PARKING_LOT_COUNTS,
    )

    wanted = {
        (RAW_PARKING_LOT_COUNTS, "parking_count_error"): (
            "truth_count_mae_pct",
            "car count error {:.1f}% of the mean count",
        ),
        (RAW_OIL_TANK_LEVELS, "tank_fill_error"): ("truth_fill_mae", "tank fill MAE {:.4f}"),
        (RAW_CALL_SENTIMENT, "call_sentiment_tracks_tone"): (
            "truth_spearman_call_sentiment",
            "call sentiment vs true tone Spearman {:.2f}",
        ),
        (RAW_FILING_FEATURES, "filing_features_track_risk"): (
            "truth_spearman_risk_factors_negative_terms",
            "filing negative terms vs true risk Spearman {:.2f}",
        ),
    }
    parts = []
    try:
        instance = DagsterInstance.get()
    except Exception:  # no instance configured: nothing to report
        return
    keys = {AssetCheckKey(a, c): v for (a, c), v in wanted.items()}
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys))
    for key, (field, fmt) in keys.items():
        rec = latest.get(key)
        data = (
            rec.event.dagster_event.event_specific_data
            if rec and rec.event and rec.event.dagster_event
            else None
        )
        value = getattr(data, "metadata", {}).get(field) if data is not None else None
        if value is not None and isinstance(getattr(value, "value", None), int | float):
            parts.append(fmt.format(value.value))
    if parts:
        print("alt data vs the world's truth (latest run): " + "; ".join(parts))


# ---------------------------------------------------------------------------------------------- explain
def _range_words(feature: str, lo: float, hi: float, day) -> str:
    from alpha_assets.lib.models.explain import RANK_RANGE

    if feature.endswith("__missing"):
        return "a 0/1 missing-data flag in [0, 1]"
    if (lo, hi) == RANK_RANGE:
        return "a per-day rank in [-0.5, 0.5]"
    return f"observed in [{lo:+.4g}, {hi:+.4g}] on {day}"


def _book_weights(lake, day, alpha) -> dict[str, float] | None:
    """ticker -> target weight of ``day``'s book rebuilt from ``alpha`` (ticker, alpha_score) with the config and
    held book its audit row recorded; None when the day has no book built from models.alpha_scores."""
    import json as _json

    from alpha_assets.lib.portfolio.daily import day_target_weights
    from alpha_assets.portfolio.assets import PortfolioConfig
    from partitions.calendar import shift_sessions

    if not lake.exists("portfolio", "weights_audit"):
        return None
    audit = lake.read("portfolio", "weights_audit", day, day)
    if audit.height == 0:
        return None
    row = audit.row(0, named=True)
    cfg = PortfolioConfig(**_json.loads(row["config"]))
    if cfg.alpha_source != "alpha_scores":
        return None
    prices = lake.read("raw", "prices", shift_sessions(day, -125), day)
    uni = lake.read("raw", "universe", day, day)
    held = _json.loads(row.get("held_book") or "{}")
    w = day_target_weights(
        day, alpha.select("ticker", "alpha_score"), prices, uni, cfg.limits(), cfg.cov_window, held
    )
    return dict(zip(w["ticker"], w["weight"], strict=True))


def cmd_explain(args) -> int:
    """Why TICKER trades the score it trades on DATE: the traded alpha_score as the part carried over from earlier
    sessions plus, per recipe in the book and model with ensemble weight, its features' SHAP values in traded-score
    units; a what-if (--set) answered in traded score, rank and book weight."""
    import difflib

    import polars as pl

    from alpha_assets.definitions import local_resources
    from alpha_assets.lib.features.matrix import feature_columns
    from alpha_assets.lib.models.explain import feature_range, traded_scores
    from alpha_assets.models.common import ModelBook
    from alpha_assets.models.explanations import traded_explanations
    from resources.lake import DeltaLake

    home = _home(args)
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        print(f"error: --date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    lake = DeltaLake(home.lake)
    if not lake.exists("features", "feature_matrix"):
        print(
            "error: no features.feature_matrix yet: run `alpha demo` or `alpha materialize` first",
            file=sys.stderr,
        )
        return 2
    rows = lake.read("features", "feature_matrix", day, day)
    if lake.exists("features", "fused_embeddings"):
        emb = lake.read("features", "fused_embeddings", day, day)
        if emb.height:
            rows = rows.join(emb, on=["trade_date", "ticker"], how="left")
    if rows.height == 0:
        print(f"error: no feature rows on {day} (not a session, or not materialized)", file=sys.stderr)
        return 2
    ticker = args.ticker.upper()
    if ticker not in rows["ticker"].to_list():
        close = difflib.get_close_matches(ticker, rows["ticker"].to_list(), n=5)
        print(
            f"error: {ticker} has no row on {day}" + (f"; did you mean {', '.join(close)}?" if close else ""),
            file=sys.stderr,
        )
        return 2
    feats = [c for c in feature_columns(rows) if c != "fusion_version"]
    changes: dict[str, float] = {}
    for item in args.set or []:
        name, _, value = item.partition("=")
        name = name.strip()
        try:
            changes[name] = float(value)
        except ValueError:
            print(f"error: --set {item!r}: expected feature=number", file=sys.stderr)
            return 2
        if name not in feats:
            hint = difflib.get_close_matches(name, feats, n=3)
            print(
                f"error: --set {item}: no feature {name!r} on {day}"
                + (f"; did you mean {', '.join(hint)}?" if hint else ""),
                file=sys.stderr,
            )
            return 2
        lo, hi = feature_range(name, rows[name].cast(pl.Float64).to_numpy())
        if not lo <= changes[name] <= hi:
            print(f"error: --set {item}: {name} is {_range_words(name, lo, hi, day)}", file=sys.stderr)
            return 2
    book = ModelBook(local_resources(home)["model_registry"])
    try:
        terms, skipped, explained = traded_explanations(lake, book, day, rows, [ticker])
    except Exception as e:  # dagster.Failure and the decomposition's own check: one line, no traceback
        print(f"error: {getattr(e, 'description', None) or e}", file=sys.stderr)
        return 2
    if terms.height == 0:
        print(f"error: {ticker} has no traded score on {day} (models.alpha_scores)", file=sys.stderr)
        return 2
    scores = lake.read("models", "alpha_scores", day, day)
    me = scores.filter(pl.col("ticker") == ticker).row(0, named=True)
    alpha, n = float(me["alpha_score"]), scores.height
    rank = int((scores["alpha_score"] > alpha).sum()) + 1
    weights = _book_weights(lake, day, scores)
    stored = (
        lake.read("portfolio", "target_weights", day, day).filter(pl.col("ticker") == ticker)["weight"]
        if lake.exists("portfolio", "target_weights")
        else pl.Series([], dtype=pl.Float64)
    )
    in_book = f"; book weight {stored[0]:+.2%}" if stored.len() else "; not in the book"
    print(f"{ticker} on {day}: traded alpha_score {alpha:+.4f} (rank {rank} of {n} from the top{in_book})")
    carried = float(terms.filter(pl.col("term") == "carried")["contribution"][0])
    if float(me["smoothing_weight"]) < 1.0:  # a smoothed score (score_halflife_sessions > 0)
        share = abs(carried) / max(abs(carried) + abs(alpha - carried), 1e-12)
        print(
            f"  {carried:+.4f}  carried from earlier sessions by the exponential average ({share:.0%} of the "
            f"score's parts; today's blend weighs {float(me['smoothing_weight']):.2f})"
        )
        print(f"  {alpha - carried:+.4f}  today's blend of the recipes' ensembles, made of:")
    else:
        print(
            "  today's blend of the recipes' ensembles (no smoothing: nothing carried from earlier days), made of:"
        )
    top = args.top
    for recipe in terms.filter(pl.col("recipe").is_not_null())["recipe"].unique(maintain_order=True):
        r = terms.filter(pl.col("recipe") == recipe)
        role = "champion" if recipe == me["champion_recipe"] else "challenger"
        book_share = (
            1 - float(me["challenger_share"] or 0) if role == "champion" else float(me["challenger_share"])
        )
        print(f"    {recipe} ({role}, {book_share:.0%} of the blend): {r['contribution'].sum():+.4f}")
        for kind in r.filter(pl.col("model").is_not_null())["model"].unique(maintain_order=True):
            k = r.filter(pl.col("model") == kind)
            m = explained[(recipe, kind)]
            print(f"      {kind} v{m.version} (weight {k['weight'][0]:.2f}): {k['contribution'].sum():+.4f}")
            f = k.filter(pl.col("term") == "feature").sort(pl.col("contribution").abs(), descending=True)
            for t in f.head(top).to_dicts():
                value = "n/a" if t["value"] is None else f"{t['value']:+.3f}"
                fill = "  [filled: no data]" if t["filled"] else ""
                print(
                    f"        {t['contribution']:+.5f}  {t['feature']:40s} {t['source']:26s} value {value}{fill}"
                )
            rest = (
                k.filter(pl.col("term") != "feature")["contribution"].sum()
                + f.slice(top)["contribution"].sum()
            )
            print(
                f"        {rest:+.5f}  (the model's base rank and its other {max(f.height - top, 0)} features)"
            )
        rerank = r.filter(pl.col("term") == "ensemble_rerank")["contribution"].sum()
        print(f"      {rerank:+.4f}  (the ensemble ranked across names)")
    if skipped:
        print(f"  not explained, zero ensemble weight on {day}: {', '.join(skipped)}")
    print(f"  sum of the parts {terms['contribution'].sum():+.6f} = traded alpha_score {alpha:+.6f}")
    if changes:
        preds = lake.read("models", "predictions", day, day)
        changed = rows.filter(pl.col("ticker") == ticker).with_columns(
            *[pl.lit(v, dtype=pl.Float64).cast(rows.schema[c]).alias(c) for c, v in changes.items()]
        )
        new_scores = {
            (recipe, kind, ticker): float(m.learner.predict(m.inputs(changed))[0])
            for (recipe, kind), m in explained.items()
        }
        after = traded_scores(scores, preds, new_scores)
        new_alpha = float(after.filter(pl.col("ticker") == ticker)["alpha_score"][0])
        new_rank = int((after["alpha_score"] > new_alpha).sum()) + 1
        desc = ", ".join(f"{c}={v:+g}" for c, v in changes.items())
        print(
            f"\n  what-if {desc}: traded alpha_score {alpha:+.4f} -> {new_alpha:+.4f}, rank {rank} -> {new_rank} "
            f"of {n}"
        )
        try:
            w_after = _book_weights(lake, day, after)
        except (
            Exception
        ) as e:  # the book's limits may refuse the changed scores: say so, keep the answer above
            print(f"  book weight: not recomputed ({str(e).splitlines()[0][:120]})")
            return 0
        if weights is None or w_after is None:
            print(
                "  book weight: no book from models.alpha_scores on this day (materialize the daily_book job)"
            )
        else:
            before_w, after_w = weights.get(ticker, 0.0), w_after.get(ticker, 0.0)
            print(
                f"  book weight {before_w:+.2%} -> {after_w:+.2%} ({(after_w - before_w) * 100:+.2f} points; the day's "
                "book rebuilt with its recorded limits and held names, the other names' scores unchanged)"
            )
    return 0


# ----------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alpha", description="The alpha asset platform")
    p.add_argument("--home", help="ALPHA_HOME (default $ALPHA_HOME or ./.alpha)")
    sub = p.add_subparsers(dest="cmd", required=True)

    def world_args(sp):
        # a year to train on and a year out of sample, sized so `make demo` fits 10 minutes on 2 cores
        sp.add_argument("--tickers", type=int, default=100)
        sp.add_argument("--days", type=int, default=504)
        sp.add_argument(
            "--start", help="first session (default: the world ends on the last completed session)"
        )
        sp.add_argument("--seed", type=int, default=7)
        sp.add_argument(
            "--signal-strength",
            type=float,
            default=0.1,
            dest="signal_strength",
            help="IC of the full planted alpha, about (0: a null world)",
        )
        sp.add_argument(
            "--regime-break",
            dest="regime_break",
            metavar="DATE",
            help="from this session on the planted alpha is flipped or removed",
        )
        sp.add_argument("--regime-mode", dest="regime_mode", choices=["flip", "remove"], default="flip")

    w = sub.add_parser("world", help="the demo world simulator")
    wsub = w.add_subparsers(dest="world_cmd", required=True)
    g = wsub.add_parser("generate", help="write a seeded world's vendor files into DIR/landing")
    g.add_argument("--out", required=True)
    world_args(g)
    g.set_defaults(fn=cmd_world_generate)

    g.add_argument(
        "--no-alt-data",
        dest="alt_data",
        action="store_false",
        help="prices and reference data only (no imagery, transcripts, filings, web site)",
    )
    ss = wsub.add_parser("serve-site", help="serve the world's vendor web site on 127.0.0.1 (for the UI)")
    ss.add_argument("--port", type=int, default=8765)
    ss.set_defaults(fn=cmd_serve_site)

    tr = sub.add_parser(
        "train",
        help="train (or reuse) the car detector (default) or, with --alpha, the alpha models per block",
    )
    tr.add_argument(
        "--weights", help="use these YOLO weights instead of training (e.g. a pretrained yolov8n.pt)"
    )
    tr.add_argument(
        "--alpha",
        action="store_true",
        help="train the alpha models (the learners; the fusion encoder only when configured) for every trainable "
        "quarterly block",
    )
    tr.add_argument("--budget", choices=["seed", "demo"], help="training budget for --alpha (default: seed)")
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
    m.add_argument(
        "--job",
        default="main",
        choices=["main", "daily_data", "daily_book", "explain", "serving"],
        help="main: every daily asset; daily_data: vendor files to the feature matrix; daily_book: "
        "scores, books, risk, orders, monitoring (needs trained blocks); explain: SHAP and LIME",
    )
    m.add_argument(
        "--executor",
        choices=["in_process", "dask"],
        default="in_process",
        help="in_process: every step in this process (default); dask: each step a task on a Dask "
        "cluster (dagster-dask)",
    )
    m.add_argument(
        "--dask-address",
        dest="dask_address",
        metavar="tcp://HOST:PORT",
        help="the Dask scheduler to run on (default: a local cluster of 2 workers)",
    )
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

    ex = sub.add_parser(
        "explain",
        help="why a name trades its score: the traded alpha_score split by model and feature (and the "
        "part carried from earlier days), and a what-if in score, rank and book weight",
    )
    ex.add_argument("ticker")
    ex.add_argument("--date", required=True, help="the trading day, YYYY-MM-DD")
    ex.add_argument(
        "--set", action="append", metavar="FEATURE=VALUE", help="what-if: set a feature (repeatable)"
    )
    ex.add_argument("--top", type=int, default=8, help="features shown per model")
    ex.set_defaults(fn=cmd_explain)

    t = sub.add_parser("tables", help="list Delta tables with row counts and latest date")
    t.add_argument("--format", choices=["table", "csv", "json"], default="table")
    t.set_defaults(fn=cmd_tables)

    api = sub.add_parser("serve-api", help="the read-only REST API over the serving store (docs at /docs)")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    api.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (default 1; 2 on a 2-core host serves concurrent clients in parallel)",
    )
    api.set_defaults(fn=cmd_serve_api)
    dash = sub.add_parser("dashboard", help="the fund's dashboard (and the API) on 127.0.0.1")
    dash.add_argument("--port", type=int, default=8050)
    dash.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    dash.set_defaults(fn=cmd_dashboard, host="127.0.0.1")
    for sp in (api, dash):
        sp.add_argument(
            "--tls-cert",
            dest="tls_cert",
            metavar="PEM",
            help="serve HTTPS with this certificate (default $ALPHA_TLS_CERT)",
        )
        sp.add_argument(
            "--tls-key",
            dest="tls_key",
            metavar="PEM",
            help="the certificate's private key (default $ALPHA_TLS_KEY)",
        )
        sp.add_argument(
            "--access-log",
            dest="access_log",
            metavar="FILE",
            help="one JSON line per request: a file, - for stderr, off (default $ALPHA_ACCESS_LOG, "
            "else ALPHA_HOME/logs/access.log, or stderr with ALPHA_SERVING_URL)",
        )
    ak = sub.add_parser("api-key", help="mint an API key for serve-api/dashboard and print its hash line")
    ak.add_argument("--name", required=True, help="who holds it (shown in the access log), e.g. pm1")
    ak.add_argument(
        "--role",
        choices=["reader", "operator"],
        default="reader",
        help="reader: pages and read routes; operator: also the pipeline's run status",
    )
    ak.add_argument("--append", metavar="FILE", help="also append the line to this keys file (made 0600)")
    ak.set_defaults(fn=cmd_api_key)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    # A user's terminal gets no third-party warnings; in-process under pytest the suite's filters apply (warnings
    # our code causes are errors there: pyproject.toml).
    if "pytest" not in sys.modules:
        warnings.filterwarnings("ignore")
    args = build_parser().parse_args(argv)
    try:
        from alpha_assets.logging_setup import configure_logging  # ALPHA_LOG_FORMAT=json: JSON log lines

        try:
            configure_logging()
        except ValueError as e:
            raise UserError(str(e)) from None
        return int(args.fn(args) or 0)
    except UserError as e:
        print(f"alpha {args.cmd}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nalpha {args.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
