"""Validation statistics: PSR/DSR against the papers' formulas, CPCV splits and paths, walk-forward scoring."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.backtest import (
    InSampleRowsError,
    cpcv_n_paths,
    cpcv_path_assignment,
    cpcv_path_returns,
    cpcv_path_sharpes,
    cpcv_splits,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    return_moments,
    sharpe_ratio,
    sharpe_ratio_std,
    walk_forward_evaluate,
    walk_forward_windows,
)

EULER_GAMMA = 0.5772156649015329


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_psr_matches_the_formula_with_raw_kurtosis():
    sr, sr_star, t, skew, kurt = 0.12, 0.03, 500, -0.8, 6.0
    sigma = math.sqrt((1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2) / (t - 1))
    assert sharpe_ratio_std(sr, t, skew, kurt) == pytest.approx(sigma, rel=1e-14)
    assert probabilistic_sharpe_ratio(sr, sr_star, t, skew, kurt) == pytest.approx(
        phi((sr - sr_star) / sigma), abs=1e-12
    )


def test_psr_of_normal_returns_uses_the_one_half_sr_squared_term():
    # raw kurtosis 3 -> (3 - 1) / 4 = 1/2: the Lo (2002) iid-normal standard error
    sigma = sharpe_ratio_std(0.1, 253)
    assert sigma == pytest.approx(math.sqrt((1.0 + 0.5 * 0.01) / 252), rel=1e-14)
    assert probabilistic_sharpe_ratio(0.1, 0.1, 253) == pytest.approx(0.5)


def test_expected_max_sharpe_matches_the_false_strategy_formula():
    n, var = 250, 0.04
    inv = NormalDist().inv_cdf
    by_hand = math.sqrt(var) * ((1 - EULER_GAMMA) * inv(1 - 1 / n) + EULER_GAMMA * inv(1 - 1 / (n * math.e)))
    assert expected_max_sharpe(n, var) == pytest.approx(by_hand, rel=1e-14)


def test_expected_max_sharpe_is_close_to_the_simulated_maximum_of_null_sharpes():
    rng = np.random.default_rng(0)
    simulated = rng.standard_normal((20_000, 100)).max(axis=1).mean()  # ~2.508 for N = 100
    assert expected_max_sharpe(100, 1.0) == pytest.approx(simulated, abs=0.04)


def test_deflated_sharpe_reproduces_the_papers_numerical_example():
    # Bailey & López de Prado (2014), section 6: N = 100 trials, best annualised SR 2.5, annualised
    # V[SR] = 1/2, 5 years of daily returns (T = 1,250, 250 per year), skew -3, kurtosis 10
    sr = 2.5 / math.sqrt(250)
    var_daily = 0.5 / 250
    sr0 = expected_max_sharpe(100, var_daily)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert sr0 * math.sqrt(250) == pytest.approx(1.7894, abs=5e-4)
    dsr = deflated_sharpe_ratio(sr, 1250, -3.0, 10.0, 100, var_daily)
    assert dsr == pytest.approx(0.9004, abs=5e-4)
    by_hand = phi((sr - sr0) * math.sqrt(1249) / math.sqrt(1 + 3 * sr + 9 / 4 * sr**2))
    assert dsr == pytest.approx(by_hand, abs=1e-12)


def test_sharpe_and_moments_of_a_known_series():
    returns = np.array([0.01, -0.02, 0.03, 0.0, 0.015])
    assert sharpe_ratio(returns) == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert sharpe_ratio(returns, periods_per_year=252) == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    )
    skew, kurt = return_moments(np.random.default_rng(1).standard_normal(200_000))
    assert skew == pytest.approx(0.0, abs=0.02) and kurt == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(("n_groups", "k"), [(6, 2), (5, 1), (8, 3)])
def test_cpcv_yields_n_choose_k_splits_and_phi_paths_covering_every_group_once(n_groups, k):
    splits = cpcv_splits(120, n_groups, k)
    assert len(splits) == math.comb(n_groups, k)
    assert (
        cpcv_n_paths(n_groups, k) == math.comb(n_groups, k) * k // n_groups == math.comb(n_groups - 1, k - 1)
    )
    assignment = cpcv_path_assignment(n_groups, k)
    assert assignment.shape == (cpcv_n_paths(n_groups, k), n_groups)
    for path in assignment:
        for g, split_id in enumerate(path):
            assert g in splits[split_id].test_groups
    # every split serves exactly k (path, group) cells: its k test groups, once each
    assert np.bincount(assignment.ravel(), minlength=len(splits)).tolist() == [k] * len(splits)
    for split in splits:
        assert np.intersect1d(split.train_idx, split.test_idx).size == 0
        assert split.train_idx.size + split.test_idx.size == 120  # no purge, no embargo


@pytest.mark.parametrize(("purge", "embargo"), [(0, 0), (3, 0), (2, 4), (5, 5)])
def test_purge_and_embargo_keep_no_train_row_within_the_label_horizon_of_a_test_row(purge, embargo):
    n = 97
    for split in cpcv_splits(n, 6, 2, purge=purge, embargo=embargo):
        test = split.test_idx
        gaps = split.train_idx[:, None] - test[None, :]  # train - test
        assert not ((gaps >= -purge) & (gaps <= purge + embargo)).any()
        # and nothing more than that is dropped
        kept = set(split.train_idx.tolist())
        for i in set(range(n)) - set(test.tolist()):
            near = np.any((i - test >= -purge) & (i - test <= purge + embargo))
            assert (i in kept) != near


def test_cpcv_on_a_panel_splits_by_date_and_keeps_each_date_on_one_side():
    dates = np.repeat(np.arange(40), 3)[np.random.default_rng(2).permutation(120)]  # 3 names, shuffled rows
    for split in cpcv_splits(dates, 4, 2, purge=2, embargo=1):
        train_dates, test_dates = set(dates[split.train_idx]), set(dates[split.test_idx])
        assert not train_dates & test_dates
        assert len(split.test_idx) == 3 * len(test_dates)
        assert all(min(abs(a - b) for b in test_dates) > 2 for a in train_dates if a < min(test_dates))


def test_cpcv_paths_take_each_group_from_the_assigned_split():
    splits = cpcv_splits(60, 6, 2)
    # return of a row on split s encodes both: 1000 * s + row
    split_returns = [1000.0 * s.split_id + s.test_idx for s in splits]
    paths = cpcv_path_returns(split_returns, splits)
    assignment = cpcv_path_assignment(6, 2)
    assert paths.shape == (5, 60)
    for p in range(5):
        for g in range(6):
            rows = np.arange(g * 10, g * 10 + 10)
            np.testing.assert_array_equal(paths[p, rows], 1000.0 * assignment[p, g] + rows)


def test_cpcv_path_sharpes_give_one_sharpe_per_path():
    rng = np.random.default_rng(5)
    series = rng.normal(0.001, 0.01, 90)
    splits = cpcv_splits(90, 6, 3, purge=1)
    same = cpcv_path_sharpes([series[s.test_idx] for s in splits], splits)
    assert same.shape == (10,)
    np.testing.assert_allclose(same, sharpe_ratio(series), rtol=1e-12)
    noisy = cpcv_path_sharpes(
        [series[s.test_idx] + rng.normal(0, 0.01, s.test_idx.size) for s in splits], splits
    )
    assert len(set(np.round(noisy, 12))) == 10


def test_cpcv_path_sharpes_sum_panel_rows_per_date():
    dates = np.repeat(np.arange(30), 2)
    row_pnl = np.random.default_rng(8).normal(0.0005, 0.01, 60)
    splits = cpcv_splits(dates, 5, 2)
    sharpes = cpcv_path_sharpes(
        [row_pnl[s.test_idx] for s in splits], splits, dates=dates, periods_per_year=252
    )
    daily = row_pnl.reshape(30, 2).sum(axis=1)
    np.testing.assert_allclose(sharpes, sharpe_ratio(daily, periods_per_year=252), rtol=1e-12)


def walk_forward_predictions(perfect: bool) -> pl.DataFrame:
    rng = np.random.default_rng(4)
    rows = []
    start = date(2024, 1, 1)
    for fold, trained_until in enumerate([start, start + timedelta(days=20)]):
        for day in range(1, 21):
            session = trained_until + timedelta(days=day)
            realised = rng.normal(0.0, 0.01, 10)
            prediction = realised if perfect else rng.normal(size=10)
            rows += [(session, f"T{j}", trained_until, fold, prediction[j], realised[j]) for j in range(10)]
    return pl.DataFrame(
        rows,
        schema=["trade_date", "ticker", "trained_until", "fold", "prediction", "realised_return"],
        orient="row",
    )


def test_walk_forward_scores_perfect_out_of_sample_predictions_with_ic_one():
    report = walk_forward_evaluate(walk_forward_predictions(perfect=True))
    assert report["daily"].height == 40
    assert report["daily"]["ic"].to_list() == pytest.approx([1.0] * 40)
    assert report["folds"]["fold"].to_list() == [0, 1]
    assert report["folds"]["n_days"].to_list() == [20, 20]
    assert report["overall"]["hit_rate"] == 1.0
    assert report["overall"]["long_short_mean"] > 0.0
    assert report["overall"]["long_short_psr"] > 0.99


def test_walk_forward_refuses_in_sample_rows():
    predictions = walk_forward_predictions(perfect=False)
    leaked = predictions.with_columns(
        pl.when(pl.col("fold") == 1)
        .then(pl.col("trade_date"))
        .otherwise(pl.col("trained_until"))
        .alias("trained_until")
    )
    with pytest.raises(InSampleRowsError, match="200 in-sample rows"):
        walk_forward_evaluate(leaked)


def test_walk_forward_refuses_a_date_predicted_by_two_folds():
    predictions = walk_forward_predictions(perfect=False)
    duplicated = pl.concat(
        [predictions, predictions.head(3).with_columns(pl.lit(9, dtype=pl.Int64).alias("fold"))]
    )
    with pytest.raises(ValueError, match="more than once"):
        walk_forward_evaluate(duplicated)


def test_walk_forward_windows_leave_the_purge_gap_and_roll_by_the_test_length():
    sessions = [date(2020, 1, 1) + timedelta(days=i) for i in range(600)]
    windows = walk_forward_windows(sessions, train_days=252, test_days=63, purge_days=5)
    assert len(windows) == 6  # 252 + 5 + 63 * 5 = 572 < 600; the sixth test window is partial
    for w, nxt in itertools.pairwise(windows):
        assert (nxt.train_start - w.train_start).days == 63
    for w in windows:
        assert (w.test_start - w.train_end).days == 6  # 5 purged sessions in between
        assert (w.train_end - w.train_start).days == 251
    assert windows[-1].test_end == sessions[-1]
