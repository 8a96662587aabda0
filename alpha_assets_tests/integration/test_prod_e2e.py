"""The production deployment end to end on loopback (ALPHA_DEPLOYMENT=prod), the way a fund goes live.

Real services, each a subprocess killed by PID at the end: PostgreSQL (ALPHA_TEST_PG_URL; two databases of our
own, dropped after) holds the Dagster instance and MLflow's tracking store; ``moto_server`` is the S3 endpoint for
the Delta lake, the landing zone and MLflow's artifacts; ``mlflow server`` proxies artifacts to S3; the real
``dagster-daemon`` runs the run queue (QueuedRunCoordinator, DefaultRunLauncher) and the sensors; one code server
(``dagster code-server start``, the user-code deployment of deploy/k8s) serves the code location to the daemon,
the operator's CLI and the run workers.

1. History first: a prices-only world long enough to train the blocks the automation may score (20 names x about
   a year and a quarter, ending yesterday); its vendor files go into the S3 landing prefix except the last two
   sessions'. With the sensors paused (as an operator onboarding history would), ``dagster job launch`` queues on
   the instance one single-run backfill of ``daily_data``'s price path over the history (no alt vendor), then
   ``train_alpha`` for each block (the models logged through the tracking server, artifacts in S3), then
   ``daily_book`` over the blocks' days.
2. Live: the sensors are switched on (the history's files launch nothing: their partitions were built from those
   contents) and the last two sessions' files land in S3. The landing sensors launch the ingestion runs, and the
   automation sensor carries the days through features, the feature matrix (price features alone: no alt vendor),
   embeddings and predictions from the registered models, alpha scores, the book, its risk report, the orders and
   monitoring, without a command.
3. Checks: every table of that chain has rows for the two sessions in S3 (read with deltalake), the books are
   non-zero and dollar-neutral, the scores name the registered model versions of the days' block, and every run in
   PostgreSQL succeeded. Also: a model logged through the prod ``ModelRegistry`` round-trips through the tracking
   server and S3, and two concurrent writers to one S3 Delta table both land (delta-rs 1.x commits with S3
   conditional writes; moto refuses a second If-None-Match put of the same key, so a lost commit would show).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from alpha_assets_tests.ports import free_port

pytestmark = [pytest.mark.service, pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("ALPHA_TEST_PG_URL")
PORTS = (18600, 18700)  # this test's loopback port range
TICKERS = 20  # the fewest a long/short book and a cross-sectional IC accept (alpha demo's minimum)
# After the live days: how long a run a sensor launched late may take to finish before the run count (a run is
# queued behind at most 2 others here; a day's chain runs in 1-3 min).
SETTLE_SECONDS = 300
RUNNING_STATUSES = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
LIVE_SESSIONS = 2  # the sessions delivered after the history, carried through by the daemon alone
# Sessions of history before the first block the automation may score: a block trains on a year + the purge
# (257 sessions) and accepts 90% of it (alpha_assets.models.training.MIN_HISTORY_SHARE).
HISTORY_BEFORE_BLOCK = 240
AWS = {
    "AWS_ACCESS_KEY_ID": "alpha-test",
    "AWS_SECRET_ACCESS_KEY": "alpha-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
QUIET_SECONDS = 75  # no new run for this long (2.5 ticks of the 30-s automation sensor): the graph is settled
PHASE_TIMEOUT = 600  # per phase (history, training, book history, live days): a loaded machine is slow
# Every table of the daily graph from the vendor files to the orders and monitoring, for the live sessions.
CHAIN = [
    ("raw", "universe"),
    ("raw", "prices"),
    ("features", "price_features"),
    ("features", "labels"),
    ("features", "alt_features"),
    ("features", "feature_matrix"),
    ("features", "fused_embeddings"),
    ("models", "predictions"),
    ("models", "alpha_scores"),
    ("portfolio", "target_weights"),
    ("portfolio", "weights_audit"),
    ("risk", "risk_report"),
    ("portfolio", "orders"),
    ("monitoring", "model_health"),
    ("monitoring", "feature_drift"),
]
# daily_data's ops a fund without alt-data vendors backfills: the price path to the feature matrix (the alt vendors'
# ops would materialize empty tables, one event per partition each)
PRICE_PATH = [
    "raw__universe",
    "prices",
    "features__price_features",
    "features__labels",
    "features__alt_features",
    "features__feature_matrix",
]
NO_ROWS = {("features", "alt_features")}  # no alt vendor: materialized, empty but typed
# Pause or resume every sensor of the code location on the instance (through the code server).
SENSORS = """
import json, sys
from dagster import DagsterInstance
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

