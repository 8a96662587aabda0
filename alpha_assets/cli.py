"""The ``alpha`` command: demo, world (generate, serve-site), train, materialize, backtest, sql, tables,
serve-api, dashboard, api-key.

The parser and the commands' printing live here; what a command does lives in the application layer
(``alpha_assets.app``: runs, the demo's lanes, the printed summaries), which the tests and benchmarks call too.
Only the CLI and the application layer (and the tests) import the demo world (``alpha_world``).
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

from alpha_assets.app.demo import (
    MIN_DEMO_SESSIONS,
    ImageryLane,
    data_layer_in_two_lanes,
    require_world,
    serve_vendor_site,
)
from alpha_assets.app.explain import explain_traded
from alpha_assets.app.report import lake_sql, model_summary, summary
from alpha_assets.app.runs import (
    UserError,
    block_first_session,
    budget_run_config,
    materialize,
    republish,
    run_backtest,
    run_job,
    train_alpha,
    train_models,
)
from alpha_assets.home import AlphaHome
from alpha_assets.lib.settings import PURGE_SESSIONS, SESSIONS_PER_YEAR

REPO_ROOT = Path(__file__).resolve().parent.parent


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


def _default_world_start(days: int) -> date:
    """A world that ends on the last completed session, like a live feed."""
    from partitions.calendar import sessions_between

    today = datetime.now(timezone.utc).date()
    sess = sessions_between(today - timedelta(days=int(days * 1.6) + 30), today - timedelta(days=1))
    return sess[-days]


# --------------------------------------------------------------------------------------------- world


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


def cmd_train(args) -> int:
    home = _home(args)
    if args.alpha:
        run_config = budget_run_config(args.budget) if args.budget else None
        return 0 if train_alpha(home, run_config=run_config)["success"] else 1
    cfg = (
        {"ops": {"models__car_detector": {"config": {"weights_path": args.weights}}}}
        if args.weights
        else None
    )
    return 0 if train_models(home, run_config=cfg)["success"] else 1


# ----------------------------------------------------------------------------------------- materialize


def parse_day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{flag} {value!r} is not a date: use YYYY-MM-DD (e.g. 2026-11-30)") from None


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
    db = lake_sql(home)
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
    infos = lake_sql(home).table_infos()
    df = pl.DataFrame([i.__dict__ for i in infos]) if infos else pl.DataFrame()
    _print_frame(df, args.format)
    return 0


# ----------------------------------------------------------------------------------------------- demo


def cmd_demo(args) -> int:
    require_world()
    if args.days < MIN_DEMO_SESSIONS:
        print(
            f"alpha demo: --days {args.days} is too short for the model layer: the models train on a year "
            f"({SESSIONS_PER_YEAR} sessions + a {PURGE_SESSIONS}-session purge) before each quarter they score, "
            f"so the demo needs at least "
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
    # budgets that fit the demo's 10 minutes on 2 cores, unless the deployment's environment names one
    budget = os.environ.get("ALPHA_MODEL_BUDGET") or "demo"
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
    trained = train_alpha(home, run_config=budget_run_config(budget))
    t = stage("alpha models", t)
    if trained["blocks"] and trained["success"]:
        first = block_first_session(trained["blocks"][0])
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


# ---------------------------------------------------------------------------------------------- explain
def cmd_explain(args) -> int:
    """Why TICKER trades the score it trades on DATE: the traded alpha_score as the part carried over from earlier
    sessions plus, per recipe in the book and model with ensemble weight, its features' SHAP values in traded-score
    units; a what-if (--set) answered in traded score, rank and book weight."""
    import polars as pl

    home = _home(args)
    day = parse_day(args.date, "--date")
    ex = explain_traded(home, args.ticker, day, args.set)
    ticker, alpha, rank, n, me, terms = ex.ticker, ex.alpha, ex.rank, ex.names, ex.row, ex.terms
    in_book = (
        f"; book weight {ex.stored_weight:+.2%}" if ex.stored_weight is not None else "; not in the book"
    )
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
            m = ex.explained[(recipe, kind)]
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
    if ex.skipped:
        print(f"  not explained, zero ensemble weight on {day}: {', '.join(ex.skipped)}")
    print(f"  sum of the parts {terms['contribution'].sum():+.6f} = traded alpha_score {alpha:+.6f}")
    w = ex.what_if
    if w is None:
        return 0
    desc = ", ".join(f"{c}={v:+g}" for c, v in w.changes.items())
    print(
        f"\n  what-if {desc}: traded alpha_score {alpha:+.4f} -> {w.alpha:+.4f}, rank {rank} -> {w.rank} of {n}"
    )
    if w.book_error is not None:
        print(f"  book weight: not recomputed ({w.book_error})")
    elif w.weight_before is None or w.weight_after is None:
        print("  book weight: no book from models.alpha_scores on this day (materialize the daily_book job)")
    else:
        print(
            f"  book weight {w.weight_before:+.2%} -> {w.weight_after:+.2%} "
            f"({(w.weight_after - w.weight_before) * 100:+.2f} points; the day's book rebuilt with its recorded "
            "limits and held names, the other names' scores unchanged)"
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
