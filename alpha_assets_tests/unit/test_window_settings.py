"""A run config that asks for more history than an asset's partition mapping reads fails in one line naming the
setting and the limit, before anything is read or written (issue 21 item 1: it used to compute over a silently
truncated window)."""

from __future__ import annotations

import polars as pl
import pytest
from dagster import Failure, build_asset_context

from partitions import FEATURE_LOOKBACK_SESSIONS, window_overrun
from resources.lake_resource import DeltaLakeResource


def test_the_rule_names_the_setting_the_value_and_the_limit():
    assert window_overrun("cov_window", 125, 125, "x") is None
    why = window_overrun("cov_window", 126, 125, "returns of raw/prices")
    assert why is not None and "\n" not in why
    assert "cov_window=126" in why and "at most 125 sessions" in why and "raw/prices" in why


@pytest.mark.parametrize(
    ("module", "asset", "config_class", "config", "inputs", "setting"),
    [
        (
            "alpha_assets.portfolio.assets",
            "target_weights",
            "PortfolioConfig",
            {"cov_window": FEATURE_LOOKBACK_SESSIONS + 1},
            ("prices", "universe"),
            f"cov_window={FEATURE_LOOKBACK_SESSIONS + 1}",
        ),
        (
            "alpha_assets.risk.assets",
            "risk_report",
            "RiskConfig",
            {"var_window": 250},
            ("weights", "prices"),
            "var_window=250",
        ),
        (
            "alpha_assets.features.matrix",
            "feature_matrix",
            "FeatureMatrixConfig",
            {"history_sessions": 250},
            ("price_features",),
            "history_sessions=250",
        ),
    ],
)
def test_a_window_above_its_mapping_fails_before_reading(
    tmp_path, module, asset, config_class, config, inputs, setting
):
    import importlib

    mod = importlib.import_module(module)
    fn = getattr(mod, asset)
    cfg = getattr(mod, config_class)(**config)  # the asset's own Config, with the oversize setting
    ctx = build_asset_context(partition_key="2025-06-02")
    with pytest.raises(Failure, match=setting) as e:
        out = fn(
            ctx,
            config=cfg,
            lake_store=DeltaLakeResource(lake_root=str(tmp_path)),
            **dict.fromkeys(inputs, pl.DataFrame()),
        )
        if out is not None and not isinstance(out, pl.DataFrame):
            list(out)  # a generator asset runs when iterated
    assert "\n" not in e.value.description
    assert not any(tmp_path.iterdir())  # nothing read or written
