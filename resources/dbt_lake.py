"""dbt-duckdb plugin: a dbt source is a Delta table of the lake, registered as the pyarrow dataset of its current
version — the same read-only route as ``alpha sql`` (DuckDB's ``delta`` extension downloads at INSTALL time and
fails offline). Declared in dbt/profiles.yml (``module: resources.dbt_lake``); imported only by dbt.

A source's config names its table (``lake_table: <layer>/<asset>``); ``columns_if_missing`` (column -> pyarrow
type name) makes a table that does not exist yet read as empty instead of failing the run.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]):
        import json

        self.lake_root = str(plugin_config["lake_root"]).rstrip("/")
        options = plugin_config.get("storage_options") or "{}"
        self.storage_options = json.loads(options) if isinstance(options, str) else dict(options)

    def load(self, source_config):
        import pyarrow as pa
        from deltalake import DeltaTable

        uri = f"{self.lake_root}/{source_config['lake_table']}"
        options = self.storage_options or None
        if DeltaTable.is_deltatable(uri, storage_options=options):
            return DeltaTable(uri, storage_options=options).to_pyarrow_dataset()
        columns = source_config.get("columns_if_missing")
        if columns is None:
            raise FileNotFoundError(
                f"no Delta table at {uri}: materialize {source_config['lake_table']} first"
            )
        types = {"timestamp": pa.timestamp("us", tz="UTC")}
        return pa.table(
            {c: pa.array([], type=types.get(t) or pa.type_for_alias(t)) for c, t in columns.items()}
        )

    def default_materialization(self):
        return "view"
