"""Ensemble weights from trailing out-of-sample IC known before the day, and the combined alpha score."""

from __future__ import annotations

import polars as pl
import pytest

from alpha_assets.lib.models.ensemble import (
    SEED_WEIGHTS,
    combine,
    correlation_report,
    ensemble_weights,
    trailing_ic,
    weights_for_day,
)

from .synthetic import business_days

DAYS = business_days(40)


def _ic_rows(per_model: dict[str, list[float]]) -> pl.DataFrame:
    rows = [
        {"trade_date": DAYS[i], "model": m, "ic": v}
        for m, values in per_model.items()
        for i, v in enumerate(values)
    ]
    return pl.DataFrame(rows, schema={"trade_date": pl.Date, "model": pl.String, "ic": pl.Float64})


def test_seed_weights_until_every_model_has_enough_history():
    ic = {"xgboost": 0.05, "lightgbm": 0.02, "catboost": 0.01, "mlp": 0.04}
    assert ensemble_weights(ic, 20, dict.fromkeys(ic, 19)) == pytest.approx(SEED_WEIGHTS)
    assert ensemble_weights({}, 20, {}) == pytest.approx(SEED_WEIGHTS)
    assert ensemble_weights({**ic, "mlp": None}, 20, dict.fromkeys(ic, 30)) == pytest.approx(SEED_WEIGHTS)


def test_weights_proportional_to_positive_trailing_ic_and_never_negative():
    ic = {"xgboost": 0.06, "lightgbm": 0.03, "catboost": -0.02, "mlp": 0.01}
    w = ensemble_weights(ic, 20, dict.fromkeys(ic, 25))
    assert w == pytest.approx({"xgboost": 0.6, "lightgbm": 0.3, "catboost": 0.0, "mlp": 0.1})
    assert sum(w.values()) == pytest.approx(1.0)


def test_no_positive_trailing_ic_falls_back_to_seed_weights():
    ic = dict.fromkeys(SEED_WEIGHTS, -0.01)
    assert ensemble_weights(ic, 20, dict.fromkeys(ic, 25)) == pytest.approx(SEED_WEIGHTS)


def test_trailing_ic_uses_only_days_whose_label_was_known_before_the_day():
    day = DAYS[30]
    honest = {m: [0.02] * 40 for m in SEED_WEIGHTS}
    # catboost's ICs from day 26 on are not known at day 30's cut-off for a 5-session label: they must not count
    future = {m: list(v) for m, v in honest.items()}
    for i in range(26, 40):
        future["catboost"][i] = 0.9
    w_h5_honest = weights_for_day(_ic_rows(honest), day, min_history=10, horizon=5, sessions=DAYS)
    w_h5_future = weights_for_day(_ic_rows(future), day, min_history=10, horizon=5, sessions=DAYS)
    assert w_h5_future == pytest.approx(w_h5_honest)
    stats = trailing_ic(_ic_rows(future), day, window=63, horizon=5, sessions=DAYS)
    assert stats["catboost"] == {"ic": pytest.approx(0.02), "n_days": 26}
    # horizon 1: the same-day IC (day 30) is excluded, day 29 counts
    same_day_only = {m: list(v) for m, v in honest.items()}
    same_day_only["catboost"][30] = 0.9
    assert weights_for_day(_ic_rows(same_day_only), day, min_history=10, horizon=1) == pytest.approx(
        weights_for_day(_ic_rows(honest), day, min_history=10, horizon=1)
    )
    assert trailing_ic(_ic_rows(honest), day, window=10, horizon=1)["mlp"]["n_days"] == 10


def test_trailing_ic_before_any_known_label_is_empty():
    stats = trailing_ic(_ic_rows({"xgboost": [0.1] * 3}), DAYS[0], horizon=1)
    assert stats == {"xgboost": {"ic": None, "n_days": 0}}


def test_combine_ranks_each_model_per_day_and_sums_with_weights():
    preds = pl.DataFrame(
        {
            "trade_date": [DAYS[0]] * 6,
            "ticker": ["A", "B", "C"] * 2,
            "model": ["xgboost"] * 3 + ["mlp"] * 3,
            "score": [1.0, 2.0, 3.0, 30.0, 20.0, 10.0],
        }
    )
    out = combine(preds, {"xgboost": 0.75, "mlp": 0.25})
    assert out["ticker"].to_list() == ["A", "B", "C"]
    assert out["alpha_score"].to_list() == pytest.approx([-0.25, 0.0, 0.25])
    per_day = pl.DataFrame({"trade_date": [DAYS[0]] * 2, "model": ["xgboost", "mlp"], "weight": [0.0, 1.0]})
    assert combine(preds, per_day)["alpha_score"].to_list() == pytest.approx([0.5, 0.0, -0.5])


