"""Explanations of what is traded: the terms of a name's explanation add up to its traded alpha_score, the part the
exponential average carries over from earlier sessions is one of them, models with zero weight are skipped, and a
what-if value outside a feature's range is refused with one line.

The traded scores come from the real ``models.alpha_scores`` asset, invoked directly on in-memory predictions of
linear models (whose SHAP values are exact: beta_j x (x_j - mean x_j)), two days in a row, the first day's rows
written to a temporary lake so that the second day carries them.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.models.ensemble import BASELINE
from alpha_assets.lib.models.learners import MODEL_KINDS
from partitions.calendar import sessions_from

DAYS = sessions_from(__import__("datetime").date(2025, 3, 3), 3)
TICKERS = [f"N{k:02d}" for k in range(25)]
FEATURES = ["mom_5", "call_sentiment", "call_sentiment__chg_20", "call__missing"]
KINDS = [BASELINE, *[k for k in MODEL_KINDS if k != BASELINE][:2]]  # ridge and two learners
RECIPES = ("fusion", "base")


def _world(seed: int = 5):
    rng = np.random.default_rng(seed)
    betas = {(r, k): rng.normal(0, 1, len(FEATURES)) for r in RECIPES for k in KINDS}
    x, preds, labels = {}, [], []
    for d in DAYS:
        xd = rng.uniform(-0.5, 0.5, (len(TICKERS), len(FEATURES)))
        xd[:, 3] = (rng.uniform(size=len(TICKERS)) < 0.2).astype(float)  # call__missing
        xd[xd[:, 3] == 1, 1:3] = 0.0  # a missing call is the neutral fill
        x[d] = xd
        for (r, k), b in betas.items():
            preds.append(
                pl.DataFrame(
                    {
                        "trade_date": [d] * len(TICKERS),
                        "ticker": TICKERS,
                        "model": k,
                        "recipe": r,
                        "block": "2025-01-01",
                        "model_version": 1,
                        "score": xd @ b,
                    }
                )
            )
        labels.append(
            pl.DataFrame(
                {
                    "trade_date": [d] * len(TICKERS),
                    "ticker": TICKERS,
                    "fwd_ret_1": rng.normal(0, 0.02, len(TICKERS)),
                }
            )
        )
    return x, betas, pl.concat(preds), pl.concat(labels)


def _linear_shap(xd: np.ndarray, beta: np.ndarray, i: int, kind: str) -> pl.DataFrame:
    mean = xd.mean(axis=0)
    phi = beta * (xd[i] - mean)
    return pl.DataFrame(
        {
            "model": kind,
            "feature": FEATURES,
            "shap_value": phi,
            "base_value": float(mean @ beta),
            "prediction": float(xd[i] @ beta),
        }
    )


def _traded(tmp_path_factory, **config):
    from dagster import build_asset_context

    from alpha_assets.models.scoring import AlphaScoresConfig, alpha_scores
    from resources.lake_resource import DeltaLakeResource

    x, betas, preds, labels = _world()
    lake_res = DeltaLakeResource(lake_root=str(tmp_path_factory.mktemp("lake")))
    lake = lake_res.lake
    for d in DAYS:
        ctx = build_asset_context(partition_key=d.isoformat(), resources={"lake_store": lake_res})
        out = alpha_scores(
            ctx,
            AlphaScoresConfig(**config),
            preds.filter(pl.col("trade_date") <= d),
            labels.filter(pl.col("trade_date") <= d),
        )
        lake.write_window("models", "alpha_scores", out.value, d, d)
    return {"x": x, "betas": betas, "preds": preds, "scores": lake.read("models", "alpha_scores")}


@pytest.fixture(scope="module")
def traded(tmp_path_factory):
    """A smoothed traded score (half-life 5 sessions: the option, not the default) so the carried part shows."""
    return _traded(tmp_path_factory, score_halflife_sessions=5.0)


def test_the_default_traded_score_is_the_days_blend_with_nothing_carried(tmp_path_factory):
    """The default half-life is 0 (chosen on the research benchmark's tuning worlds): nothing is carried over."""
    scores = _traded(tmp_path_factory)["scores"]
    assert (scores["smoothing_weight"] == 1.0).all() and (scores["carried_score"] == 0.0).all()


def _explain(traded, day, ticker):
    from alpha_assets.lib.models.explain import traded_decomposition

    i = TICKERS.index(ticker)
    row = (
        traded["scores"]
        .filter((pl.col("trade_date") == day) & (pl.col("ticker") == ticker))
        .row(0, named=True)
    )
    shap = {(r, k): _linear_shap(traded["x"][day], b, i, k) for (r, k), b in traded["betas"].items()}
    feature_row = dict(zip(FEATURES, traded["x"][day][i].tolist(), strict=True))
    day_preds = traded["preds"].filter(pl.col("trade_date") == day)
    return row, *traded_decomposition(row, day_preds, shap, feature_row)


def test_the_terms_add_up_to_the_traded_score_and_the_carried_part_is_one_of_them(traded):
    day = DAYS[-1]
    carried_shares = []
    for ticker in TICKERS:
        row, terms, _ = _explain(traded, day, ticker)
        assert terms["contribution"].sum() == pytest.approx(row["alpha_score"], abs=1e-6)
        carried = terms.filter(pl.col("term") == "carried")["contribution"]
        assert carried.len() == 1 and carried[0] == pytest.approx(row["carried_score"], abs=1e-12)
        assert carried[0] != 0.0  # the previous session's traded score is carried into today's
        carried_shares.append(abs(carried[0]) / max(abs(row["alpha_score"]), 1e-12))
    # at a half-life of 5 sessions today's blend weighs 13%: most of the traded score is carried
    assert np.median(carried_shares) > 0.5


def test_models_with_zero_weight_are_skipped_and_said_to_be(traded):
    row, terms, skipped = _explain(traded, DAYS[-1], TICKERS[3])
    weights = json.loads(row["champion_weights"])
    zero = {f"{row['champion_recipe']}/{k}" for k, w in weights.items() if w == 0}
    assert zero and zero <= set(skipped)  # the gate: only ridge trades before learners have IC history
    explained = set(terms.filter(pl.col("term") == "feature")["model"].unique())
    assert explained == {k for k, w in weights.items() if w > 0}


def test_features_are_named_by_source_and_fills_are_flagged(traded):
    day = DAYS[-1]
    filled = [t for k, t in enumerate(TICKERS) if traded["x"][day][k, 3] == 1][0]
    _, terms, _ = _explain(traded, day, filled)
    feats = terms.filter(pl.col("term") == "feature")
    sources = dict(zip(feats["feature"], feats["source"], strict=False))
    assert sources["call_sentiment__chg_20"] == "earnings-call transcripts" and sources["mom_5"] == "prices"
    flags = dict(zip(feats["feature"], feats["filled"], strict=False))
    assert flags["call_sentiment"] and flags["call_sentiment__chg_20"] and not flags["mom_5"]


def test_a_rescored_day_does_not_pass_for_an_explanation(traded):
    from alpha_assets.lib.models.explain import traded_decomposition

    row, _, _ = _explain(traded, DAYS[-1], TICKERS[0])
    i = 0
    shap = {(r, k): _linear_shap(traded["x"][DAYS[-1]], b, i, k) for (r, k), b in traded["betas"].items()}
    day_preds = traded["preds"].filter(pl.col("trade_date") == DAYS[-1])
    with pytest.raises(ValueError, match="does not match"):
        traded_decomposition({**row, "alpha_score": row["alpha_score"] + 0.01}, day_preds, shap)


def test_explain_refuses_a_value_outside_the_features_range_with_one_line(tmp_path, monkeypatch, capsys):
    from alpha_assets.cli import main
    from alpha_assets.home import AlphaHome
    from resources.lake import DeltaLake

    home = AlphaHome(tmp_path / "alpha").ensure()
    monkeypatch.setenv("ALPHA_HOME", str(home.root))
    day = DAYS[0]
    x, _, _, _ = _world()
    matrix = pl.DataFrame(
        {
            "trade_date": [day] * len(TICKERS),
            "ticker": TICKERS,
            **{f: x[day][:, j] for j, f in enumerate(FEATURES)},
        }
    )
    DeltaLake(home.lake).write_window("features", "feature_matrix", matrix, day, day)
    code = main(["explain", TICKERS[0], "--date", day.isoformat(), "--set", "call_sentiment=0.9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["alpha explain: --set call_sentiment=0.9: call_sentiment is a per-day rank in [-0.5, 0.5]"]
    code = main(["explain", TICKERS[0], "--date", day.isoformat(), "--set", "call__missing=2"])
    assert code == 2 and "call__missing is a 0/1 missing-data flag in [0, 1]" in capsys.readouterr().err


def test_the_what_if_rebuilds_the_traded_scores_of_the_day(traded):
    from alpha_assets.lib.models.explain import traded_scores

    day = DAYS[-1]
    stored = traded["scores"].filter(pl.col("trade_date") == day).sort("ticker")
    day_preds = traded["preds"].filter(pl.col("trade_date") == day)
    same = traded_scores(stored, day_preds).sort("ticker")
    assert np.allclose(same["alpha_score"].to_numpy(), stored["alpha_score"].to_numpy(), atol=1e-12)
    # the worst name scored best by every traded model rises to the top of the champion's ranking
    worst = stored.sort("alpha_score")["ticker"][0]
    top = {(r, k, worst): 1e6 for r in RECIPES for k in KINDS}
    moved = traded_scores(stored, day_preds, top)
    row = stored.filter(pl.col("ticker") == worst).row(0, named=True)
    new = moved.filter(pl.col("ticker") == worst)["alpha_score"][0]
    assert new == pytest.approx(row["carried_score"] + row["smoothing_weight"] * 0.5, abs=1e-9)
