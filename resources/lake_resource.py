"""Dagster resources around the Delta store and the ALPHA_HOME folders."""

from __future__ import annotations

import json

from dagster import ConfigurableResource

from resources.lake import DeltaLake


class DeltaLakeResource(ConfigurableResource):
    """Direct access to the lake (reads of an asset's own previous rows, audit of Delta versions)."""

    lake_root: str
    storage_options_json: str = "{}"

    @property
    def lake(self) -> DeltaLake:
        return DeltaLake(self.lake_root, json.loads(self.storage_options_json) or None)
