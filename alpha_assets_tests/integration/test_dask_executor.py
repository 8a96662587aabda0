"""`alpha materialize --executor dask` on a real Dask cluster: a `dask scheduler` and two `dask worker` processes
on 127.0.0.1 run a range of the data layers; every step runs on a worker (both take some), and the Delta tables
equal those of the same range materialized in-process. A local cluster runs a selection; a bad or dead address,
a cluster without the resources a step needs and workers that cannot see the home are refused in one line."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.cli import main
from alpha_assets_tests.conftest import WORLD_START, make_world
from partitions.calendar import sessions_from

BIN = Path(sys.executable).parent
PORTS = range(18300, 18400)  # this test's port range


def _free_port_block(n: int) -> int:
    """The first port of ``n`` consecutive free loopback ports in PORTS."""
    for first in range(PORTS.start, PORTS.stop - n + 1, n):
        try:
            socks = []
            for port in range(first, first + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} free ports in {PORTS.start}..{PORTS.stop - 1}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _env() -> dict:
    """The workers' environment: this test's (offline flags, partition start) without ALPHA_HOME/DAGSTER_HOME,
    which travel with each step (the home is an argument of the reconstructed job, the instance a reference)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ALPHA_HOME", "DAGSTER_HOME")}
    return {**env, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers (no nanny: the worker is the process we started, so its pid
    is the pid steps report), each declaring 8 GB of MEMORY for the heavy steps' requirements."""
    from dask.distributed import Client

    root = tmp_path_factory.mktemp("dask_cluster")
    first = _free_port_block(6)
    address = f"tcp://127.0.0.1:{first}"
    procs: list[subprocess.Popen] = []
    logs = []

    def start(name: str, cmd: list[str]) -> subprocess.Popen:
        (root / name).mkdir()
        log = open(root / f"{name}.log", "w")  # noqa: SIM115 (closed in finally)
        logs.append(log)
        procs.append(subprocess.Popen(cmd, cwd=root / name, env=_env(), stdout=log, stderr=subprocess.STDOUT))
        return procs[-1]

    try:
        start(
            "scheduler",
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(first),
                "--no-dashboard",
                "--dashboard-address",
                f"127.0.0.1:{first + 1}",
            ],
        )
        workers = {}
        for i, name in enumerate(("w1", "w2")):
            port = first + 2 + 2 * i
            cmd = [
                str(BIN / "dask"),
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-nanny",
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--worker-port",
                str(port),
                "--no-dashboard",
                "--dashboard-address",
                f"127.0.0.1:{port + 1}",
                "--resources",
                "MEMORY=8e9",
                "--death-timeout",
                "60",
            ]
            workers[name] = start(name, cmd).pid
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5, set_as_default=False) as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                    break
            except OSError:  # the scheduler is not listening yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address, workers
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dask_world")
    make_world(root)
    return root


def _home(world: Path, dest: Path) -> Path:
    shutil.copytree(world, dest)
    return dest


def _alpha(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("ALPHA_HOME", "DAGSTER_HOME")}
    return subprocess.run(
        [str(BIN / "alpha"), "--home", str(home), *args], env=env, capture_output=True, text=True, timeout=600
    )


