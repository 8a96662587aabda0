"""The event-log fix (alpha_assets.dagster_patches): a range run's planned check writes the same rows as Dagster's
own method, one per partition, each holding the planned event."""

from __future__ import annotations

import logging
import time

import dagster
import pytest


def _planned(check_name: str, subset, timestamp: float):
    from dagster import AssetKey
    from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationPlanned
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.events.log import EventLogEntry

    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value,
        job_name="daily_data",
        event_specific_data=AssetCheckEvaluationPlanned(
            asset_key=AssetKey(["raw", "prices"]), check_name=check_name, partitions_subset=subset
        ),
    )
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message="",
        run_id="r" * 36,
        timestamp=timestamp,
        dagster_event=event,
    )


def _rows(instance, check_name: str) -> list[tuple]:
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

    t = AssetCheckExecutionsTable
    query = (
        t.select()
        .with_only_columns(
            t.c.asset_key,
            t.c.check_name,
            t.c.partition,
            t.c.run_id,
            t.c.execution_status,
            t.c.evaluation_event,
        )
        .where(t.c.check_name == check_name)
        .order_by(t.c.partition)
    )
    with instance.event_log_storage.index_connection() as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]


@pytest.mark.skipif(dagster.__version__ != "1.13.27", reason="the fix copies Dagster 1.13.27's method")
def test_a_planned_range_check_is_stored_as_dagster_stores_it(tmp_path) -> None:
    from dagster import DagsterInstance, PartitionKeyRange
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    from alpha_assets.dagster_patches import install
    from partitions import trading_days

    original = SqlEventLogStorage._store_asset_check_evaluation_planned
    keys = trading_days.get_partition_keys_in_range(PartitionKeyRange("2025-01-02", "2025-03-31"))
    subset = trading_days.empty_subset().with_partition_keys(keys)
    now = time.time()
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        try:
            SqlEventLogStorage._store_asset_check_evaluation_planned = original
            instance.event_log_storage.store_event(_planned("theirs", subset, now))
            assert install() and install()  # idempotent
            instance.event_log_storage.store_event(_planned("ours", subset, now))
        finally:
            SqlEventLogStorage._store_asset_check_evaluation_planned = original
            install()
        theirs, ours = _rows(instance, "theirs"), _rows(instance, "ours")
    assert len(ours) == len(theirs) == len(keys) and [r[2] for r in ours] == sorted(keys)
    # the same row for every partition (asset, partition, run, status), the same event but for the check's name
    assert [(r[0], *r[2:5]) for r in ours] == [(r[0], *r[2:5]) for r in theirs]
    assert all(a[5] == b[5].replace('"theirs"', '"ours"') for a, b in zip(ours, theirs, strict=True))
