"""ConfigurableResources, one class per external system, with local and prod variants.

The names below are imported on first access (PEP 562): ``resources.lake`` and ``resources.sql`` (``alpha sql``)
load without Dagster, which the resource classes need (~2 s of imports)."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DeltaIOManager": "resources.io_manager",
    "DeltaLake": "resources.lake",
    "PartitionWindowError": "resources.lake",
    "SchemaDriftError": "resources.lake",
    "WindowChunks": "resources.lake",
    "DeltaLakeResource": "resources.lake_resource",
    "LandedFile": "resources.landing",
    "LocalVendorLanding": "resources.landing",
    "S3VendorLanding": "resources.landing",
    "VendorLanding": "resources.landing",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
