"""Explanations: SHAP values add up to the score for every model kind, LIME rules, plots and what-if scores."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.models.explain import (
    lime_frame,
    predict_function,
    shap_frame,
    summary_plot_png,
    top_features,
    waterfall_png,
    what_if,
)

FEATURES = [f"feat_{i:02d}" for i in range(8)]
ADDITIVITY_TOL = 1e-5  # absolute, on scores of order 0.1-1: float32 tree sums / float64 permutation sums


def training_rows(rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(FEATURES))).astype(np.float32)
    y = 0.6 * X[:, 0] - 0.4 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3] + 0.1 * rng.normal(size=rows)
    return X, y.astype(np.float32)


def keys_for(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trade_date": [date(2024, 3, 1) + timedelta(days=i // 5) for i in range(rows)],
            "ticker": [f"T{i % 5}" for i in range(rows)],
        }
    )


def fit(kind: str):
    X, y = training_rows()
    if kind == "xgboost":
        import xgboost as xgb

        return xgb.XGBRegressor(n_estimators=30, max_depth=3, n_jobs=1, random_state=7).fit(X, y)
    if kind == "lightgbm":
        import lightgbm as lgb

        return lgb.LGBMRegressor(n_estimators=30, num_leaves=8, n_jobs=1, random_state=7, verbose=-1).fit(
            X, y
        )
    if kind == "catboost":
        from catboost import CatBoostRegressor

        model = CatBoostRegressor(
            iterations=30, depth=3, thread_count=1, random_seed=7, verbose=False, allow_writing_files=False
        )
        return model.fit(X, y)
    import torch

    torch.manual_seed(7)
    net = torch.nn.Sequential(torch.nn.Linear(len(FEATURES), 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y).unsqueeze(1)
    for _ in range(100):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(net(xt), yt).backward()
        optimiser.step()
    return net.eval()


def assert_additive(frame: pl.DataFrame) -> None:
    totals = frame.group_by("trade_date", "ticker").agg(
        (pl.col("shap_value").sum() + pl.col("base_value").first() - pl.col("prediction").first()).alias(
            "gap"
        )
    )
    assert totals["gap"].abs().max() < ADDITIVITY_TOL


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "catboost", "mlp"])
def test_shap_values_plus_base_add_up_to_the_prediction(kind):
    model = fit(kind)
    X, _ = training_rows()
    rows = X[:20]
    frame = shap_frame(model, kind, rows, FEATURES, keys_for(20), background=X, nsamples=30, seed=7)
    assert frame.columns == [
        "trade_date",
        "ticker",
        "model",
        "feature",
        "shap_value",
        "base_value",
        "prediction",
    ]
    assert frame.height == 20 * len(FEATURES)
    assert frame["model"].unique().to_list() == [kind]
    np.testing.assert_allclose(
        frame.filter(pl.col("feature") == FEATURES[0])["prediction"].to_numpy(),
        predict_function(model, kind)(rows),
        atol=1e-6,
    )
    assert_additive(frame)
    # the planted driver feat_00 matters more than the unused feat_07
    mean_abs = dict(frame.group_by("feature").agg(pl.col("shap_value").abs().mean()).iter_rows())
    assert mean_abs["feat_00"] > 5 * mean_abs["feat_07"]


def test_mlp_shap_of_a_linear_network_is_weight_times_distance_from_the_background_mean():
    import torch

    torch.manual_seed(0)
    linear = torch.nn.Linear(len(FEATURES), 1).eval()
    X, _ = training_rows()
    background = X[:25]  # no more rows than nsamples: every row is used, so the expectation is known
    frame = shap_frame(linear, "mlp", X[100:105], FEATURES, keys_for(5), background=background, nsamples=25)
    weights = linear.weight.detach().numpy().reshape(-1).astype(np.float64)
    expected = weights * (X[100:105].astype(np.float64) - background.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(frame["shap_value"].to_numpy().reshape(5, -1), expected, atol=1e-6)
    assert_additive(frame)


def test_mlp_shap_is_reproducible_with_the_same_seed():
    model = fit("mlp")
    X, _ = training_rows()
    first = shap_frame(model, "mlp", X[:5], FEATURES, keys_for(5), background=X, seed=11)
    again = shap_frame(model, "mlp", X[:5], FEATURES, keys_for(5), background=X, seed=11)
    assert first.equals(again)


def test_shap_of_a_learner_follows_its_best_iteration():
    from alpha_assets.lib.models.learners import Learner, params_for

    X, y = training_rows()
    learner = Learner("xgboost", params_for("xgboost", "demo", {"n_estimators": 200}), threads=1)
    learner.fit(X[:300], y[:300], X[300:], y[300:], feature_names=FEATURES)
    frame = shap_frame(learner, "xgboost", X[:10], FEATURES, keys_for(10))
    np.testing.assert_allclose(
        frame.filter(pl.col("feature") == FEATURES[0])["prediction"].to_numpy(), learner.predict(X[:10])
    )
    assert_additive(frame)


def test_shap_frame_rejects_keys_that_do_not_match_the_rows():
    with pytest.raises(ValueError):
        shap_frame(fit("xgboost"), "xgboost", training_rows()[0][:5], FEATURES, keys_for(4))


def test_top_features_picks_the_largest_absolute_shap_per_ticker_day():
    frame = pl.DataFrame(
        {
            "trade_date": [date(2024, 3, 1)] * 4 + [date(2024, 3, 4)] * 4,
            "ticker": ["AAA"] * 8,
            "model": ["xgboost"] * 8,
            "feature": ["a", "b", "c", "d"] * 2,
            "shap_value": [0.1, -0.5, 0.3, 0.0, 0.2, 0.1, -0.05, -0.4],
            "base_value": [0.0] * 8,
            "prediction": [-0.1] * 4 + [-0.15] * 4,
        }
    )
    top = top_features(frame, n=2)
    assert top.filter(pl.col("trade_date") == date(2024, 3, 1))["feature"].to_list() == ["b", "c"]
    assert top.filter(pl.col("trade_date") == date(2024, 3, 4))["feature"].to_list() == ["d", "a"]
    assert top["rank"].to_list() == [1, 2, 1, 2]


def test_lime_gives_num_features_rules_per_explained_row():
    model = fit("lightgbm")
    X, _ = training_rows()
    predict = predict_function(model, "lightgbm")
    frame = lime_frame(
        predict, X[:200], X[:3], FEATURES, keys_for(3), num_features=4, seed=7, num_samples=500
    )
    assert frame.height == 3 * 4
    assert frame.group_by("ticker").len()["len"].to_list() == [4, 4, 4]
    assert set(frame.columns) >= {"feature_rule", "feature", "weight", "intercept", "local_prediction"}
    assert frame["rank"].to_list() == [1, 2, 3, 4] * 3
    assert all(f in rule for f, rule in zip(frame["feature"], frame["feature_rule"], strict=True))
    np.testing.assert_allclose(frame.unique("ticker", maintain_order=True)["prediction"], predict(X[:3]))
    # the planted driver is among each row's rules
    assert frame.filter(pl.col("feature") == "feat_00").height == 3
    again = lime_frame(
        predict, X[:200], X[:3], FEATURES, keys_for(3), num_features=4, seed=7, num_samples=500
    )
    assert again.equals(frame)


def test_plots_are_png_files(tmp_path):
    from PIL import Image

    X, _ = training_rows()
    frame = shap_frame(fit("catboost"), "catboost", X[:10], FEATURES, keys_for(10))
    summary = summary_plot_png(frame, max_features=5)
    waterfall = waterfall_png(frame, date(2024, 3, 1), "T0", "catboost", max_features=4)
    for png in (summary, waterfall):
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size[0] > 100
    assert list(tmp_path.iterdir()) == []  # pictures, not files
    with pytest.raises(ValueError):
        waterfall_png(frame, date(2024, 3, 1), "ZZZ", "catboost")


def test_what_if_moves_the_score_when_a_used_feature_changes():
    model = fit("xgboost")
    predict = predict_function(model, "xgboost")
    row = training_rows()[0][0]
    moved = what_if(predict, row, FEATURES, {"feat_00": 2.5})
    assert moved["base_score"] == pytest.approx(float(predict(row[None, :])[0]))
    assert moved["new_score"] > moved["base_score"]  # feat_00 carries a positive weight
    assert moved["changes"]["feat_00"]["to"] == 2.5
    unchanged = what_if(predict, row, FEATURES, {"feat_07": float(row[7])})
    assert unchanged["delta"] == 0.0
    with pytest.raises(KeyError):
        what_if(predict, row, FEATURES, {"not_a_feature": 1.0})
