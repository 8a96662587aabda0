"""Two fixes to Dagster's SQLite event-log storage, installed when the code location loads
(``alpha_assets.definitions``). Both matter for range runs (one run over hundreds of sessions), which write one
event per partition.

1. A range run plans each asset check once for its whole partition subset; the storage then writes one row per
   partition into ``asset_check_executions``, each holding the planned event, and Dagster 1.13.27 serializes that
   event again for every row. On the demo's ``daily_data`` run (23 checks x 504 sessions) that was about 1.2 CPU
   seconds per check, 194 s of wall time before the first step on a loaded 2-core machine. The fix serializes the
   event once per check and writes the same rows (the same columns, the same serialized event in each).
2. A step's materializations of a range (504 events for one asset of the demo's data run) were stored one by one:
   for each, the SQLite storage creates two SQLAlchemy engines (the run's shard and the index shard), connects,
   commits and disposes of them. Dagster batches them when ``DAGSTER_EVENT_BATCH_SIZE`` is set, but only its
   Postgres storage has a batch write (the base class loops over ``store_event``). ``store_event_batch`` here
   writes a batch of one kind (materializations or observations) as the Postgres storage does: every event in
   the run's shard in one transaction, then in the index shard with their tags in one transaction, and the asset's
   latest-event entry from the batch's last event of each asset. The rows are the ones ``store_event`` writes.
   ``install`` sets ``DAGSTER_EVENT_BATCH_SIZE`` (unless set) so runs use it.

Installed only on the Dagster version it copies (``PATCHED_VERSION``); any other version keeps its own methods.
"""

from __future__ import annotations

PATCHED_VERSION = "1.13.27"


def install() -> bool:
    """Install the fix; returns whether it is in place (False on another Dagster version)."""
    import dagster
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    current = SqlEventLogStorage._store_asset_check_evaluation_planned
    if getattr(current, "_alpha_serialize_once", False):
        return True
    if dagster.__version__ != PATCHED_VERSION:
        return False
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
    from dagster._serdes import serialize_value

    def _store_asset_check_evaluation_planned(self, event, event_id):
        planned = event.dagster_event.event_specific_data
        partition_keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        serialized = serialize_value(event)  # Dagster's own serializes this once per partition
        timestamp = self._event_insert_timestamp(event)
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert().values(
                    [
                        dict(
                            asset_key=planned.asset_key.to_string(),
                            check_name=planned.check_name,
                            partition=partition_key,
                            run_id=event.run_id,
                            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                            evaluation_event=serialized,
                            evaluation_event_timestamp=timestamp,
                            evaluation_event_storage_id=event_id,
                        )
                        for partition_key in partition_keys
                    ]
                )
            )

    _store_asset_check_evaluation_planned._alpha_serialize_once = True
    SqlEventLogStorage._store_asset_check_evaluation_planned = _store_asset_check_evaluation_planned
    _install_batch_writes()
    return True


EVENT_BATCH_SIZE = "1000"  # events of one step's output per batch (a range run: one per partition)


def _install_batch_writes() -> None:
    import os

    from dagster import DagsterEventType
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.sqlalchemy_compat import db_result

    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    if getattr(SqliteEventLogStorage.store_event_batch, "_alpha_batch", False):
        return
    looped = SqliteEventLogStorage.store_event_batch  # the base class's: store_event for each
    kinds = ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION})

    def store_event_batch(self, events) -> None:
        if not events or not all(e.is_dagster_event for e in events):
            return looped(self, events)
        if {e.get_dagster_event().event_type for e in events} not in kinds or len(
            {e.run_id for e in events}
        ) > 1:
            return looped(self, events)
        events = [e for e in events if not e.get_dagster_event().is_asset_failed_to_materialize]
        if not events:
            return None
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, ids)
            last = {e.get_dagster_event().asset_key: (e, i) for e, i in zip(events, ids, strict=True)}
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)
        return None

    store_event_batch._alpha_batch = True
    SqliteEventLogStorage.store_event_batch = store_event_batch
