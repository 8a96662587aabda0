"""A UI backfill of a per-day vendor asset over many sessions becomes parallel runs under the run queue's limits.

The backfill is launched the way the UI launches it (GraphQL ``launchPartitionBackfill``) on an instance configured
with ``deploy/local/dagster.yaml``; the daemon's own backfill and run-queue iterations then split it into runs of at
most ``VENDOR_BACKFILL_SESSIONS`` sessions and start them, each in its own process from the code server. The
sensors are not run: their daemon would launch runs for every vendor file of the world as well.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.compute import VENDOR_BACKFILL_SESSIONS
from alpha_assets_tests.conftest import WORLD_START, make_world
from partitions.calendar import sessions_from

REPO = Path(__file__).resolve().parents[2]
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture
def text_home(tmp_path, monkeypatch):
    """A home over a small world with earnings calls and filings (no images, no web site)."""
    from alpha_assets.home import AlphaHome
    from alpha_world.altdata import AltDataConfig, write_alt_data

    root = tmp_path / "alpha"
    world, _ = make_world(root, tickers=12, days=VENDOR_BACKFILL_SESSIONS + 10)
    write_alt_data(world, root, AltDataConfig(image_sessions=0, detector_images=0, web_sessions=0))
    monkeypatch.setenv("ALPHA_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    return AlphaHome(root).ensure()


@pytest.mark.slow
def test_a_ui_backfill_of_transcript_days_runs_as_chunked_runs_one_at_a_time(text_home):
    home = text_home
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from dagster_graphql.test.utils import execute_dagster_graphql

    from alpha_assets.app.runs import materialize

    days = sessions_from(WORLD_START, VENDOR_BACKFILL_SESSIONS + 4)  # one full chunk and a short one
    # the call-sentiment content check reads the point-in-time universe: materialize it first
    assert materialize(home, days[0], days[-1], select=["raw/universe"], quiet=True)["success"]
    shutil.copy(
        REPO / "deploy" / "local" / "dagster.yaml", home.dagster / "dagster.yaml"
    )  # what `make ui` uses

    done = {
        BulkActionStatus.COMPLETED_SUCCESS,
        BulkActionStatus.COMPLETED_FAILED,
        BulkActionStatus.FAILED,
        BulkActionStatus.CANCELED,
    }
    running = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}
    target = WorkspaceFileTarget(paths=[str(REPO / "workspace.yaml")])
    log = logging.getLogger("alpha_assets_tests.backfill")
    with (
        DagsterInstance.from_config(str(home.dagster)) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        result = execute_dagster_graphql(
            workspace.create_request_context(),
            LAUNCH,
            {
                "params": {
                    "partitionNames": [d.isoformat() for d in days],
                    "assetSelection": [{"path": ["raw", "call_sentiment"]}],
                }
            },
        )
        launched = result.data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
        most_running, deadline = 0, time.time() + 900
        while time.time() < deadline:
            list(execute_backfill_iteration(workspace, log))
            list(queue.run_iteration(workspace))
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
            most_running = max(most_running, sum(r.status in running for r in runs))
            if instance.get_backfill(backfill_id).status in done:
                break
            time.sleep(1)
        backfill = instance.get_backfill(backfill_id)
        runs = sorted(
            instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id})),
            key=lambda r: r.tags["dagster/asset_partition_range_start"],
        )

    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, (backfill.status, [r.status for r in runs])
    # two runs: the first VENDOR_BACKFILL_SESSIONS sessions, then the rest, consecutive and together the range
    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in runs
    ]
    iso = [d.isoformat() for d in days]
    assert ranges == [(iso[0], iso[VENDOR_BACKFILL_SESSIONS - 1]), (iso[VENDOR_BACKFILL_SESSIONS], iso[-1])]
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
    # deploy/local/dagster.yaml lets one backfill run go at a time (a sensor's new day keeps the other slot)
    assert most_running <= 1
    # every transcript of the range was scored, each day by the run that owned it
    landed = {p.stem.rsplit("_", 1)[1] for p in (home.landing / "transcripts").glob("*.txt")}
    expected = [d for d in iso if d in landed]
    assert expected[0] <= iso[VENDOR_BACKFILL_SESSIONS - 1] < expected[-1], "calls in both runs' sessions"
    table = pl.read_delta(str(home.lake / "raw" / "call_sentiment"))
    assert sorted({d.isoformat() for d in table["trade_date"].unique()}) == expected
    assert table.height >= len(expected) and table["call_sentiment"].is_finite().all()
