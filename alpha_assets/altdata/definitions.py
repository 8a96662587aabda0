"""Alternative data's part of the code location: the car detector, imagery, text and web assets, their
point-in-time join, the web vendor's sensor; and, separately, the demo-only truth checks (``demo_defs``)."""

from __future__ import annotations

from dagster import Definitions

from alpha_assets.altdata.features import alt_features
from alpha_assets.altdata.text_assets import TEXT_ASSETS
from alpha_assets.altdata.truth import TRUTH_CHECKS
from alpha_assets.altdata.vision_assets import car_detector, oil_tank_levels, parking_lot_counts
from alpha_assets.altdata.web_assets import WEB_ASSETS, WEB_SENSORS

ALT_ASSETS = [parking_lot_counts, oil_tank_levels, *TEXT_ASSETS, *WEB_ASSETS, alt_features]
defs = Definitions(assets=[*ALT_ASSETS, car_detector], sensors=WEB_SENSORS)
# The local deployment only: error against the demo world's truth (needs the ``ground_truth`` resource).
demo_defs = Definitions(asset_checks=TRUTH_CHECKS)
