"""Ingestion's part of the code location: the universe and prices, and one landing sensor per vendor prefix
(the alt-data prefixes included: every sensor that watches the landing zone lives here)."""

from __future__ import annotations

from dagster import Definitions

from alpha_assets.ingestion.assets import prices, universe
from alpha_assets.ingestion.sensors import vendor_sensors

ASSETS = [universe, prices]
defs = Definitions(assets=ASSETS, sensors=vendor_sensors)
