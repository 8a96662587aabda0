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


def _range_run(instance, days: list[str]) -> None:
    import dagster as dg

    @dg.asset(
        key=["raw", "probe"],
        partitions_def=dg.DailyPartitionsDefinition(start_date=days[0]),
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def probe(context) -> None:
        for pk in context.partition_keys:
            context.add_asset_metadata({"day": pk}, partition_key=pk)
        context.add_asset_metadata({"rows": len(context.partition_keys)})

    result = dg.materialize(
        [probe],
        instance=instance,
        tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]},
    )
    assert result.success


def _stored(instance) -> dict:
    from dagster import AssetKey, AssetRecordsFilter

    key = AssetKey(["raw", "probe"])
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1000).records
    latest = instance.get_latest_materialization_event(key)
    return {
        "partitions": sorted(r.partition_key for r in records),
        "metadata": sorted(
            (
                r.partition_key,
                r.asset_materialization.metadata["day"].value,
                r.asset_materialization.metadata["rows"].value,
            )
            for r in records
        ),
        "data_versions": len({r.event_log_entry.tags.get("dagster/data_version") for r in records} - {None}),
        "materialized": sorted(instance.get_materialized_partitions(key)),
        "latest": latest.asset_materialization.partition,
        "run_events": sum(
            e.dagster_event_type == "ASSET_MATERIALIZATION" for e in instance.all_logs(latest.run_id)
        ),
    }


@pytest.mark.skipif(dagster.__version__ != "1.13.27", reason="the fix copies Dagster 1.13.27's methods")
def test_a_range_runs_materializations_are_stored_in_one_batch_as_one_by_one(tmp_path, monkeypatch) -> None:
    from dagster import DagsterInstance
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from alpha_assets.dagster_patches import install

    assert install()
    days = [f"2026-01-{d:02d}" for d in range(1, 31)]
    calls: list[tuple] = []
    batch = SqliteEventLogStorage.store_event_batch
    assert getattr(batch, "_alpha_batch", False)  # ours, not the base class's loop over store_event
    monkeypatch.setattr(
        SqliteEventLogStorage,
        "store_event_batch",
        lambda self, events: (calls.append((events[0].dagster_event_type, len(events))), batch(self, events)),
    )
    stored = {}
    for size in ("0", "1000"):  # 0: Dagster stores each event alone (store_event)
        monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", size)
        (tmp_path / size).mkdir()
        with DagsterInstance.local_temp(str(tmp_path / size)) as instance:
            _range_run(instance, days)
            stored[size] = _stored(instance)
    # the batched run wrote its 30 materializations in one call (its 30 planned events too, one by one)
    assert [n for kind, n in calls if kind == "ASSET_MATERIALIZATION"] == [30]
    one_by_one, batched = stored["0"], stored["1000"]
    assert batched == one_by_one
    assert batched["partitions"] == days == batched["materialized"] and batched["latest"] == days[-1]
    assert batched["metadata"] == [(d, d, 30) for d in days] and batched["run_events"] == 30
