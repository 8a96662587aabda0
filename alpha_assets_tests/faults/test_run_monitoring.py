"""A run whose process is killed is marked FAILURE and frees its run slot (issue 19 #6).

deploy/local/dagster.yaml turns on the daemon's run monitoring with ``LocalRunLauncher`` (Dagster's default launcher
plus a check that the run's process is alive). The fast test calls that check on a run whose process killed itself;
the slow one starts the real ``dagster-daemon`` over an instance made from the shipped file, kills two runs started
the way ``alpha materialize`` starts them (filling ``max_concurrent_runs: 2``) and one the daemon launched, each
with SIGKILL, and waits for each to end FAILURE and for the queued run to get a slot."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_YAML = REPO / "deploy" / "local" / "dagster.yaml"

SLEEPY = """
import os, signal, time
from dagster import Definitions, job, op

@op
def nap():
    if os.environ.get("SLEEPY_DIE"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(600)

@job
def sleepy():
    nap()

defs = Definitions(jobs=[sleepy])
"""

# A run started the way `alpha materialize` starts one: execute_in_process in this process, on the instance.
RUN_IN_PROCESS = """
import sys
from dagster import DagsterInstance
sys.path.insert(0, sys.argv[1])
from sleepy import sleepy
with DagsterInstance.get() as instance:
    sleepy.execute_in_process(instance=instance, raise_on_error=False, tags=dict(a.split("=", 1) for a in sys.argv[2:]))
"""


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    (tmp_path / "sleepy.py").write_text(SLEEPY)
    (tmp_path / "run_in_process.py").write_text(RUN_IN_PROCESS)
    (tmp_path / "workspace.yaml").write_text(
        textwrap.dedent(f"""\
        load_from:
          - python_file:
              relative_path: {tmp_path / "sleepy.py"}
              location_name: sleepy
        """)
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    LOGS[:] = [tmp_path / "workers.log", tmp_path / "daemon.log"]
    (tmp_path / "workers.log").touch()
    (tmp_path / "daemon.log").touch()
    return home


def _start_in_process_run(dagster_home: Path, *tags: str, **env) -> subprocess.Popen:
    here = dagster_home.parent
    log = (here / "workers.log").open("ab")
    return subprocess.Popen(
        [sys.executable, str(here / "run_in_process.py"), str(here), *tags],
        cwd=here,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


LOGS: list[Path] = []  # shown when a wait times out


def _wait(what: str, predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    logs = {p.name: p.read_text(errors="replace")[-1500:] for p in LOGS}
    pytest.fail(f"{what}: not within {timeout:.0f} s; {logs}")


def _run_start_pid(instance, run_id: str) -> int | None:
    from dagster import DagsterEventType

    recs = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    return recs[0].event_log_entry.dagster_event.pid if recs else None


def _new_run(instance, known: set[str]):
    runs = [r for r in instance.get_runs() if r.run_id not in known]
    return runs[0] if runs else None


@pytest.mark.slow
def test_the_local_launcher_reports_a_killed_runs_process_dead_and_a_live_one_running(dagster_home):
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.launcher import WorkerStatus

    from alpha_assets.run_launcher import HOST_TAG, LocalRunLauncher

    with DagsterInstance.get() as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalRunLauncher) and instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        for tags in ((), (f"{HOST_TAG}=another-machine",)):
            proc = _start_in_process_run(
                dagster_home, *tags, SLEEPY_DIE="1"
            )  # the op SIGKILLs its own process
            assert proc.wait(timeout=120) == -signal.SIGKILL
            run = instance.get_runs(limit=1)[0]
            assert run.status == DagsterRunStatus.STARTED  # nothing marked it: Dagster alone never would
            health = launcher.check_run_worker_health(run)
            if tags:  # another host's process cannot be checked from here: left alone
                assert health.status == WorkerStatus.RUNNING, health
            else:
                assert (
                    health.status == WorkerStatus.FAILED
                    and str(_run_start_pid(instance, run.run_id)) in health.msg
                )
        live = _start_in_process_run(dagster_home)
        try:
            run = _wait(
                "the live run starts",
                lambda: next(
                    (
                        r
                        for r in instance.get_runs(limit=1)
                        if r.status == DagsterRunStatus.STARTED
                        and r.tags.get(HOST_TAG) is None
                        and launcher.check_run_worker_health(r).status != WorkerStatus.FAILED
                    ),
                    None,
                ),
                120,
            )
            assert _run_start_pid(instance, run.run_id) == live.pid
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        finally:
            live.kill()
            live.wait()


@pytest.mark.slow
@pytest.mark.service
def test_the_daemon_fails_killed_runs_and_frees_their_slots(dagster_home):
    from dagster import DagsterInstance, DagsterRunStatus

    here = dagster_home.parent
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    bin_dir = Path(sys.executable).parent
    # The storages exist before the daemon starts: no race between two processes creating them.
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_records_for_run("none", limit=1)
    log = (here / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(bin_dir / "dagster-daemon"), "run", "-w", str(here / "workspace.yaml")],
        cwd=here,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers: list[subprocess.Popen] = []
    try:
        with DagsterInstance.get() as instance:
            assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
            killed = []
            for _ in range(2):  # two runs killed as `alpha materialize` would be: both slots held
                known = {r.run_id for r in instance.get_runs()}
                workers.append(_start_in_process_run(dagster_home))
                run = _wait(
                    "an in-process run starts",
                    lambda known=known: (
                        (r := _new_run(instance, known))
                        and r.status == DagsterRunStatus.STARTED
                        and _run_start_pid(instance, r.run_id)
                        and r
                    ),
                    120,
                )
                os.kill(_run_start_pid(instance, run.run_id), signal.SIGKILL)
                killed.append((run.run_id, time.monotonic()))
            # A run queued now waits for a slot: it gets one only once the daemon has failed a killed run.
            known = {r.run_id for r in instance.get_runs()}
            out = subprocess.run(
                [
                    str(bin_dir / "dagster"),
                    "job",
                    "launch",
                    "-w",
                    str(here / "workspace.yaml"),
                    "-j",
                    "sleepy",
                ],
                cwd=here,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert out.returncode == 0, out.stderr[-2000:]
            queued = _wait("the queued run is stored", lambda: _new_run(instance, known), 60)
            for run_id, killed_at in killed:
                _wait(
                    f"killed run {run_id[:8]} ends FAILURE",
                    lambda run_id=run_id: instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE,
                    180,
                )
                print(f"run {run_id[:8]}: FAILURE {time.monotonic() - killed_at:.0f} s after its SIGKILL")
                events = [e.message or "" for e in instance.all_logs(run_id)]
                assert any("the run's process" in m for m in events), events[-5:]  # LocalRunLauncher said so
            # ... and the queued run, launched by the daemon through its code server, gets a slot and starts.
            _wait(
                "the queued run starts",
                lambda: (
                    instance.get_run_by_id(queued.run_id).status == DagsterRunStatus.STARTED
                    and _run_start_pid(instance, queued.run_id)
                ),
                180,
            )
            os.kill(_run_start_pid(instance, queued.run_id), signal.SIGKILL)
            killed_at = time.monotonic()
            _wait(
                "the daemon-launched run, killed, ends FAILURE",
                lambda: instance.get_run_by_id(queued.run_id).status == DagsterRunStatus.FAILURE,
                180,
            )
            print(
                f"run {queued.run_id[:8]} (daemon-launched): FAILURE {time.monotonic() - killed_at:.0f} s after its SIGKILL"
            )
            assert not instance.get_runs(filters=_in_progress())
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
            w.wait()
        os.killpg(daemon.pid, signal.SIGTERM)  # the daemon's own session: it and the code server it started
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()


def _in_progress():
    from dagster import DagsterRunStatus, RunsFilter

    return RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.QUEUED])