done = []
with DagsterInstance.get() as instance, WorkspaceProcessContext(instance, WorkspaceFileTarget([sys.argv[2]])) as ws:
    location = ws.create_request_context().get_code_location("alpha_assets")
    for repo in location.get_repositories().values():
        for s in repo.get_sensors():
            if sys.argv[1] == "stop":
                instance.stop_sensor(s.get_remote_origin_id(), s.selector_id, s)
            else:
                instance.start_sensor(s)
            done.append(s.name)
# a file, not stdout: a library's log line on stdout cannot garble the list
with open(sys.argv[3], "w") as f:
    json.dump(done, f)
"""


def _free_port() -> int:
    return free_port(range(*PORTS), shuffle=True)


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(
        f"{proc.args[0]} did not listen on {port} within {timeout} s: {log.read_text()[-2000:]}"
    )


class Services:
    """Subprocesses started in their own session, stopped by PID (and their children by process group)."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict, cwd: Path) -> tuple[subprocess.Popen, Path]:
        log = self.logs / f"{name}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                args, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc, log

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def pg_databases():
    if not PG_URL:
        pytest.skip("ALPHA_TEST_PG_URL not set (.ci/run starts PostgreSQL and sets it)")
    import sqlalchemy as sa

    suffix = uuid.uuid4().hex[:8]
    names = {"dagster": f"alpha_prod_dagster_{suffix}", "mlflow": f"alpha_prod_mlflow_{suffix}"}
    url = sa.engine.make_url(PG_URL).set(drivername="postgresql+psycopg2")
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for db in names.values():
            c.execute(sa.text(f'CREATE DATABASE "{db}"'))
    try:
        yield url, {k: url.set(database=v) for k, v in names.items()}
    finally:
        with admin.connect() as c:
            for db in names.values():
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def _instance_yaml(url) -> str:
    # deploy/prod/dagster.yaml's storage, with the default run launcher (runs as local processes) and the queue.
    return (
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      username: {url.username}\n      password: {{env: DAGSTER_PG_PASSWORD}}\n"
        f"      hostname: {url.host}\n      port: {url.port or 5432}\n      db_name: {url.database}\n"
        "      scheme: postgresql+psycopg2\n"
        "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n"
        "  config:\n    max_concurrent_runs: 2\n"
        "run_launcher:\n  module: dagster.core.launcher\n  class: DefaultRunLauncher\n"
        "telemetry:\n  enabled: false\n"
    )


def _file_date(p: Path) -> date | None:
    m = re.search(r"\d{4}-\d{2}-\d{2}", p.name)
    return date.fromisoformat(m.group()) if m else None


def _upload_landing(s3, bucket: str, landing: Path, keep) -> int:
    """Upload the vendor files whose date (undated ones: None) ``keep`` accepts; returns how many."""
    n = 0
    for p in sorted(landing.rglob("*")):
        if p.is_file() and keep(_file_date(p)):
            s3.upload_file(str(p), bucket, f"landing/{p.relative_to(landing).as_posix()}")
            n += 1
    return n


def _recent_from(today: date) -> date:
    """The first day of the automation's window for missing partitions (alpha_assets.automation.RECENT), and a
    few days' slack."""
    from alpha_assets.automation import RECENT

    return today - RECENT - timedelta(days=5)


