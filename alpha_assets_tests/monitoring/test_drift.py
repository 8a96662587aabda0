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
    assert table.columns == ["feature", "psi", "drift", "values", "observations"]
    assert table["values"].to_list() == [500, 500]
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


def test_feature_psi_against_a_kept_reference_is_feature_psi_exactly():
    """The reference kept with a model (JSON) gives the same PSI, to the last bit, as the training rows."""
    import json

    from alpha_assets.lib.monitoring.drift import feature_psi_against, feature_references

    rng = np.random.default_rng(3)
    n = 4000
    train = pl.DataFrame(
        {
            "cont": rng.normal(size=n),
            "disc": rng.integers(0, 3, n).astype(float),
            "gappy": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
            "empty": np.full(n, np.nan),
        }
    )
    current = pl.DataFrame(
        {
            "cont": rng.normal(0.5, size=500),
            "disc": rng.integers(0, 4, 500).astype(float),
            "gappy": rng.normal(size=500),
            "empty": rng.normal(size=500),
        }
    )
    feats = ["cont", "disc", "gappy", "empty"]
    kept = json.loads(json.dumps(feature_references(train, feats)))
    assert kept["empty"] is None
    got, want = feature_psi_against(kept, current, feats), feature_psi(train, current, feats)
    assert got["feature"].to_list() == want["feature"].to_list()
    assert got["psi"].to_list()[:3] == want["psi"].to_list()[:3]  # bit for bit
    assert got["psi"][3] is None and want["psi"][3] is None  # not computed: null
    assert got["drift"].to_list() == want["drift"].to_list() == [True, True, False, False]


def test_psi_of_a_small_sample_is_not_computed_and_is_not_drift():
    """5 names with tank data: PSI of 5 values from the training distribution itself averages ~4.7 (it measured the
    sample size and flagged every sparse alt feature daily). Below MIN_PSI_VALUES it is NaN, and NaN is not drift."""
    from alpha_assets.lib.monitoring.drift import MIN_PSI_VALUES, feature_psi_against, feature_references

    rng = np.random.default_rng(7)
    train = pl.DataFrame({"tanks": rng.normal(size=5000), "prices": rng.normal(size=5000)})
    refs = feature_references(train, ["tanks", "prices"])
    day = pl.DataFrame({"tanks": [*rng.normal(size=5), *[None] * 295], "prices": rng.normal(size=300)})
    assert psi(train["tanks"].to_numpy(), rng.normal(size=5)) > 1  # what it used to report
    table = feature_psi_against(refs, day, ["tanks", "prices"])
    rows = {r["feature"]: r for r in table.to_dicts()}
    assert rows["tanks"]["psi"] is None and rows["tanks"]["drift"] is False and rows["tanks"]["values"] == 5
    assert rows["prices"]["psi"] < 0.1 and rows["prices"]["values"] == 300
    shifted = day.with_columns(pl.col("prices") + 1.0)
    assert feature_psi_against(refs, shifted, ["prices"])["drift"].to_list() == [
        True
    ]  # real drift still shows
    assert feature_psi_against(refs, day.head(MIN_PSI_VALUES - 1), ["prices"])["psi"][0] is None
    assert math.isfinite(feature_psi_against(refs, day.head(MIN_PSI_VALUES), ["prices"])["psi"][0])


def test_pooled_days_give_the_psi_of_their_rows_together():
    """feature_drift adds the days' bin counts of its 20-session window: the same PSI as the rows concatenated."""
    from alpha_assets.lib.monitoring.drift import (
        feature_counts,
        feature_psi_against,
        feature_psi_from_counts,
        feature_references,
    )

    rng = np.random.default_rng(8)
    feats = ["a", "b", "none"]
    refs = feature_references(
        pl.DataFrame(
            {"a": rng.normal(size=3000), "b": rng.gamma(2.0, size=3000), "none": [None] * 3000},
            schema={"a": pl.Float64, "b": pl.Float64, "none": pl.Float64},
        ),
        feats,
    )
    days = [
        pl.DataFrame(
            {"a": rng.normal(0.1 * i, size=40), "b": rng.gamma(2.0, size=40), "none": rng.normal(size=40)}
        )
        for i in range(5)
    ]
    pooled = dict.fromkeys(feats)
    for day in days:
        for f, c in feature_counts(refs, day, feats).items():
            if c is not None:
                pooled[f] = c if pooled[f] is None else pooled[f] + c
    got = feature_psi_from_counts(refs, pooled, feats)
    want = feature_psi_against(refs, pl.concat(days), feats)
    assert got["psi"].to_list()[:2] == want["psi"].to_list()[:2]
    assert got["values"].to_list() == [200, 200, 0] and got["psi"][2] is None
    assert all(feature_psi_against(refs, d, feats)["psi"][0] is None for d in days)  # 40 a day: too few alone


