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