def test_correlation_report_flags_models_that_say_the_same_thing():
    tickers = [f"T{i}" for i in range(8)]
    base = list(range(8))
    rows = []
    for d in DAYS[:3]:
        for t, v in zip(tickers, base, strict=True):
            rows += [
                {"trade_date": d, "ticker": t, "model": "xgboost", "score": float(v)},
                {"trade_date": d, "ticker": t, "model": "lightgbm", "score": float(v) * 2 + 1},
                {"trade_date": d, "ticker": t, "model": "mlp", "score": float((v * 5) % 8)},
            ]
    report = correlation_report(pl.DataFrame(rows), threshold=0.7)
    pair = report.filter((pl.col("model_a") == "lightgbm") & (pl.col("model_b") == "xgboost")).row(
        0, named=True
    )
    assert pair["mean_corr"] == pytest.approx(1.0) and pair["above_threshold"] and pair["n_days"] == 3
    assert not report.filter(pl.col("model_a") == "mlp")["above_threshold"].any()


def test_recipe_ensembles_are_the_equal_weight_rank_average_of_each_recipes_models() -> None:
    from datetime import date

    from alpha_assets.lib.models.ensemble import recipe_ensembles

    d = date(2024, 1, 2)
    rows = []
    for recipe, sign in (("fusion", 1.0), ("base", -1.0)):
        for model, scores in (("xgboost", [1.0, 2.0, 3.0, 4.0, 5.0]), ("mlp", [5.0, 1.0, 2.0, 3.0, 4.0])):
            rows += [
                {"trade_date": d, "ticker": f"T{i}", "model": model, "recipe": recipe, "score": sign * s}
                for i, s in enumerate(scores)
            ]
    out = recipe_ensembles(pl.DataFrame(rows)).sort("recipe", "ticker")
    assert set(out["model"]) == {"ensemble"} and out.height == 10
    fusion = out.filter(pl.col("recipe") == "fusion")["score"].to_list()
    # ranks (0..4)/4 - 0.5 averaged with equal weights 1/2 each: xgboost ranks 0..4, mlp ranks 4,0,1,2,3
    expected = [((a + b) / 4 - 1.0) / 2 for a, b in zip(range(5), [4, 0, 1, 2, 3], strict=True)]
    assert fusion == pytest.approx(expected)
    base = out.filter(pl.col("recipe") == "base")["score"].to_list()
    assert base == pytest.approx([-x for x in expected])


# ------------------------------------------------------------------------------------------------- the gate
MEMBERS = ["ridge", "xgboost", "lightgbm", "mlp"]


def _noisy(mean: float, n: int, seed: int) -> list[float]:
    import numpy as np

    return (mean + np.random.default_rng(seed).normal(0, 0.02, n)).tolist()


def test_gate_gives_no_weight_to_a_learner_that_does_not_beat_ridge():
    from alpha_assets.lib.models.ensemble import gated_weights

    ridge = _noisy(0.03, 40, 1)
    ics = _ic_rows(
        {
            "ridge": ridge,
            "xgboost": [v - 0.01 for v in ridge],  # worse than ridge every day
            "lightgbm": [v + 0.0001 * (-1) ** i for i, v in enumerate(ridge)],  # ties ridge: t ~ 0
            "mlp": [v + 0.02 for v in ridge],  # better than ridge every day
        }
    )
    w = gated_weights(ics, MEMBERS, min_history=20, min_t=1.0, shrink=0.0)
    assert w["xgboost"] == 0.0 and w["lightgbm"] == 0.0
    assert w == pytest.approx({"ridge": 0.5, "xgboost": 0.0, "lightgbm": 0.0, "mlp": 0.5})  # shrink 0: equal


def test_gate_weights_shrink_toward_equal():
    from alpha_assets.lib.models.ensemble import gated_weights

    ridge = _noisy(0.02, 40, 2)
    ics = _ic_rows(
        {
            "ridge": ridge,
            "xgboost": [v + 0.04 for v in ridge],
            "lightgbm": _noisy(-0.02, 40, 3),
            "mlp": _noisy(-0.01, 40, 4),
        }
    )
    proportional = gated_weights(ics, MEMBERS, shrink=1.0)
    half = gated_weights(ics, MEMBERS, shrink=0.5)
    equal = gated_weights(ics, MEMBERS, shrink=0.0)
    assert equal["ridge"] == pytest.approx(0.5) and equal["xgboost"] == pytest.approx(0.5)
    # proportional to the mean trailing IC (about 0.02 vs 0.06)
    mean_ridge = sum(ridge) / len(ridge)
    assert proportional["xgboost"] / proportional["ridge"] == pytest.approx((mean_ridge + 0.04) / mean_ridge)
    assert half["xgboost"] == pytest.approx((equal["xgboost"] + proportional["xgboost"]) / 2)
    assert sum(half.values()) == pytest.approx(1.0)
    assert half["lightgbm"] == half["mlp"] == 0.0


