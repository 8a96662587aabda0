"""One fix to Dagster's event-log storage, installed when the code location loads (``alpha_assets.definitions``).

A range run plans each asset check once for its whole partition subset; the storage then writes one row per
partition into ``asset_check_executions``, each holding the planned event, and Dagster 1.13.27 serializes that
event again for every row. On the demo's ``daily_data`` run (23 checks x 504 sessions) that was about 1.2 CPU
seconds per check, 194 s of wall time before the first step on a loaded 2-core machine. The fix serializes the
event once per check and writes the same rows (the same columns, the same serialized event in each).

Installed only on the Dagster version it copies (``PATCHED_VERSION``); any other version keeps its own method.
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
    return True
