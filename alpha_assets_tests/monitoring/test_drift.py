"""Monitoring statistics: PSI / CSI drift, rolling IC, IC-drop statuses and the retraining decision."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.monitoring.drift import (
    HealthThresholds,
    csi,
    feature_psi,
    ic_drop,
    importance_stability,
    needs_retraining,
    psi,
    rolling_ic,
)


def sessions(n: int) -> list[date]:
    return [date(2024, 1, 2) + timedelta(days=i) for i in range(n)]


def test_psi_is_near_zero_for_the_same_distribution_and_above_drift_for_a_shift():
    rng = np.random.default_rng(0)
    train = rng.normal(size=5000)
    assert psi(train, rng.normal(size=5000)) < 0.02
    assert psi(train, rng.normal(loc=0.8, size=5000)) > 0.2
    assert psi(train, rng.normal(scale=2.0, size=5000)) > 0.2


def test_psi_survives_empty_bins_discrete_values_and_nans():
    train = np.array([0.0, 0.0, 0.0, 1.0, 1.0, np.nan] * 100)
    assert psi(train, train) == pytest.approx(0.0)
    assert math.isfinite(psi(train, np.full(300, 5.0)))  # every current value in one bin: finite, large
    assert psi(train, np.full(300, 5.0)) > 0.2
    assert math.isnan(psi(train, np.array([np.nan])))


def test_feature_psi_flags_only_the_shifted_feature():
    rng = np.random.default_rng(1)
    train = pl.DataFrame({"mom_60_5": rng.normal(size=2000), "vol_20": rng.gamma(2.0, size=2000)})
    current = pl.DataFrame({"mom_60_5": rng.normal(size=500), "vol_20": rng.gamma(2.0, size=500) + 2.0})
    table = feature_psi(train, current, ["mom_60_5", "vol_20"])
    assert table.columns == ["feature", "psi", "drift"]
    assert dict(table.select("feature", "drift").iter_rows()) == {"mom_60_5": False, "vol_20": True}


def test_csi_compares_score_distributions():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=3000)
    assert csi(scores, rng.normal(size=3000)) < 0.02
    assert csi(scores, 0.3 * rng.normal(size=3000)) > 0.2


def test_rolling_ic_is_the_mean_of_the_last_window_sessions_per_model():
    days = sessions(5)
    daily = pl.DataFrame(
        {
            "trade_date": days * 2,
            "model": ["alpha_xgboost"] * 5 + ["alpha_mlp"] * 5,
            "ic": [0.1, 0.2, 0.3, 0.4, 0.5, -0.1, -0.1, -0.1, -0.1, -0.1],
        }
    )
    out = rolling_ic(daily, window=3)
    assert out.columns == ["trade_date", "model", "ic_3"]
    xgb = out.filter(pl.col("model") == "alpha_xgboost")["ic_3"].to_list()
    assert xgb[:2] == [None, None]
    assert xgb[2:] == pytest.approx([0.2, 0.3, 0.4])
    assert out.filter(pl.col("model") == "alpha_mlp")["ic_3"].to_list()[2:] == pytest.approx([-0.1] * 3)
    assert "ic_30" in rolling_ic(daily).columns


@pytest.mark.parametrize(
    ("rolling", "status"),
    [(0.05, "ok"), (0.046, "ok"), (0.044, "warn"), (0.041, "warn"), (0.039, "retrain"), (-0.01, "retrain")],
)
def test_ic_drop_status_at_the_thresholds(rolling, status):
    verdict = ic_drop(rolling, 0.05)
    assert verdict["status"] == status
    assert verdict["drop_share"] == pytest.approx((0.05 - rolling) / 0.05)


def test_ic_drop_without_a_positive_training_ic_asks_for_retraining():
    verdict = ic_drop(0.02, 0.0)
    assert verdict["status"] == "retrain" and math.isnan(verdict["drop_share"])
    assert ic_drop(0.08, 0.05)["status"] == "ok"  # live IC above training is a negative drop


def test_importance_stability_is_the_rank_correlation_of_importances():
    a = {"mom_60_5": 0.5, "vol_20": 0.3, "call_sentiment": 0.15, "ret_1": 0.05}
    assert importance_stability(a, {k: 2 * v for k, v in a.items()}) == pytest.approx(1.0)
    reversed_b = {"mom_60_5": 0.05, "vol_20": 0.15, "call_sentiment": 0.3, "ret_1": 0.5}
    assert importance_stability(a, reversed_b) == pytest.approx(-1.0)
    assert math.isnan(importance_stability({"a": 1.0}, {"a": 1.0}))


def health(ic_path: np.ndarray, training_ic: float = 0.05, max_psi: float = 0.05) -> pl.DataFrame:
    daily = pl.DataFrame({"trade_date": sessions(ic_path.size), "model": "alpha_lightgbm", "ic": ic_path})
    return (
        rolling_ic(daily, window=30)
        .rename({"ic_30": "rolling_ic"})
        .with_columns(pl.lit(training_ic).alias("training_ic"), pl.lit(max_psi).alias("max_psi"))
    )


def test_needs_retraining_fires_on_an_ic_collapse():
    rng = np.random.default_rng(3)
    ic = np.concatenate([0.05 + 0.01 * rng.normal(size=60), 0.005 + 0.01 * rng.normal(size=40)])
    retrain, reasons = needs_retraining(health(ic), HealthThresholds())
    assert retrain
    assert len(reasons) == 1 and "alpha_lightgbm" in reasons[0] and "IC" in reasons[0]


def test_needs_retraining_stays_quiet_on_a_stable_series():
    rng = np.random.default_rng(4)
    ic = 0.05 + 0.01 * rng.normal(size=100)
    assert needs_retraining(health(ic), HealthThresholds()) == (False, [])


def test_needs_retraining_waits_for_min_sessions_before_judging_ic():
    rows = pl.DataFrame(
        {"trade_date": sessions(35), "model": "alpha_mlp", "rolling_ic": -0.02, "training_ic": 0.05}
    )
    assert needs_retraining(rows, HealthThresholds(min_sessions=60)) == (False, [])
    assert needs_retraining(rows, HealthThresholds(min_sessions=30))[0] is True


def test_needs_retraining_fires_on_feature_drift():
    rng = np.random.default_rng(5)
    retrain, reasons = needs_retraining(health(0.05 + 0.01 * rng.normal(size=40), max_psi=0.35))
    assert retrain and "drift" in reasons[0]
