"""DeltaIOManager: assets return polars frames; this writes them to ``<lake>/<layer>/<asset>``.

The layer is the asset key's first part (``raw``, ``features``...). A partitioned output replaces exactly the
run's partition time window — one day, or the whole range of a single-run backfill (we do not use the official
dagster-deltalake IO manager, which reduces a window to its first day: dagster issue 34064). An input is read for
the upstream time window the partition mapping gives (lookbacks, label horizons), pushed down to Delta. An asset whose
window is too large for one frame returns ``WindowChunks``: one transaction per chunk, memory bounded by a chunk.
"""

from __future__ import annotations

import json

import polars as pl
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from partitions import window_dates
from resources.lake import DeltaLake, WindowChunks


class DeltaIOManager(ConfigurableIOManager):
    lake_root: str
    storage_options_json: str = "{}"

    @property
    def lake(self) -> DeltaLake:
        return DeltaLake(self.lake_root, json.loads(self.storage_options_json) or None)

    @staticmethod
    def _table(key) -> tuple[str, str]:
        path = key.path
        return (path[0], path[-1]) if len(path) > 1 else ("default", path[0])

    def handle_output(self, context: OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        if isinstance(obj, WindowChunks):
            self._handle_chunks(context, obj)
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, expected polars"
            )
        layer, asset = self._table(context.asset_key)
        start = end = None
        if context.has_asset_partitions:
            tw = context.asset_partitions_time_window
            start, end = window_dates(tw.start, tw.end)
        res = self.lake.write_window(layer, asset, obj, start, end)
        context.add_output_metadata(
            {
                "table": f"{layer}.{asset}",
                "delta_version": res.version,
                "rows": res.rows,
                "window": f"{start}..{end}" if start else "full table",
                "uri": MetadataValue.path(self.lake.uri(layer, asset)),
            }
        )

    def _handle_chunks(self, context: OutputContext, obj: WindowChunks) -> None:
        layer, asset = self._table(context.asset_key)
        if not context.has_asset_partitions:
            raise TypeError(f"{context.asset_key.to_user_string()}: chunks need a partitioned asset")
        tw = context.asset_partitions_time_window
        start, end = window_dates(tw.start, tw.end)
        res = self.lake.write_chunks(layer, asset, obj.frames, start, end)
        context.add_output_metadata(
            {
                "table": f"{layer}.{asset}",
                "delta_version": res.version,
                "rows": res.rows,
                "window": f"{start}..{end}",
                "transactions": res.transactions,
                "uri": MetadataValue.path(self.lake.uri(layer, asset)),
                **(obj.metadata() if obj.metadata else {}),
            }
        )

    def load_input(self, context: InputContext) -> pl.DataFrame:
        key = context.upstream_output.asset_key if context.upstream_output else context.asset_key
        layer, asset = self._table(key)
        start = end = None
        if context.has_asset_partitions:
            tw = context.asset_partitions_time_window
            start, end = window_dates(tw.start, tw.end)
        try:  # one open of the table: the read itself finds a missing one
            df, version = self.lake.read_pinned(layer, asset, start, end)
        except FileNotFoundError:
            if self.lake.exists(layer, asset):  # a file missing inside a table: not "materialize it first"
                raise
            raise FileNotFoundError(
                f"Delta table {layer}.{asset} does not exist yet: materialize it first"
            ) from None
        _remember_input_version(context, f"{layer}.{asset}", version)
        return df


# The Delta version each input of a running step was read at, per op (for its run). The IO manager reads an
# asset's inputs before its body runs; an asset that records its inputs' versions (the weights audit) takes them
# from here (``input_versions``) rather than asking the lake afterwards, when another run may have committed a
# newer version. Loading and computing a step happen in one process under every executor used here. One entry per
# op: an op's entry from an earlier run in this process (most ops never ask) is dropped when it loads again.
_INPUT_VERSIONS: dict[str, tuple[str, dict[str, int]]] = {}


def _remember_input_version(context: InputContext, table: str, version: int) -> None:
    # (not add_input_metadata: it makes an asset observation for one partition, and a range run's input has many)
    run_id, op = context.step_context.run_id, context.op_def.name
    if op not in _INPUT_VERSIONS or _INPUT_VERSIONS[op][0] != run_id:
        _INPUT_VERSIONS[op] = (run_id, {})
    _INPUT_VERSIONS[op][1][table] = version
    context.log.debug(f"read {table} at Delta version {version}")


def input_versions(run_id: str, op_name: str) -> dict[str, int]:
    """``layer.asset`` -> the Delta version each IO-manager input of this run's op was read at (forgotten once
    asked). An asset calls it with ``context.run.run_id, context.op_def.name``."""
    entry = _INPUT_VERSIONS.get(op_name)
    if entry is None or entry[0] != run_id:
        return {}
    del _INPUT_VERSIONS[op_name]
    return entry[1]