def _world_days(today: date) -> int:
    """Sessions the world needs so that every block holding a session the automation may fill (its recent window)
    is trainable: HISTORY_BEFORE_BLOCK sessions before the first of them, through yesterday."""
    from partitions import block_key
    from partitions.calendar import sessions_between, shift_sessions

    last = sessions_between(today - timedelta(days=10), today - timedelta(days=1))[-1]
    recent = sessions_between(_recent_from(today), last)
    first_block = date.fromisoformat(min(block_key(d) for d in recent))
    first = sessions_between(first_block, last)[0]
    return len(sessions_between(shift_sessions(first, -HISTORY_BEFORE_BLOCK), last))


def _launch(job: str, tags: dict, env: dict, workspace: Path, ops: list[str] | None = None) -> str:
    """Queue a run of ``job`` (only ``ops``, when given) on the prod instance the way an operator does
    (``dagster job launch``)."""
    run_id = str(uuid.uuid4())
    out = subprocess.run(
        [
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            str(workspace),
            "-j",
            job,
            "--run-id",
            run_id,
            "--tags",
            json.dumps({**tags, "alpha/launched_by": "e2e-operator"}),
            *(["-o", ",".join(ops)] if ops else []),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=PHASE_TIMEOUT,
    )
    assert out.returncode == 0, f"dagster job launch -j {job}: {out.stderr[-3000:]}"
    return run_id


def _range_tags(start: date, end: date) -> dict:
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }


def _await_runs(instance, run_ids: list[str], what: str, daemon, daemon_log: Path) -> float:
    """Wait until the runs finish; fail with their errors unless every one succeeded. Returns the seconds."""
    from dagster import DagsterRunStatus

    t0 = time.monotonic()
    while True:
        runs = [instance.get_run_by_id(r) for r in run_ids]
        if all(r is not None and r.is_finished for r in runs):
            break
        if daemon.poll() is not None or time.monotonic() - t0 > PHASE_TIMEOUT:
            states = {r.run_id[:8]: r.status.value for r in runs if r}
            pytest.fail(
                f"{what}: runs not finished within {PHASE_TIMEOUT} s (daemon exit {daemon.poll()}): "
                f"{states}\n{_failures(instance)}\ndaemon log tail:\n{daemon_log.read_text()[-3000:]}"
            )
        time.sleep(2)
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), f"{what}: {_failures(instance)}"
    return time.monotonic() - t0


