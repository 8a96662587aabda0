"""The real daemon over an instance the CLI materialized: the landing sensors tick and launch nothing, because
every landed file is already what its partition was materialized from (issue 9 #1: no flood after the demo)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.service, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _landing_sensor_ticks(instance) -> dict[str, list]:
    from dagster._core.scheduler.instigation import InstigatorType

    from alpha_assets.ingestion.sensors import VENDOR_TARGETS

    names = {f"{prefix}_landing_sensor" for prefix in VENDOR_TARGETS}
    ticks = {}
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name in names:
            ticks[state.instigator_name] = list(
                instance.get_ticks(state.instigator_origin_id, state.selector_id)
            )
    return ticks


def test_the_daemon_over_a_cli_materialized_instance_requests_no_runs(home):
    from dagster import DagsterInstance, RunsFilter
    from dagster._core.scheduler.instigation import TickStatus

    from alpha_assets.app.runs import materialize
    from alpha_assets.ingestion.sensors import VENDOR_TARGETS

    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", home.dagster / "dagster.yaml")
    with DagsterInstance.from_config(str(home.dagster)) as inst:
        assert materialize(home, quiet=True, instance=inst, job_name="daily_data")["success"]
        runs_before = inst.get_runs_count()
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster), "ALPHA_HOME": str(home.root)}
    exe = str(Path(sys.executable).parent / "dagster-daemon")
    log = (home.root / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [exe, "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        ticks: dict[str, list] = {}
        with DagsterInstance.from_config(str(home.dagster)) as inst:
            while time.monotonic() < deadline:
                ticks = _landing_sensor_ticks(inst)
                done = {n: t for n, t in ticks.items() if any(x.status != TickStatus.STARTED for x in t)}
                if len(done) == len(VENDOR_TARGETS):
                    break
                assert proc.poll() is None, (home.root / "daemon.log").read_text()[-3000:]
                time.sleep(2)
            else:
                pytest.fail(f"the landing sensors did not tick within 300 s: {sorted(ticks)}")
            failed = {n: [x.error for x in t if x.status == TickStatus.FAILURE] for n, t in ticks.items()}
            assert not any(failed.values()), failed
            requested = {n: sum(len(x.run_ids) for x in t) for n, t in ticks.items()}
            sensor_runs = inst.get_runs(RunsFilter(tags={"dagster/sensor_name": list(ticks)}))
            assert requested == dict.fromkeys(ticks, 0), requested
            assert sensor_runs == []
            # Nothing else materializes either: the only run allowed is the freshness sensor's check-only run.
            others = inst.get_runs()[: inst.get_runs_count() - runs_before]
            materializing = [(r.job_name, r.tags) for r in others if r.asset_selection]
            assert materializing == [], materializing
            assert {r.tags.get("dagster/sensor_name") for r in others} <= {"freshness_checks_sensor"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the daemon's own session: it and the code server it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
