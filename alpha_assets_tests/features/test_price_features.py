"""Price features and labels: enough columns, incremental equals full, no label past the known data."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from alpha_assets.lib.features.price_features import (
    FEATURE_LOOKBACK,
    compute_labels,
    compute_price_features,
    feature_columns,
)
from alpha_assets_tests.conftest import WORLD_START
from alpha_world.simulate import WorldConfig, simulate_world
from partitions import FEATURE_LOOKBACK_SESSIONS
from partitions.calendar import shift_sessions


@pytest.fixture(scope="module")
def prices() -> pl.DataFrame:
    w = simulate_world(WorldConfig(tickers=15, start=WORLD_START, days=320, seed=11))
    # Drop some prints so the session grid and forward fill are exercised.
    return w.prices.filter(pl.int_range(pl.len()) % 97 != 13)


def test_features_have_at_least_40_columns_named_for_what_they_are(prices):
    days = prices["trade_date"].unique().sort().to_list()
    f = compute_price_features(prices, days[200], days[200])
    cols = feature_columns(f)
    assert len(cols) >= 40
    for name in [
        "ret_1_lag_1",
        "ret_1_lag_60",
        "ret_mean_20",
        "ret_std_60",
        "ret_min_5",
        "ret_max_60",
        "vol_20",
        "mom_60_5",
        "mom_120_5",
        "zscore_20",
        "ret_1",
        "ret_5",
        "ret_20",
    ]:
        assert name in cols


def test_an_incremental_day_equals_a_full_recompute(prices):
    days = prices["trade_date"].unique().sort().to_list()
    full = compute_price_features(prices, days[0], days[-1])
    assert FEATURE_LOOKBACK == FEATURE_LOOKBACK_SESSIONS
    for d in (days[130], days[200], days[-1]):
        lookback_start = shift_sessions(d, -FEATURE_LOOKBACK)
        window = prices.filter(pl.col("trade_date").is_between(lookback_start, d))
        inc = compute_price_features(window, d, d)
        ref = full.filter(pl.col("trade_date") == d)
        assert inc.height == ref.height > 0
        # Same rows, same nulls; values equal to machine precision (polars' rolling kernels keep running sums,
        # so the last bits depend on where the window series starts).
        assert_frame_equal(inc, ref, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


def test_features_use_only_the_past(prices):
    days = prices["trade_date"].unique().sort().to_list()
    d = days[200]
    base = compute_price_features(prices.filter(pl.col("trade_date") <= d), d, d)
    shocked = prices.with_columns(
        pl.when(pl.col("trade_date") > d).then(pl.col("close") * 3).otherwise(pl.col("close")).alias("close")
    )
    assert_frame_equal(
        compute_price_features(shocked, d, d), base, check_exact=False, rel_tol=1e-12, abs_tol=1e-12
    )


def test_momentum_matches_its_definition(prices):
    days = prices["trade_date"].unique().sort().to_list()
    d = days[250]
    i = days.index(d)
    close = {(r["ticker"], r["trade_date"]): r["close"] for r in prices.iter_rows(named=True)}
    rows = compute_price_features(prices, d, d).filter(pl.col("is_filled").not_()).rows(named=True)
    # Every ticker with real prints on both ends of the window (the fixture drops some prints; a dropped end is
    # forward filled, another definition), and there must be such tickers: the check cannot pass vacuously.
    checked = [
        f for f in rows if (f["ticker"], days[i - 5]) in close and (f["ticker"], days[i - 120]) in close
    ]
    assert len(checked) >= 10, [f["ticker"] for f in rows]
    for f in checked:
        t = f["ticker"]
        assert f["mom_120_5"] == pytest.approx(
            close[t, days[i - 5]] / close[t, days[i - 120]] - 1, rel=1e-12
        ), t


def test_labels_never_extend_past_known_data(prices):
    days = prices["trade_date"].unique().sort().to_list()
    known = days[100]
    seen = prices.filter(pl.col("trade_date") <= known)
    lab = compute_labels(seen, days[60], known)
    for h in (1, 5, 20):
        filled = lab.filter(pl.col(f"fwd_ret_{h}").is_not_null())["trade_date"]
        assert filled.max() == days[100 - h]
        assert (
            lab.filter(pl.col("trade_date") > days[100 - h])[f"fwd_ret_{h}"].null_count()
            == lab.filter(pl.col("trade_date") > days[100 - h]).height
        )


def test_labels_are_the_forward_returns(prices):
    days = prices["trade_date"].unique().sort().to_list()
    lab = compute_labels(prices, days[50], days[50])
    close = {(r["ticker"], r["trade_date"]): r["close"] for r in prices.iter_rows(named=True)}
    rows = lab.filter(pl.col("fwd_ret_5").is_not_null()).rows(named=True)
    # Every ticker with real prints on days 50 and 55 (the fixture drops some prints), and there must be such
    # tickers: the check cannot pass vacuously.
    checked = [r for r in rows if (r["ticker"], days[50]) in close and (r["ticker"], days[55]) in close]
    assert len(checked) >= 10, [r["ticker"] for r in rows]
    for r in checked:
        t = r["ticker"]
        assert r["fwd_ret_5"] == pytest.approx(close[t, days[55]] / close[t, days[50]] - 1, rel=1e-12), t


def test_computing_tickers_in_batches_gives_the_same_values(prices):
    # Batches only bound memory: one ticker at a time, a few at a time and all at once give identical frames,
    # sorted by (trade_date, ticker), with the lookback's NaN stored as null.
    days = prices["trade_date"].unique().sort().to_list()
    whole = compute_price_features(prices, days[100], days[-1], batch=10_000)
    for batch in (1, 4):
        assert_frame_equal(compute_price_features(prices, days[100], days[-1], batch=batch), whole)
    assert whole.select(pl.col("trade_date", "ticker")).equals(
        whole.select("trade_date", "ticker").sort(pl.all())
    )
    assert whole["mom_120_5"].null_count() > 0 and whole["mom_120_5"].is_nan().sum() == 0