def _sensors(action: str, env: dict, workspace: Path) -> list[str]:
    names = workspace.parent / f"sensors_{action}.json"
    out = subprocess.run(
        [sys.executable, "-c", SENSORS, action, str(workspace), str(names)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=PHASE_TIMEOUT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(names.read_text())


def _concurrent_writers(lake_root: str, storage: dict, env: dict, tmp: Path) -> None:
    """Two processes write disjoint days into one new S3 Delta table at the same moment: both commits land."""
    code = (
        "import json, sys, datetime as dt, polars as pl\n"
        "from resources.lake import DeltaLake\n"
        "lake = DeltaLake(sys.argv[1], json.loads(sys.argv[2]))\n"
        "d = dt.date.fromisoformat(sys.argv[3])\n"
        "lake.write_window('raw', 'two_writers', pl.DataFrame({'trade_date': [d] * 3, 'x': [1.0, 2.0, 3.0]}), d, d)\n"
    )
    from resources.lake import DeltaLake

    lake = DeltaLake(lake_root, storage)
    import polars as pl

    first = date(2024, 1, 2)
    lake.write_window("raw", "two_writers", pl.DataFrame({"trade_date": [first], "x": [0.0]}), first, first)
    days = [date(2024, 1, 3), date(2024, 1, 4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, lake_root, json.dumps(storage), d.isoformat()],
            env=env,
            cwd=tmp,
            stderr=subprocess.PIPE,
        )
        for d in days
    ]
    errs = [p.communicate(timeout=120)[1].decode()[-1500:] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    table = lake.read("raw", "two_writers")
    assert sorted(table["trade_date"].unique().to_list()) == [first, *days]
    assert table.height == 7 and lake.version("raw", "two_writers") == 2  # two commits after the first


def test_prod_deployment_end_to_end_on_loopback(tmp_path, pg_databases):
    import boto3
    import polars as pl
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus

    server_url, dbs = pg_databases
    logs = tmp_path / "logs"
    logs.mkdir()
    services = Services(logs)
    timings: dict[str, float] = {}
    try:
        # --- a prices-only world ending yesterday, long enough to train the blocks the automation may score
        world = tmp_path / "world"
        today = datetime.now(timezone.utc).date()
        days = _world_days(today)
        out = subprocess.run(
            [
                str(BIN / "alpha"),
                "world",
                "generate",
                "--out",
                str(world),
                "--tickers",
                str(TICKERS),
                "--days",
                str(days),
                "--no-alt-data",
                "--seed",
                "11",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        # the sessions with a price delivery (provider A misses a few planted days; B serves them)
        sessions = sorted(
            {
                d
                for v in ("prices_a", "prices_b")
                for p in (world / "landing" / v).iterdir()
                if (d := _file_date(p))
            }
        )
        history, live = sessions[:-LIVE_SESSIONS], sessions[-LIVE_SESSIONS:]
        start = json.loads((world / "partitions.json").read_text())["start"]

        # --- S3 on loopback; the history's vendor files in the landing prefix
        s3_port = _free_port()
        endpoint = f"http://127.0.0.1:{s3_port}"
        base_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **AWS}
        moto, moto_log = services.start(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
            base_env,
            tmp_path,
        )
        _wait_port(s3_port, moto, moto_log)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
        )
        for bucket in ("alpha-lake", "alpha-landing", "alpha-mlflow"):
            s3.create_bucket(Bucket=bucket)
        uploaded = _upload_landing(s3, "alpha-landing", world / "landing", lambda d: d is None or d < live[0])
        assert uploaded >= 2 * len(history)  # A, B and the universe per session, less the planted gaps

        # --- MLflow tracking server: PostgreSQL backend, artifacts proxied to S3
        ml_port = _free_port()
        ml_env = {**base_env, "MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL": endpoint}
        mlflow, ml_log = services.start(
            "mlflow",
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                dbs["mlflow"].render_as_string(hide_password=False),
                "--artifacts-destination",
                "s3://alpha-mlflow/artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(ml_port),
                "--workers",
                "1",
            ],
            ml_env,
            tmp_path,
        )

        # --- the Dagster instance on PostgreSQL, and the prod environment (no secret in any file)
        dagster_home = tmp_path / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(_instance_yaml(dbs["dagster"]))
        storage = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
        prod_env = {
            **base_env,
            "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_PG_PASSWORD": server_url.password or "",
            "ALPHA_DEPLOYMENT": "prod",
            "ALPHA_PARTITIONS_START": start,
            "ALPHA_LAKE_ROOT": "s3://alpha-lake/lake",
            "ALPHA_LAKE_STORAGE_OPTIONS": json.dumps(storage),
            "ALPHA_LANDING_BUCKET": "alpha-landing",
            "AWS_ENDPOINT_URL": endpoint,  # boto3 (landing) and delta-rs read it; real AWS leaves it unset
            "MLFLOW_S3_ENDPOINT_URL": endpoint,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ml_port}",
            "ALPHA_MLFLOW_ARTIFACT_ROOT": "",  # the server's proxied artifact store
            "ALPHA_MODELS_DIR": str(tmp_path / "models_cache"),
            "ALPHA_OUTBOX_DIR": str(tmp_path / "outbox"),
            "ALPHA_SENTIMENT_MODEL_DIR": "",
            "ALPHA_WEB_VENDOR_URL": "",
            "ALPHA_WEB_RAW_DIR": str(tmp_path / "web_raw"),
            "ALPHA_MODEL_BUDGET": "demo",  # the training budget that fits 2 cores
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
            "PYTHONWARNINGS": "ignore",
        }
        lake_root = prod_env["ALPHA_LAKE_ROOT"]
        # the code location served once, as a user-code deployment: the daemon, the operator's CLI and the run
        # workers (children of the code server under the DefaultRunLauncher) all use it
        code_port = _free_port()
        code_server, code_log = services.start(
            "code_server",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                "alpha_assets.definitions",
                "--location-name",
                "alpha_assets",
                "-h",
                "127.0.0.1",
                "-p",
                str(code_port),
            ],
            prod_env,
            REPO,
        )
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {code_port}\n      location_name: alpha_assets\n"
        )
        # This process has no AWS variables: its own reads carry the (dummy) keys explicitly.
        storage_here = {
            **storage,
            "AWS_ACCESS_KEY_ID": AWS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": AWS["AWS_SECRET_ACCESS_KEY"],
            "AWS_REGION": AWS["AWS_REGION"],
        }

        # --- safe concurrent Delta writes on S3 (before the daemon: a quiet machine makes the race tighter)
        refused = None
        s3.put_object(Bucket="alpha-lake", Key="probe/00000.json", Body=b"{}", IfNoneMatch="*")
        try:
            s3.put_object(Bucket="alpha-lake", Key="probe/00000.json", Body=b"{}", IfNoneMatch="*")
        except s3.exceptions.ClientError as e:
            refused = e.response["Error"]["Code"]
        assert refused == "PreconditionFailed"  # the endpoint honours conditional writes, as S3 does
        _concurrent_writers(lake_root, storage_here, prod_env, tmp_path)

        # --- onboarding: sensors paused while the history is built, then the real daemon (run queue)
        _wait_port(code_port, code_server, code_log, timeout=PHASE_TIMEOUT)
        paused = _sensors("stop", prod_env, workspace)
        wanted = {"prices_a_landing_sensor", "reference_landing_sensor", "downstream_automation"}
        assert wanted <= set(paused), f"paused: {paused}"
        daemon, daemon_log = services.start(
            "daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], prod_env, REPO
        )
        _wait_port(ml_port, mlflow, ml_log, timeout=180)

        from partitions import block_key
        from partitions.calendar import sessions_between
        from resources.lake import DeltaLake

        lake = DeltaLake(lake_root, storage_here)
        os.environ["DAGSTER_PG_PASSWORD"] = prod_env["DAGSTER_PG_PASSWORD"]  # for this process's instance
        # the blocks whose sessions the automation may fill (its recent window) and the live days need
        blocks = sorted({block_key(d) for d in sessions if d >= _recent_from(today)})
        book_from = sessions_between(date.fromisoformat(blocks[0]), live[-1])[0]
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            # 1. history: one single-run backfill of the data layer, the blocks' models, the blocks' books so far
            run = _launch(
                "daily_data", _range_tags(history[0], history[-1]), prod_env, workspace, ops=PRICE_PATH
            )
            timings["history_data"] = _await_runs(instance, [run], "daily_data backfill", daemon, daemon_log)
            assert (
                instance.get_run_by_id(run).tags["dagster/asset_partition_range_end"]
                == history[-1].isoformat()
            )
            runs = [_launch("train_alpha", {"dagster/partition": b}, prod_env, workspace) for b in blocks]
            timings["training"] = _await_runs(instance, runs, "train_alpha", daemon, daemon_log)
            run = _launch("daily_book", _range_tags(book_from, history[-1]), prod_env, workspace)
            timings["history_book"] = _await_runs(instance, [run], "daily_book backfill", daemon, daemon_log)
            history_runs = {r.run_id for r in instance.get_runs()}

            # 2. live: the sensors on, then the last sessions' vendor files land in S3
            assert set(_sensors("start", prod_env, workspace)) == set(paused)
            t_live = time.monotonic()
            n_live = _upload_landing(
                s3, "alpha-landing", world / "landing", lambda d: d is not None and d >= live[0]
            )
            assert n_live >= LIVE_SESSIONS
            keys = [AssetKey([layer, name]) for layer, name in CHAIN]
            want = {d.isoformat() for d in live}
            # the sensors keep ticking after the live days: wait until they launch nothing more
            quiet_since = None
            while True:
                runs = [r for r in instance.get_runs() if r.run_id not in history_runs]
                materialized = {k.to_user_string(): instance.get_materialized_partitions(k) for k in keys}
                done = all(want <= parts for parts in materialized.values())
                if done and runs and all(r.is_finished for r in runs):
                    if quiet_since is None or len(runs) != quiet_since[1]:
                        quiet_since = (time.monotonic(), len(runs))
                    elif time.monotonic() - quiet_since[0] > QUIET_SECONDS:
                        break
                else:
                    quiet_since = None
                if daemon.poll() is not None or time.monotonic() - t_live > PHASE_TIMEOUT:
                    statuses = {
                        r.run_id[:8]: (
                            r.tags.get("dagster/sensor_name", r.job_name),
                            r.status.value,
                            sorted(k.to_user_string() for k in r.asset_selection or [])[:4],
                        )
                        for r in runs
                    }
                    pytest.fail(
                        f"the live sessions did not go through the daily graph within {PHASE_TIMEOUT} s (daemon "
                        f"exit {daemon.poll()}); runs: {json.dumps(statuses, indent=1)}\n"
                        f"missing partitions: { {k: sorted(want - v) for k, v in materialized.items()} }\n"
                        f"failures: {_failures(instance)}\ndaemon log tail:\n{daemon_log.read_text()[-4000:]}"
                    )
                time.sleep(3)
            timings["live_days"] = time.monotonic() - t_live

            # run history: every run after the history came from a sensor and succeeded
            sensor_of = {r.run_id: r.tags.get("dagster/sensor_name") for r in runs}
            assert all(sensor_of.values()), sensor_of  # nobody launched the live days by hand
            assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), _failures(instance)
            landing_runs = [r for r in runs if sensor_of[r.run_id].endswith("_landing_sensor")]
            assert {sensor_of[r.run_id] for r in landing_runs} >= {
                "prices_a_landing_sensor",
                "reference_landing_sensor",
            }
            # the history's files launched nothing: the landing runs are the live days only
            assert {r.tags["dagster/partition"] for r in landing_runs} == want
            # everything downstream of the vendor files came from the automation sensor's runs
            for k in keys[2:]:
                for day in sorted(want):
                    records = instance.fetch_materializations(
                        AssetRecordsFilter(asset_key=k, asset_partitions=[day]), limit=1
                    ).records
                    assert sensor_of.get(records[0].run_id) == "downstream_automation", (k, day)
            matrix_meta = instance.get_latest_materialization_event(AssetKey(["features", "feature_matrix"]))
            assert matrix_meta.asset_materialization.metadata["alt_sources"].value == []

        import sqlalchemy as sa

        engine = sa.create_engine(dbs["dagster"])
        # The sensors still tick (the freshness checks, the automation's follow-ups): a run launched after the quiet
        # period above is not a failure until it ends; wait (bounded) for every run to finish before counting.
        settle_by = time.monotonic() + SETTLE_SECONDS
        while True:
            with engine.connect() as c:
                by_status = dict(
                    c.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY status")).all()
                )
                unsettled = c.execute(
                    sa.text("SELECT run_id, pipeline_name, status FROM runs WHERE status != 'SUCCESS'")
                ).all()
            if not set(by_status) & RUNNING_STATUSES or time.monotonic() > settle_by:
                break
            time.sleep(5)
        engine.dispose()
        assert set(by_status) == {"SUCCESS"} and by_status["SUCCESS"] >= len(runs) + len(blocks) + 2, (
            by_status,
            [tuple(r) for r in unsettled],
        )

        # --- the Delta tables, read back from S3: every session, every name, values present
        prices = pl.read_delta(f"{lake_root}/raw/prices", storage_options=storage_here)
        assert sorted(prices["trade_date"].unique().to_list()) == sessions
        universe = lake.read("raw", "universe", columns=["trade_date", "ticker"])
        # every listed name has its price every session (names list and delist over a year)
        assert (
            prices.select("trade_date", "ticker")
            .sort("trade_date", "ticker")
            .equals(universe.sort("trade_date", "ticker"))
        )
        assert prices.group_by("trade_date").len()["len"].min() >= TICKERS * 0.8
        assert prices["close"].is_finite().all() and (prices["close"] > 0).all()
        for layer, name in CHAIN:
            got = set(_days(lake, layer, name))
            assert (layer, name) in NO_ROWS or got >= want, (layer, name, sorted(got)[-5:])
        assert lake.read("features", "alt_features").height == 0  # no alt vendor: typed, no rows
        matrix = lake.read("features", "feature_matrix", live[0], live[-1])
        assert matrix.height == universe.filter(pl.col("trade_date").is_in(live)).height  # every listed name
        assert not [c for c in matrix.columns if c.startswith(("parking", "tanks", "call", "filing", "web"))]
        listing = s3.list_objects_v2(Bucket="alpha-lake", Prefix="lake/portfolio/orders/_delta_log/")
        assert listing.get("KeyCount", 0) >= 1  # the tables really are in the bucket

        # the books: non-zero, dollar-neutral, one per live day; orders for the names held
        weights = lake.read("portfolio", "target_weights", live[0], live[-1])
        book = weights.group_by("trade_date").agg(
            pl.col("weight").sum().alias("net"), pl.col("weight").abs().sum().alias("gross")
        )
        assert book.height == LIVE_SESSIONS and (book["gross"] > 0.1).all(), book
        assert (book["net"].abs() <= 1e-9).all(), book
        assert (weights.filter(pl.col("side") == "long")["weight"] > 0).all()
        assert (weights.filter(pl.col("side") == "short")["weight"] < 0).all()
        orders = lake.read("portfolio", "orders", live[0], live[-1])
        held = weights.filter(pl.col("weight") != 0).join(orders, on=["trade_date", "ticker"], how="left")
        assert (
            held["target_weight"].to_list() == held["weight"].to_list()
        )  # an order line for every name held
        assert (held["target_shares"].sign() == held["weight"].sign()).all()
        risk = lake.read("risk", "risk_report", live[0], live[-1])
        assert set(risk["trade_date"]) == set(live)

        # the scores came from the registered model versions of each live day's block, loaded from the server
        from mlflow import MlflowClient

        from alpha_assets.lib.models.learners import MODEL_KINDS
        from alpha_assets.models.common import registered_name

        client = MlflowClient(tracking_uri=prod_env["MLFLOW_TRACKING_URI"])
        registered = {
            k: {
                int(v.version): v.tags.get("block")
                for v in client.search_model_versions(f"name = '{registered_name(k)}'")
            }
            for k in MODEL_KINDS
        }
        preds = lake.read("models", "predictions", live[0], live[-1])
        assert set(preds["model"]) == set(MODEL_KINDS) and preds["score"].is_finite().all()
        for row in preds.select("model", "model_version", "block").unique().iter_rows(named=True):
            assert registered[row["model"]].get(row["model_version"]) == row["block"], (row, registered)
        assert set(preds["block"]) == {block_key(d) for d in live}
        scores = lake.read("models", "alpha_scores", live[0], live[-1])
        audit = lake.read("portfolio", "weights_audit", live[0], live[-1])
        for day in live:
            used = json.loads(scores.filter(pl.col("trade_date") == day)["model_versions"][0])
            day_preds = preds.filter(pl.col("trade_date") == day)
            for recipe, entry in used.items():
                for kind, version in entry["versions"].items():
                    assert registered[kind][version] == block_key(day), (day, recipe, kind, version)
                    assert (
                        version
                        in day_preds.filter((pl.col("model") == kind) & (pl.col("recipe") == recipe))[
                            "model_version"
                        ].to_list()
                    )
            assert json.loads(audit.filter(pl.col("trade_date") == day)["model_version"][0]) == used
        artifacts = s3.list_objects_v2(Bucket="alpha-mlflow", Prefix="artifacts/")
        assert artifacts.get("KeyCount", 0) > 0  # the trained models' artifacts are in S3

        # the model registry's prod path: a version logged through the tracking server, its artifact in S3
        sys.path.insert(0, str(REPO))
        from resources.model_registry import ModelRegistry

        old = {k: os.environ.get(k) for k in ("MLFLOW_S3_ENDPOINT_URL", *AWS)}
        os.environ.update({"MLFLOW_S3_ENDPOINT_URL": endpoint, **AWS})
        try:
            registry = ModelRegistry(
                tracking_uri=prod_env["MLFLOW_TRACKING_URI"], cache_dir=str(tmp_path / "registry_cache")
            )
            weights_file = tmp_path / "weights.json"
            weights_file.write_text(json.dumps({"coef": [0.1, -0.2]}))
            mv = registry.log_model(
                "alpha_e2e_probe", "e2e", {"kind": "probe"}, {"ic": 0.05}, weights_file, alias="champion"
            )
            assert registry.by_alias("alpha_e2e_probe", "champion").version == mv.version
            local = registry.download(mv)
            assert json.loads(next(Path(local).rglob("weights.json")).read_text()) == {"coef": [0.1, -0.2]}
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        objects = s3.list_objects_v2(Bucket="alpha-mlflow", Prefix="artifacts/", MaxKeys=1000)
        assert any(o["Key"].endswith("weights.json") for o in objects.get("Contents", []))
        print(
            f"\nprod e2e: {TICKERS} names x {len(sessions)} sessions, blocks {blocks}; seconds "
            + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        )
    finally:
        services.stop()
        os.environ.pop("DAGSTER_PG_PASSWORD", None)


