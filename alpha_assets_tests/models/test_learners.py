"""The four learners find a planted signal out of sample, find nothing in noise, and are reproducible."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.models.learners import MODEL_KINDS, Learner, make_learner, params_for
from alpha_assets.lib.models.metrics import daily_ic, ic_summary
from alpha_assets.lib.models.walk_forward import WalkForwardConfig, block_split

from .synthetic import make_panel

# small budgets: the behaviour, not the fund's hyper-parameters, is under test
SMALL = {
    "xgboost": {"n_estimators": 60, "learning_rate": 0.1, "max_depth": 3},
    "lightgbm": {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 7},
    "catboost": {"iterations": 60, "learning_rate": 0.2, "depth": 3},
    "mlp": {"hidden": (32, 16), "max_epochs": 6, "patience": 2, "batch_size": 256},
}
CFG = WalkForwardConfig(train_sessions=180, validation_sessions=30, purge_sessions=5, label_horizon=5)
FEATURES = [f"f{i:03d}" for i in range(8)]


def _fit_and_score(panel: pl.DataFrame, kind: str, seed: int = 7) -> tuple[Learner, pl.DataFrame]:
    sessions = panel["trade_date"].unique().sort().to_list()
    split = block_split(sessions, sessions[200], sessions[-1], CFG)

    def part(dates):
        rows = panel.filter(pl.col("trade_date").is_in(dates))
        return rows, rows.select(FEATURES).to_numpy(), rows["label"].to_numpy()

    _, X, y = part(split.fit_dates)
    _, Xv, yv = part(split.validation_dates)
    test, Xt, _ = part(split.test_dates)
    learner = make_learner(kind, seed=seed, params=SMALL[kind], threads=1).fit(
        X, y, Xv, yv, feature_names=FEATURES
    )
    return learner, test.with_columns(pl.Series("score", learner.predict(Xt)))


@pytest.fixture(scope="module")
def signal_panel():
    return make_panel(tickers=60, days=300, signal=0.15, seed=1)


@pytest.fixture(scope="module")
def null_panel():
    return make_panel(tickers=60, days=300, signal=0.0, seed=2)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_learner_finds_a_planted_signal_out_of_sample(signal_panel, kind):
    learner, scored = _fit_and_score(signal_panel, kind)
    summary = ic_summary(daily_ic(scored, "score", "label"))
    assert summary["ic"] > 0.05 and summary["t_stat"] > 4
    top_two = sorted(learner.feature_importance(), key=learner.feature_importance().get)[-2:]
    assert set(top_two) == {"f000", "f001"}


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_learner_on_noise_has_out_of_sample_ic_within_noise(null_panel, kind):
    _, scored = _fit_and_score(null_panel, kind)
    assert abs(ic_summary(daily_ic(scored, "score", "label"))["t_stat"]) < 2.5


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_seeded_fit_twice_and_save_load_give_identical_predictions(signal_panel, kind, tmp_path):
    first, a = _fit_and_score(signal_panel, kind)
    _, b = _fit_and_score(signal_panel, kind)
    np.testing.assert_array_equal(a["score"].to_numpy(), b["score"].to_numpy())
    X = a.select(FEATURES).to_numpy()
    loaded = Learner.load(first.save(tmp_path / kind))
    np.testing.assert_array_equal(loaded.predict(X), a["score"].to_numpy())
    assert loaded.feature_names == FEATURES and loaded.best_iteration == first.best_iteration
    assert loaded.feature_importance() == pytest.approx(first.feature_importance())


def test_budgets_and_overrides_compose():
    assert params_for("xgboost")["n_estimators"] == 1000
    assert params_for("xgboost", "demo")["n_estimators"] == 300
    assert params_for("lightgbm", "demo", {"num_leaves": 15})["num_leaves"] == 15
    assert params_for("mlp")["hidden"] == (512, 256, 128)
    with pytest.raises(ValueError, match="unknown model kind"):
        make_learner("svm")


def test_predict_refuses_a_matrix_with_other_columns(signal_panel):
    learner, _ = _fit_and_score(signal_panel, "lightgbm")
    with pytest.raises(ValueError, match="fitted on 8"):
        learner.predict(np.zeros((3, 5), dtype=np.float32))