def test_a_value_carried_forward_is_one_observation():
    """A filing score carried forward for weeks is one observation, however many rows repeat it: the 20-session
    pool of a quarterly feature is a few dozen observations, too few for a PSI, though it has hundreds of rows."""
    from alpha_assets.lib.monitoring.drift import (
        feature_counts,
        feature_psi_from_counts,
        feature_references,
        new_observations,
    )

    days = sessions(30)
    rng = np.random.default_rng(9)
    rows = []
    for t in range(20):
        filing = rng.normal()
        for i, d in enumerate(days):
            if i == 15 and t < 10:  # half the names publish a new filing mid-way
                filing = rng.normal()
            rows.append(
                {
                    "trade_date": d,
                    "ticker": f"T{t}",
                    "filing": filing,
                    "ret": rng.normal(),
                    "gap": None if i % 2 else rng.normal(),
                }
            )
    frame = pl.DataFrame(rows)
    fresh = new_observations(frame, ["filing", "ret", "gap"]).sort("trade_date")
    assert fresh["filing"].to_list() == [20] + [0] * 14 + [10] + [0] * 14
    assert fresh["ret"].to_list() == [20] * 30  # a price feature is new every day
    assert fresh["gap"].to_list() == [20 if i % 2 == 0 else 0 for i in range(30)]  # nulls are not values

    refs = feature_references(
        pl.DataFrame(
            {"filing": rng.normal(size=2000), "ret": rng.normal(size=2000), "gap": rng.normal(size=2000)}
        ),
        ["filing", "ret", "gap"],
    )
    counts = feature_counts(refs, frame, ["filing", "ret", "gap"])
    observed = {f: int(fresh[f].sum()) for f in ["filing", "ret", "gap"]}
    table = {
        r["feature"]: r
        for r in feature_psi_from_counts(
            refs, counts, ["filing", "ret", "gap"], observations=observed
        ).to_dicts()
    }
    assert (table["filing"]["values"], table["filing"]["observations"]) == (600, 30)
    assert table["filing"]["psi"] is None and not table["filing"]["drift"]
    assert table["ret"]["observations"] == 600 and table["ret"]["psi"] < 0.1
    assert table["gap"]["observations"] == 300 and math.isfinite(table["gap"]["psi"])


def test_drift_reference_is_computed_once_and_kept_with_the_model(tmp_path):
    """feature_drift's training side: computed from the lake the first time, then read from the model's MLflow run
    (a day no longer needs a year of feature rows); recomputed when a feature is new."""
    import logging
    import shutil
    from types import SimpleNamespace

    from alpha_assets.lib.monitoring.drift import feature_references
    from alpha_assets.monitoring.assets import DRIFT_REFERENCE, _drift_reference
    from partitions.calendar import sessions_between, shift_sessions
    from resources.lake import DeltaLake
    from resources.model_registry import ModelRegistry

    through = date(2024, 6, 28)
    days = sessions_between(shift_sessions(through, -260), through)
    rng = np.random.default_rng(5)
    rows = pl.DataFrame(
        {
            "trade_date": [d for d in days for _ in range(40)],
            "ticker": [f"T{i:02d}" for i in range(40)] * len(days),
            "mom_60_5": rng.normal(size=40 * len(days)),
            "vol_20": rng.gamma(2.0, size=40 * len(days)),
        }
    )
    lake = DeltaLake(tmp_path / "lake")
    lake.write_window("features", "price_features", rows, days[0], days[-1])
    registry = ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
        artifact_root=str(tmp_path / "mlflow" / "artifacts"),
    )
    weights = tmp_path / "model.txt"
    weights.write_text("weights")
    mv = registry.log_model(
        "lightgbm_base", "t", {}, {"ic": 0.05}, weights, version_tags={"trained_through": through.isoformat()}
    )
    context = SimpleNamespace(log=logging.getLogger("test"))
    m = SimpleNamespace(name=mv.name, version=mv.version)

    first = _drift_reference(context, lake, registry, m, ["mom_60_5"])
    window = rows.filter(pl.col("trade_date") >= shift_sessions(through, -251))
    assert first == feature_references(window, ["mom_60_5"])  # the 252 sessions it was trained through
    kept = registry.run_json(mv.run_id, DRIFT_REFERENCE)
    assert kept["window"] == [shift_sessions(through, -251).isoformat(), through.isoformat()]

    shutil.rmtree(tmp_path / "lake")  # no training rows left: the kept reference must serve
    assert _drift_reference(context, lake, registry, m, ["mom_60_5"]) == first
    with pytest.raises(FileNotFoundError):  # a feature the kept reference lacks needs the rows again
        _drift_reference(context, lake, registry, m, ["mom_60_5", "vol_20"])
    lake.write_window("features", "price_features", rows, days[0], days[-1])
    both = _drift_reference(context, lake, registry, m, ["mom_60_5", "vol_20"])
    assert set(both) == {"mom_60_5", "vol_20"} and both["mom_60_5"] == first["mom_60_5"]
    assert set(registry.run_json(mv.run_id, DRIFT_REFERENCE)["features"]) == {"mom_60_5", "vol_20"}

    registry.client().log_text(mv.run_id, '{"format": 1, "feat', DRIFT_REFERENCE)  # a torn write
    assert _drift_reference(context, lake, registry, m, ["mom_60_5", "vol_20"]) == both  # recomputed
    assert registry.run_json(mv.run_id, DRIFT_REFERENCE)["features"] == both  # and replaced
