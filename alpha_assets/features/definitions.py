"""Features' part of the code location: price features, forward-return labels, the feature matrix."""

from __future__ import annotations

from dagster import Definitions

from alpha_assets.features.assets import labels, price_features
from alpha_assets.features.matrix import feature_matrix

ASSETS = [price_features, labels, feature_matrix]
defs = Definitions(assets=ASSETS)
