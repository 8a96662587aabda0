"""The feature matrix: alt values against own history, per-day normalisation, explicit missing values, and the
leakage / publication checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.features.leakage import leakage_gate
from alpha_assets.lib.features.matrix import (
    MatrixConfig,
    alt_history_features,
    build_feature_matrix,
    feature_columns,
    matrix_lookback_sessions,
    publication_violations,
)

from .synthetic import business_days

DAYS = business_days(40)
TICKERS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
START, END = DAYS[25], DAYS[34]


def _grid() -> pl.DataFrame:
    return pl.DataFrame(
        {"trade_date": [d for d in DAYS for _ in TICKERS], "ticker": TICKERS * len(DAYS)},
        schema={"trade_date": pl.Date, "ticker": pl.String},
    )


def _price_features() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = len(DAYS) * len(TICKERS)
    df = _grid().with_columns(
        pl.Series("ret_1", rng.normal(0, 0.01, n)),
        pl.Series("vol_20", rng.uniform(0.1, 0.4, n)),
        pl.Series("close", rng.uniform(10, 100, n)),
        pl.lit(False).alias("is_filled"),
    )
    # FFF has no price features on START (a halted name): the price source is missing for that row
    gap = (pl.col("ticker") == "FFF") & (pl.col("trade_date") == START)
    return df.with_columns(
        [pl.when(gap).then(None).otherwise(pl.col(c)).alias(c) for c in ("ret_1", "vol_20")]
    )


def _alt_features() -> pl.DataFrame:
    """parking steps up for AAA on day 27; BBB has no parking data on days 30-32; calls only for AAA-CCC."""
    g = _grid().with_columns(pl.col("trade_date").rank("dense").cast(pl.Int64).alias("i") - 1)
    t = pl.col("ticker")
    idx = {tk: k for k, tk in enumerate(TICKERS)}
    base = t.replace_strict(idx, return_dtype=pl.Float64)
    parking = pl.when((t == "AAA") & (pl.col("i") >= 27)).then(12.0).when(t == "AAA").then(10.0)
    parking = parking.otherwise(base * 3 + (pl.col("i") % 4))
    parking = pl.when((t == "BBB") & pl.col("i").is_between(30, 32)).then(None).otherwise(parking)
    call = pl.when(t.is_in(["AAA", "BBB", "CCC"])).then(base * 0.1 + pl.col("i") * 0.01)
    pub = pl.col("trade_date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=12)
    return g.with_columns(
        parking.alias("parking_cars_per_store"),
        (parking * 50).alias("parking_total_cars"),
        pl.when(parking.is_not_null()).then(pub).alias("parking_published_at"),
        pl.when(parking.is_not_null()).then(0.4).alias("parking_age_days"),
        call.alias("call_sentiment"),
        pl.when(call.is_not_null()).then(pub).alias("call_published_at"),
        pl.when(call.is_not_null()).then(1.5).alias("call_age_days"),
    ).drop("i")


def test_changes_and_z_scores_are_against_the_names_own_history():
    frame, by_source = alt_history_features(_alt_features(), MatrixConfig(history_sessions=20))
    aaa = frame.filter(pl.col("ticker") == "AAA").sort("trade_date")
    chg5 = aaa["parking_cars_per_store__chg_5"].to_list()
    assert chg5[:5] == [None] * 5
    assert chg5[5:27] == [0.0] * 22  # no new observation -> no change
    assert chg5[27:32] == [2.0] * 5 and chg5[32:] == [0.0] * 8
    assert aaa["parking_cars_per_store__chg_20"].to_list()[27:40] == [2.0] * 13
    z = aaa["parking_cars_per_store__z20"].to_list()
    assert z[:9] == [None] * 9 and z[9:27] == [0.0] * 18  # flat history: no surprise
    window = [10.0] * 19 + [12.0]  # day 27: the trailing 20 values end with the first 12
    assert z[27] == pytest.approx((12.0 - np.mean(window)) / np.std(window, ddof=1))
    assert "parking_age_days" in by_source["parking"] and "call_sentiment__z20" in by_source["call"]


def test_matrix_keeps_only_days_in_the_window_with_sorted_features_and_no_nan():
    m = build_feature_matrix(_price_features(), _alt_features(), START, END)
    assert m["trade_date"].min() == START and m["trade_date"].max() == END
    assert m.height == 10 * len(TICKERS)
    feats = feature_columns(m)
    assert m.columns[:2] == ["trade_date", "ticker"] and feats == sorted(feats)
    assert "close" not in feats and "is_filled" not in feats
    values = m.select(feats).to_numpy()
    assert np.isfinite(values).all()
    normalised = [c for c in feats if not c.endswith("__missing")]
    assert m.select(normalised).to_numpy().min() >= -0.5 and m.select(normalised).to_numpy().max() <= 0.5
    # per day, a fully observed feature spans the whole rank range
    spread = m.group_by("trade_date").agg(
        pl.col("vol_20").min().alias("lo"), pl.col("vol_20").max().alias("hi")
    )
    assert (spread["hi"] - spread["lo"]).to_list() == pytest.approx([1.0] * 10)


def test_missing_indicators_are_one_exactly_where_the_source_was_null_and_values_are_neutral():
    alt = _alt_features()
    m = build_feature_matrix(_price_features(), alt, START, END)
    expected = alt.filter(pl.col("trade_date").is_between(START, END)).select(
        "trade_date", "ticker", pl.col("parking_cars_per_store").is_null().cast(pl.Float32).alias("exp")
    )
    check = m.join(expected, on=["trade_date", "ticker"])
    assert (check["parking__missing"] == check["exp"]).all() and check["exp"].sum() == 3
    bbb_gap = m.filter((pl.col("ticker") == "BBB") & (pl.col("parking__missing") == 1))
    assert bbb_gap["parking_cars_per_store"].to_list() == [0.0] * 3
    calls = m.group_by("ticker").agg(pl.col("call__missing").max()).sort("ticker")
    assert calls["call__missing"].to_list() == [0, 0, 0, 1, 1, 1]
    price_missing = m.filter(pl.col("price__missing") == 1).select("trade_date", "ticker").rows()
    assert price_missing == [(START, "FFF")]


def test_raw_mode_matches_the_hand_change_and_robust_z_is_clipped():
    raw = build_feature_matrix(_price_features(), _alt_features(), START, END, MatrixConfig(normalise="none"))
    aaa = raw.filter((pl.col("ticker") == "AAA") & (pl.col("trade_date") == DAYS[28]))
    assert aaa["parking_cars_per_store__chg_5"].item() == pytest.approx(2.0)
    robust = build_feature_matrix(
        _price_features(), _alt_features(), START, END, MatrixConfig(normalise="robust_z")
    )
    values = robust.select(feature_columns(robust)).to_numpy()
    assert np.isfinite(values).all() and np.abs(values).max() <= 5.0


def test_fused_embeddings_join_as_features_with_their_own_missing_indicator():
    emb = (
        _grid()
        .filter(pl.col("ticker") != "EEE")
        .with_columns(pl.int_range(pl.len()).cast(pl.Float64).alias("emb_000"), pl.lit(1.0).alias("emb_001"))
    )
    m = build_feature_matrix(_price_features(), _alt_features(), START, END, extra=emb)
    assert {"emb_000", "emb_001", "fused__missing"} <= set(m.columns)
    assert m.filter(pl.col("fused__missing") == 1)["ticker"].unique().to_list() == ["EEE"]
    assert matrix_lookback_sessions() == 60


def test_leakage_gate_catches_tomorrows_return_and_passes_honest_features():
    rng = np.random.default_rng(5)
    n_days, n_names = 60, 100
    days = business_days(n_days)
    nxt = rng.normal(0, 0.02, (n_days, n_names))
    same = rng.normal(0, 0.02, (n_days, n_names))
    honest = 0.05 * nxt / 0.02 + rng.normal(size=(n_days, n_names))  # IC about 0.05
    keys = {
        "trade_date": pl.Series([d for d in days for _ in range(n_names)], dtype=pl.Date),
        "ticker": [f"T{i:03d}" for i in range(n_names)] * n_days,
    }
    matrix = pl.DataFrame(
        {**keys, "honest": honest.ravel(), "sabotage": nxt.ravel(), "noise": rng.normal(size=nxt.size)}
    )
    returns = pl.DataFrame({**keys, "ret_same_day": same.ravel(), "fwd_ret_1": nxt.ravel()})
    result = leakage_gate(matrix, returns, ["honest", "sabotage", "noise"], same_day_features=["honest"])
    assert {(f["features"][0], f["return"]) for f in result.findings} == {("sabotage", "fwd_ret_1")}
    mean_ic = [f for f in result.findings if f["test"] == "mean_ic"]
    assert mean_ic[0]["ic"] == pytest.approx(1.0)
    # horizons the returns frame does not carry are reported, not silently passed
    assert result.coverage["fwd_ret_5"]["skipped"] == "no such return"
    assert result.coverage["fwd_ret_1"] == {"days": 60, "of": 60}


def test_publication_violations_counts_values_published_after_the_cutoff():
    alt = _alt_features().filter(pl.col("trade_date").is_between(START, END))
    assert publication_violations(alt, DAYS) == {"parking": 0, "call": 0, "total": 0}
    late = datetime.combine(START, datetime.min.time(), tzinfo=UTC) + timedelta(hours=23)
    bad = alt.with_columns(
        pl.when((pl.col("ticker") == "AAA") & (pl.col("trade_date") == START))
        .then(pl.lit(late, dtype=pl.Datetime("us", "UTC")))
        .otherwise(pl.col("parking_published_at"))
        .alias("parking_published_at")
    )
    assert publication_violations(bad, DAYS) == {"parking": 1, "call": 0, "total": 1}
