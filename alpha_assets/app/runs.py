"""Running the graph for a user: materialize a range as one run, the main job in order, the stale dependents
after a rewrite, training blocks, the backtest, named jobs; with the progress lines and one-line errors
(``UserError``) the CLI prints. The CLI parses arguments and calls these; the tests and benchmarks call them too."""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import date, datetime, timezone

from alpha_assets.home import AlphaHome


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


def cli_tags() -> dict[str, str]:
    """Tags of every run the CLI executes in its own process: who launched it, and on which host (the local run
    monitoring checks the run's process only on the host that runs it: alpha_assets/run_launcher.py)."""
    from alpha_assets.run_launcher import HOST_TAG, this_host

    return {"alpha/launched_by": "alpha-cli", HOST_TAG: this_host()}


def execute(
    job,
    instance,
    run_config: dict | None = None,
    *,
    quiet: bool = True,
    run_id: str | None = None,
    tags: dict | None = None,
    partition_key: str | None = None,
):
    """Run ``job`` in this process on ``instance`` with the CLI's tags and console log level (never raising on a
    failed step: the result says so), printing each step as it finishes unless ``quiet``."""
    run_id = run_id or make_run_id()
    with progress(instance, run_id, quiet):
        return job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_id=run_id,
            run_config=_run_config(run_config),
            tags=tags or cli_tags(),
            partition_key=partition_key,
        )


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
    result = execute(job, instance, run_config, quiet=quiet)
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


# The ops of train_alpha's job that take a model budget (models.training.BlockTrainingConfig.budget).
TRAINING_OPS = ("models__fusion_encoder", "models__alpha_models")


def budget_run_config(budget: str) -> dict:
    """The run config that trains at ``budget`` ("seed": the design's hyper-parameters; "demo": budgets that fit 2
    cores): passed to the training ops, not set in the environment (which stays the deployment's default)."""
    return {"ops": {op: {"config": {"budget": budget}} for op in TRAINING_OPS}}


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
        res = execute(job, instance, run_config, partition_key=block)
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
        result = execute(job, instance, run_config, quiet=quiet, run_id=run_id, tags=tags)
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
    result = execute(job, instance or DagsterInstance.get(), cfg)
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


def run_job(home: AlphaHome, job_name: str, instance=None, quiet: bool = False) -> dict:
    """Run an unpartitioned job (e.g. model_report) on the local instance."""
    from dagster import DagsterInstance

    from alpha_assets.definitions import build_definitions, local_resources

    job = build_definitions(local_resources(home)).resolve_job_def(job_name)
    t0 = time.perf_counter()
    res = execute(job, instance or DagsterInstance.get())
    out = {"success": res.success, "seconds": time.perf_counter() - t0, "run_id": res.run_id}
    if not quiet and not res.success:
        print(f"{job_name} FAILED after {out['seconds']:.0f}s (run {res.run_id[:8]}; see its logs in the UI)")
    return out


def block_first_session(block: str) -> date:
    from alpha_assets.models.common import block_sessions

    return block_sessions(block)[0]
