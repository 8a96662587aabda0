"""ConfigurableResources, one class per external system, with local and prod variants."""

from resources.io_manager import DeltaIOManager
from resources.lake import DeltaLake, PartitionWindowError, SchemaDriftError, WindowChunks
from resources.lake_resource import DeltaLakeResource
from resources.landing import LandedFile, LocalVendorLanding, S3VendorLanding, VendorLanding

__all__ = [
    "DeltaIOManager", "DeltaLake", "DeltaLakeResource", "LandedFile", "LocalVendorLanding", "PartitionWindowError",
    "S3VendorLanding", "SchemaDriftError", "VendorLanding", "WindowChunks",
]  # fmt: skip