def _days(lake, layer: str, name: str) -> list[str]:
    try:
        if not lake.exists(layer, name):
            return []
        return sorted(str(d) for d in lake.read(layer, name, columns=["trade_date"])["trade_date"].unique())
    except Exception as e:  # a table mid-commit: report, poll again
        return [f"unreadable: {type(e).__name__}"]


def _has_days(lake, layer: str, name: str, sessions: list[date]) -> bool:
    return set(_days(lake, layer, name)) >= {d.isoformat() for d in sessions}


def _failures(instance) -> str:
    """The step errors of every failed run on the instance (for a failing assertion's message)."""
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    out = []
    for r in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE])):
        for e in instance.all_logs(
            r.run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
        ):
            out.append(
                f"{r.run_id[:8]} {r.job_name} {e.step_key}: {str(e.dagster_event.event_specific_data)[:1500]}"
            )
    return "\n".join(out or ["(no failed run)"]) + "\n" + _run_history(instance)


def _run_history(instance) -> str:
    """Every run in launch order: what it was asked to do, by whom (sensor, backfill) and when it started and
    ended. The database is dropped after the test, so a race between runs (e.g. a day's feature matrix launched
    before its price features) can only be reconstructed from this."""
    rows = []
    for rec in sorted(instance.get_run_records(), key=lambda r: r.create_timestamp):
        r, t = rec.dagster_run, rec.dagster_run.tags
        part = t.get("dagster/partition") or "..".join(
            filter(
                None,
                (t.get("dagster/asset_partition_range_start"), t.get("dagster/asset_partition_range_end")),
            )
        )
        keys = sorted("/".join(k.path) for k in (r.asset_selection or []))
        by = t.get("dagster/backfill") or t.get("dagster/sensor_name") or t.get("dagster/tick") or "-"
        when = " ".join(_clock(x) for x in (rec.create_timestamp, rec.start_time, rec.end_time))
        rows.append(
            f"{r.run_id[:8]} {r.status.value:<8} {part or '-':<23} by {by[:24]:<24} {when}"
            + f" {r.job_name} {','.join(keys)[:400]}"
        )
    return (
        "run history (id, status, partition, launched by, created/started/ended, job, assets):\n"
        + "\n".join(rows)
    )


def _clock(x) -> str:
    """A run record's time (a datetime or a unix timestamp) as HH:MM:SS UTC, '-' when unset."""
    if x is None:
        return "-"
    if not hasattr(x, "strftime"):
        x = datetime.fromtimestamp(x, tz=timezone.utc)
    return x.strftime("%H:%M:%S")
