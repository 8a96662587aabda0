"""alpha_models fits each learner's validation model and its final refit side by side in two threads: the models
must be the ones fitted one after the other, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("kind", ["ridge", "ic_weighted", "xgboost", "lightgbm", "catboost"])
def test_side_by_side_fits_are_the_sequential_fits(kind):
    from alpha_assets.lib.models.learners import make_learner
    from alpha_assets.models.training import SEQUENTIAL_KINDS, fit_validation_and_final

    assert kind not in SEQUENTIAL_KINDS
    rng = np.random.default_rng(3)
    days = np.repeat(np.arange(60), 25)
    x = rng.normal(size=(days.size, 10)).astype(np.float32)
    y = (0.2 * x[:, 0] + rng.normal(size=days.size)).astype(np.float32)
    fit_mask = days < 45
    feats = [f"f{i}" for i in range(10)]
    params = (
        {"n_estimators": 30}
        if kind in ("xgboost", "lightgbm")
        else {"iterations": 30}
        if kind == "catboost"
        else None
    )

    def make():
        return make_learner(kind, seed=7, params=params, threads=1, budget="demo")

    fitted = {
        flag: fit_validation_and_final(make, x, y, fit_mask, feats, days, side_by_side=flag)
        for flag in (False, True)
    }
    for held_out_or_final in (0, 1):
        a = fitted[False][held_out_or_final].predict(x)
        b = fitted[True][held_out_or_final].predict(x)
        assert np.array_equal(a, b)
    # and the two fits are different models (the held-out one never saw the last 15 days)
    assert not np.array_equal(fitted[True][0].predict(x), fitted[True][1].predict(x))