def test_the_linear_baseline_is_the_blend_of_the_linear_learners_and_they_share_its_weight():
    import polars as pl

    from alpha_assets.lib.models.ensemble import LINEAR, combine, gated_weights, with_linear

    day = DAYS[0]
    preds = pl.DataFrame(
        {
            "trade_date": [day] * 6,
            "ticker": ["A", "B", "C"] * 2,
            "model": ["ridge"] * 3 + ["ic_weighted"] * 3,
            "score": [3.0, 2.0, 1.0, 10.0, 30.0, 20.0],
        }
    )
    lin = with_linear(preds).filter(pl.col("model") == LINEAR).sort("ticker")
    # ranks in [-0.5, 0.5]: ridge A 0.5, B 0, C -0.5; ic_weighted A -0.5, B 0.5, C 0: the blend is their mean
    assert lin["score"].to_list() == pytest.approx([0.0, 0.25, -0.25])
    blend = combine(preds, {"ridge": 0.5, "ic_weighted": 0.5}).sort("ticker")
    assert blend["alpha_score"].to_list() == pytest.approx(lin["score"].to_list())

    # a learner is gated against the blend's IC, not ridge's: it beats ridge but not the blend, so no weight
    ridge = _noisy(0.01, 40, 6)
    blend_ic = [v + 0.03 for v in ridge]
    ics = _ic_rows(
        {
            "ridge": ridge,
            "ic_weighted": _noisy(0.03, 40, 7),
            LINEAR: blend_ic,
            "xgboost": [v + 0.01 for v in ridge],
            "mlp": [v + 0.02 for v in blend_ic],
        }
    )
    members = ["ridge", "ic_weighted", "xgboost", "mlp"]
    w = gated_weights(ics, members, baseline=LINEAR, min_history=20, min_t=2.0, shrink=0.0)
    assert w == pytest.approx({"ridge": 0.25, "ic_weighted": 0.25, "xgboost": 0.0, "mlp": 0.5})
    assert (
        gated_weights(ics, members, min_history=20, min_t=2.0, shrink=0.0)["xgboost"] > 0
    )  # against ridge alone
    # nothing admitted: the linear pair trades alone, half each
    alone = gated_weights(ics.filter(pl.col("model") != "mlp"), members[:3], baseline=LINEAR, min_history=20)
    assert alone == pytest.approx({"ridge": 0.5, "ic_weighted": 0.5, "xgboost": 0.0})


def test_gate_keeps_ridge_alone_until_a_learner_has_shown_enough_days():
    from alpha_assets.lib.models.ensemble import gated_weights

    ridge = _noisy(0.02, 15, 5)
    ics = _ic_rows({"ridge": ridge, "xgboost": [v + 0.05 for v in ridge]})
    w = gated_weights(ics, ["ridge", "xgboost"], min_history=20)
    assert w == {"ridge": 1.0, "xgboost": 0.0}
    assert gated_weights(ics.head(0), ["ridge", "xgboost"]) == {"ridge": 1.0, "xgboost": 0.0}


def test_gate_for_a_day_uses_only_ics_known_at_its_cut_off():
    from alpha_assets.lib.models.ensemble import gated_weights_for_day

    ridge = _noisy(0.02, 40, 6)
    honest = {"ridge": ridge, "xgboost": [v - 0.01 for v in ridge]}
    leaked = {"ridge": ridge, "xgboost": [v - 0.01 if i < 30 else v + 0.5 for i, v in enumerate(ridge)]}
    day = DAYS[30]
    w_honest = gated_weights_for_day(_ic_rows(honest), day, ["ridge", "xgboost"], sessions=DAYS)
    w_leaked = gated_weights_for_day(_ic_rows(leaked), day, ["ridge", "xgboost"], sessions=DAYS)
    assert w_leaked == w_honest == {"ridge": 1.0, "xgboost": 0.0}
    # one day later the first leaked day (30) is known and still not enough to beat 29 losing days
    assert (
        gated_weights_for_day(_ic_rows(leaked), DAYS[31], ["ridge", "xgboost"], sessions=DAYS)["xgboost"]
        == 0.0
    )


def test_gate_refuses_members_without_the_baseline():
    from alpha_assets.lib.models.ensemble import gated_weights

    with pytest.raises(ValueError, match="baseline"):
        gated_weights(_ic_rows({"xgboost": [0.1] * 30}), ["xgboost"])