def _run_events(home: Path):
    """The steps of the home's one CLI run: {step key: pid of the process that ran it}, and the run's tags."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        (run,) = instance.get_runs()
        starts = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
        return {r.step_key: r.dagster_event.pid for r in starts}, run


def _tables(home: Path) -> dict[str, pl.DataFrame]:
    from resources.lake import DeltaLake

    lake = DeltaLake(home / "lake")
    out = {}
    for table in sorted(p.parent for p in (home / "lake").glob("*/*/_delta_log")):
        df = lake.read(table.parent.name, table.name)
        out[f"{table.parent.name}.{table.name}"] = df.sort(df.columns, nulls_last=True)
    return out


@pytest.mark.service
@pytest.mark.slow
def test_a_range_runs_on_both_dask_workers_and_equals_the_in_process_run(dask_cluster, world, tmp_path):
    address, workers = dask_cluster
    days = sessions_from(WORLD_START, 40)[28:34]
    span = ["--job", "daily_data", "--from", str(days[0]), "--to", str(days[-1])]
    on_dask, in_process = _home(world, tmp_path / "dask"), _home(world, tmp_path / "local")

    res = _alpha(on_dask, "materialize", *span, "--executor", "dask", "--dask-address", address)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"on Dask ({address})" in res.stdout
    ref = _alpha(in_process, "materialize", *span)
    assert ref.returncode == 0, ref.stdout + ref.stderr

    step_pids, run = _run_events(on_dask)
    local_steps, _ = _run_events(in_process)
    assert set(step_pids) == set(local_steps)  # the same steps ran
    # Every step ran in a worker process, and both workers took some (independent vendor steps start together).
    assert set(step_pids.values()) == set(workers.values()), (step_pids, workers)
    assert run.tags["dagster/asset_partition_range_start"] == str(days[0])

    dask_tables, local_tables = _tables(on_dask), _tables(in_process)
    assert set(dask_tables) == set(local_tables)
    assert {"raw.prices", "features.price_features", "features.feature_matrix"} <= set(dask_tables)
    for name, df in local_tables.items():
        assert sorted(dask_tables[name]["trade_date"].unique().to_list()) == sorted(
            df["trade_date"].unique().to_list()
        ), name
        assert dask_tables[name].equals(df), name
    assert sorted(dask_tables["raw.prices"]["trade_date"].unique().to_list()) == days


@pytest.mark.service
@pytest.mark.slow
def test_a_selection_runs_on_a_local_dask_cluster(world, tmp_path):
    home = _home(world, tmp_path / "local_cluster")
    day = sessions_from(WORLD_START, 40)[30]
    res = _alpha(
        home,
        "materialize",
        "--job",
        "daily_data",
        "--from",
        str(day),
        "--to",
        str(day),
        "--select",
        "raw/universe,raw/prices",
        "--executor",
        "dask",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "on Dask (a local cluster)" in res.stdout
    step_pids, _ = _run_events(home)
    assert set(step_pids) == {"raw__universe", "prices"}
    assert len(set(step_pids.values())) >= 1 and os.getpid() not in step_pids.values()
    tables = _tables(home)
    assert set(tables) == {"raw.universe", "raw.prices", "raw.price_reconciliation"}
    assert tables["raw.prices"]["trade_date"].unique().to_list() == [day]


def _one_line_error(capsys, home: Path, *args: str) -> str:
    rc = main(["--home", str(home), "materialize", "--job", "daily_data", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_malformed_dask_address_is_refused_in_one_line(world, tmp_path, capsys, monkeypatch):
    home = _home(world, tmp_path / "h")
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    for bad in (
        "localhost:8786",
        "tcp://127.0.0.1:",
        "tcp://127.0.0.1:99999",
        "tcp://127.0.0.1:0",
        "tcp://[::1:8786",
        "tcp://::1:8786",
    ):
        err = _one_line_error(capsys, home, "--executor", "dask", "--dask-address", bad)
        assert "is not a Dask scheduler address: use tcp://HOST:PORT" in err, bad
    assert not any((home / "lake").glob("*/*"))  # refused before any run
    err = _one_line_error(capsys, home, "--dask-address", "tcp://127.0.0.1:8786")
    assert "--dask-address needs --executor dask" in err


@pytest.mark.slow
def test_an_unreachable_scheduler_is_refused_in_one_line(world, tmp_path, capsys, monkeypatch):
    home = _home(world, tmp_path / "h")
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    port = _free_port_block(1)  # nothing listens there
    err = _one_line_error(capsys, home, "--executor", "dask", "--dask-address", f"tcp://127.0.0.1:{port}")
    assert f"no Dask scheduler answers at tcp://127.0.0.1:{port}" in err
    assert not any((home / "lake").glob("*/*"))  # refused before any run


@pytest.mark.service
@pytest.mark.slow
def test_a_cluster_that_cannot_run_the_steps_is_refused(dask_cluster, world, tmp_path):
    from alpha_assets.executors import DaskUnavailable, check_scheduler

    address, workers = dask_cluster
    home = _home(world, tmp_path / "h")
    assert check_scheduler(address, str(home), {"MEMORY": 4e9}) == len(workers)
    with pytest.raises(DaskUnavailable, match=r"no Dask worker at .* offers MEMORY=1e\+12"):
        check_scheduler(address, str(home), {"MEMORY": 1e12})
    with pytest.raises(DaskUnavailable, match="cannot see ALPHA_HOME"):
        check_scheduler(address, str(tmp_path / "not_a_home"), {})
