"""The launchpad configs of the fund's rules are derived from the lib dataclasses (alpha_assets.lib_config): same
names (or the stated rename), same types, same defaults, and ``lib()`` gives the dataclass back with a run's values."""

from __future__ import annotations

import dataclasses

import pytest


def _derived():
    from alpha_assets.backtest.assets import BacktestConfig
    from alpha_assets.features.matrix import FeatureMatrixConfig, LeakageGateConfig
    from alpha_assets.lib.backtest.costs import CostModel
    from alpha_assets.lib.features.leakage import LeakageConfig
    from alpha_assets.lib.models.promotion import SequentialRule
    from alpha_assets.lib.portfolio import PortfolioLimits
    from alpha_assets.lib.risk import RiskLimits
    from alpha_assets.models.scoring import PromotionConfig
    from alpha_assets.portfolio.assets import PortfolioConfig
    from alpha_assets.risk.assets import RiskConfig

    return [
        (RiskConfig, RiskLimits, {}),
        (BacktestConfig, CostModel, {}),
        (PortfolioConfig, PortfolioLimits, {}),
        (LeakageGateConfig, LeakageConfig, {"z": "leak_z"}),
        (FeatureMatrixConfig, LeakageConfig, {"z": "leak_z"}),
        (PromotionConfig, SequentialRule, {"alpha": "significance"}),
    ]


@pytest.mark.parametrize("config, lib, rename", _derived(), ids=lambda x: getattr(x, "__name__", ""))
def test_a_derived_config_has_the_lib_defaults_and_builds_the_lib_rules(config, lib, rename) -> None:
    fields = config.model_fields
    carried = [f for f in dataclasses.fields(lib) if rename.get(f.name, f.name) in fields]
    assert len(carried) >= 3
    default = lib()
    for f in carried:
        assert fields[rename.get(f.name, f.name)].default == getattr(default, f.name), f.name
    # a run's value reaches the lib object; the fields the config does not carry keep the lib's defaults
    changed = carried[0]
    name = rename.get(changed.name, changed.name)
    value = getattr(default, changed.name) * 0.5
    built = config(**{name: value}).lib()
    assert isinstance(built, lib) and getattr(built, changed.name) == value
    assert dataclasses.replace(built, **{changed.name: getattr(default, changed.name)}) == default


def test_config_of_refuses_a_field_the_dataclass_does_not_have() -> None:
    from alpha_assets.lib.risk import RiskLimits
    from alpha_assets.lib_config import config_of

    with pytest.raises(ValueError, match="RiskLimits has no field var_limit"):
        config_of(RiskLimits, ("level", "var_limit"))


def test_the_fund_nav_is_one_number() -> None:
    from alpha_assets.backtest.assets import BacktestConfig
    from alpha_assets.lib.settings import NAV_USD
    from alpha_assets.portfolio.assets import OrdersConfig
    from alpha_assets.risk.assets import RiskConfig

    assert BacktestConfig().initial_capital == OrdersConfig().nav_usd == RiskConfig().nav_usd == NAV_USD


def test_the_calendar_rules_are_one_object_in_every_layer() -> None:
    import partitions
    from alpha_assets.lib.features import price_features
    from alpha_assets.lib.settings import FEATURE_LOOKBACK_SESSIONS, LABEL_HORIZONS, label_horizon_of
    from alpha_assets.models.common import TRAIN_LABEL
    from alpha_assets.models.training import BlockTrainingConfig

    assert partitions.LABEL_HORIZONS is price_features.LABEL_HORIZONS is LABEL_HORIZONS
    assert (
        partitions.FEATURE_LOOKBACK_SESSIONS == price_features.FEATURE_LOOKBACK == FEATURE_LOOKBACK_SESSIONS
    )
    # the walk-forward purge is checked against the horizon of the label the models train on
    assert BlockTrainingConfig().walk_forward().label_horizon == label_horizon_of(TRAIN_LABEL)
    assert [label_horizon_of(f"fwd_ret_{h}") for h in LABEL_HORIZONS] == list(LABEL_HORIZONS)
    with pytest.raises(
        ValueError, match="'fwd_ret_3' is not a label: one of fwd_ret_1, fwd_ret_5, fwd_ret_20"
    ):
        label_horizon_of("fwd_ret_3")
