"""The production deployment end to end on loopback (ALPHA_DEPLOYMENT=prod).

Real services, each a subprocess killed by PID at the end: PostgreSQL (ALPHA_TEST_PG_URL; two databases of our
own, dropped after) holds the Dagster instance and MLflow's tracking store; ``moto_server`` is the S3 endpoint for
the Delta lake, the landing zone and MLflow's artifacts; ``mlflow server`` proxies artifacts to S3. A tiny demo
world's vendor files are uploaded into the S3 landing prefix; the real ``dagster-daemon`` over the PostgreSQL
instance (QueuedRunCoordinator, DefaultRunLauncher) runs the landing sensors, which launch the ingestion runs,
and the automation sensor, which launches the price features and labels. The test then reads the Delta tables back
from S3, the run history from PostgreSQL, and a model logged through the prod ``ModelRegistry`` from the tracking
server and S3. Also: two concurrent writers to one S3 Delta table both land (delta-rs 1.x commits with S3
conditional writes; moto refuses a second If-None-Match put of the same key, so a lost commit would show).

Model steps: training needs a year of history (≥ 340 sessions, minutes of CPU), so this test's daily graph is the
data layer from prices (raw.universe, raw.prices, features.price_features, features.labels); the model layer's
prod path is exercised by logging and loading a model version through the tracking server into S3.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pytest

pytestmark = [pytest.mark.service, pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("ALPHA_TEST_PG_URL")
PORTS = (18400, 18600)  # this test's loopback port range
TICKERS, DAYS = 8, 2  # a tiny world: the price layers accept a single session; two show a window
AWS = {"AWS_ACCESS_KEY_ID": "alpha-test", "AWS_SECRET_ACCESS_KEY": "alpha-test", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_REGION": "us-east-1"}  # fmt: skip
OVERALL_TIMEOUT = 420


def _free_port() -> int:
    for port in random.sample(range(*PORTS), 60):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


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
            proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
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


def _upload_landing(s3, bucket: str, landing: Path) -> int:
    n = 0
    for p in sorted(landing.rglob("*")):
        if p.is_file():
            s3.upload_file(str(p), bucket, f"landing/{p.relative_to(landing).as_posix()}")
            n += 1
    return n


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
    procs = [subprocess.Popen([sys.executable, "-c", code, lake_root, json.dumps(storage), d.isoformat()],
                              env=env, cwd=tmp, stderr=subprocess.PIPE) for d in days]  # fmt: skip
    errs = [p.communicate(timeout=120)[1].decode()[-1500:] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    table = lake.read("raw", "two_writers")
    assert sorted(table["trade_date"].unique().to_list()) == [first, *days]
    assert table.height == 7 and lake.version("raw", "two_writers") == 2  # two commits after the first


def test_prod_deployment_end_to_end_on_loopback(tmp_path, pg_databases):
    import boto3
    import polars as pl
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    server_url, dbs = pg_databases
    logs = tmp_path / "logs"
    logs.mkdir()
    services = Services(logs)
    try:
        # --- a tiny world: prices and reference data for a few names over a few sessions
        world = tmp_path / "world"
        out = subprocess.run([str(BIN / "alpha"), "world", "generate", "--out", str(world), "--tickers",
                              str(TICKERS), "--days", str(DAYS), "--no-alt-data", "--seed", "11"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        sessions = sorted(
            date.fromisoformat(p.stem[-10:]) for p in (world / "landing" / "prices_a").glob("*.csv")
        )
        start = json.loads((world / "partitions.json").read_text())["start"]

        # --- S3 on loopback
        s3_port = _free_port()
        endpoint = f"http://127.0.0.1:{s3_port}"
        base_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **AWS}
        moto, moto_log = services.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                                 str(s3_port)], base_env, tmp_path)  # fmt: skip
        _wait_port(s3_port, moto, moto_log)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        for bucket in ("alpha-lake", "alpha-landing", "alpha-mlflow"):
            s3.create_bucket(Bucket=bucket)
        uploaded = _upload_landing(s3, "alpha-landing", world / "landing")
        assert uploaded >= 3 * len(sessions)

        # --- MLflow tracking server: PostgreSQL backend, artifacts proxied to S3
        ml_port = _free_port()
        ml_env = {**base_env, "MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL": endpoint}
        mlflow, ml_log = services.start("mlflow", [
            str(BIN / "mlflow"), "server", "--backend-store-uri", dbs["mlflow"].render_as_string(hide_password=False),
            "--artifacts-destination", "s3://alpha-mlflow/artifacts", "--host", "127.0.0.1", "--port", str(ml_port),
            "--workers", "1",
        ], ml_env, tmp_path)  # fmt: skip

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
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
            "PYTHONWARNINGS": "ignore",
        }
        lake_root = prod_env["ALPHA_LAKE_ROOT"]
        # This process has no AWS variables: its own reads carry the (dummy) keys explicitly.
        storage_here = {**storage, "AWS_ACCESS_KEY_ID": AWS["AWS_ACCESS_KEY_ID"],
                        "AWS_SECRET_ACCESS_KEY": AWS["AWS_SECRET_ACCESS_KEY"], "AWS_REGION": AWS["AWS_REGION"]}  # fmt: skip

        # --- safe concurrent Delta writes on S3 (before the daemon: a quiet machine makes the race tighter)
        refused = None
        s3.put_object(Bucket="alpha-lake", Key="probe/00000.json", Body=b"{}", IfNoneMatch="*")
        try:
            s3.put_object(Bucket="alpha-lake", Key="probe/00000.json", Body=b"{}", IfNoneMatch="*")
        except s3.exceptions.ClientError as e:
            refused = e.response["Error"]["Code"]
        assert refused == "PreconditionFailed"  # the endpoint honours conditional writes, as S3 does
        _concurrent_writers(lake_root, storage_here, prod_env, tmp_path)

        # --- the real daemon: landing sensors -> ingestion runs; automation sensor -> features and labels
        daemon, daemon_log = services.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w",
                                                       str(REPO / "workspace.yaml")], prod_env, REPO)  # fmt: skip
        _wait_port(ml_port, mlflow, ml_log, timeout=180)

        from resources.lake import DeltaLake

        lake = DeltaLake(lake_root, storage_here)
        os.environ["DAGSTER_PG_PASSWORD"] = prod_env["DAGSTER_PG_PASSWORD"]  # for this process's instance
        wanted = [
            ("raw", "universe"),
            ("raw", "prices"),
            ("features", "price_features"),
            ("features", "labels"),
        ]
        keys = [AssetKey([layer, name]) for layer, name in wanted]
        want_parts = {d.isoformat() for d in sessions}
        deadline = time.monotonic() + OVERALL_TIMEOUT
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            statuses: dict = {}
            while True:
                runs = instance.get_runs()
                statuses = {r.run_id[:8]: (r.tags.get("dagster/sensor_name", r.job_name), r.status.value,
                                           sorted(k.to_user_string() for k in r.asset_selection or [])[:4])
                            for r in runs}  # fmt: skip
                sensor_runs = [
                    r for r in runs if r.tags.get("dagster/sensor_name", "").endswith("_landing_sensor")
                ]
                materialized = {k.to_user_string(): instance.get_materialized_partitions(k) for k in keys}
                if (
                    all(want_parts <= parts for parts in materialized.values())
                    and all(_has_days(lake, layer, name, sessions) for layer, name in wanted)
                    and sensor_runs
                    and all(r.is_finished for r in sensor_runs)
                ):
                    break
                if daemon.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"the daily graph did not land in S3 within {OVERALL_TIMEOUT} s (daemon exit "
                        f"{daemon.poll()}); runs: {json.dumps(statuses, indent=1)}\n"
                        f"partitions materialized: { {k: sorted(v) for k, v in materialized.items()} }\n"
                        f"tables: { {f'{lyr}.{n}': _days(lake, lyr, n) for lyr, n in wanted} }\n"
                        f"daemon log tail:\n{daemon_log.read_text()[-4000:]}"
                    )
                time.sleep(3)

            # run history in PostgreSQL: every sensor-launched ingestion run succeeded
            assert {r.tags["dagster/sensor_name"] for r in sensor_runs} >= {"prices_a_landing_sensor",
                                                                             "reference_landing_sensor"}  # fmt: skip
            assert all(r.status == DagsterRunStatus.SUCCESS for r in sensor_runs), statuses
            # the features came from the automation sensor's runs, not from a landing sensor's
            auto = {e.run_id for k in keys[2:] for e in [instance.get_latest_materialization_event(k)] if e}
            assert auto and not auto & {r.run_id for r in sensor_runs}

        import sqlalchemy as sa

        engine = sa.create_engine(dbs["dagster"])
        with engine.connect() as c:
            pg_success = c.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")).scalar()
        engine.dispose()
        assert pg_success >= len(sensor_runs)

        # the Delta tables, read back from S3: every landed session, every name, values present
        prices = pl.read_delta(f"{lake_root}/raw/prices", storage_options=storage_here)
        assert sorted(prices["trade_date"].unique().to_list()) == sessions
        assert (
            prices.group_by("trade_date").len()["len"].min() >= TICKERS - 1
        )  # listings may differ by a name
        assert prices["close"].is_finite().all() and (prices["close"] > 0).all()
        feats = lake.read("features", "price_features")
        assert set(feats["trade_date"].unique().to_list()) == set(sessions)
        keys = s3.list_objects_v2(Bucket="alpha-lake", Prefix="lake/features/price_features/_delta_log/")
        assert keys.get("KeyCount", 0) >= 1  # the table really is in the bucket

        # the model registry's prod path: a version logged through the tracking server, its artifact in S3
        sys.path.insert(0, str(REPO))
        from resources.model_registry import ModelRegistry

        old = {k: os.environ.get(k) for k in ("MLFLOW_S3_ENDPOINT_URL", *AWS)}
        os.environ.update({"MLFLOW_S3_ENDPOINT_URL": endpoint, **AWS})
        try:
            registry = ModelRegistry(tracking_uri=prod_env["MLFLOW_TRACKING_URI"],
                                     cache_dir=str(tmp_path / "registry_cache"))  # fmt: skip
            weights = tmp_path / "weights.json"
            weights.write_text(json.dumps({"coef": [0.1, -0.2]}))
            mv = registry.log_model("alpha_e2e_probe", "e2e", {"kind": "probe"}, {"ic": 0.05}, weights,
                                    alias="champion")  # fmt: skip
            assert registry.by_alias("alpha_e2e_probe", "champion").version == mv.version
            local = registry.download(mv)
            assert json.loads(next(Path(local).rglob("weights.json")).read_text()) == {"coef": [0.1, -0.2]}
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        objects = s3.list_objects_v2(Bucket="alpha-mlflow", Prefix="artifacts/")
        assert any(o["Key"].endswith("weights.json") for o in objects.get("Contents", []))
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
