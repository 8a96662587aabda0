"""Out-of-sample validation statistics: walk-forward evaluation, combinatorial purged CV, PSR and deflated Sharpe.

References: Bailey & López de Prado (2012) "The Sharpe Ratio Efficient Frontier" (PSR) and (2014) "The Deflated
Sharpe Ratio" (DSR); López de Prado (2018) "Advances in Financial Machine Learning", ch. 7 (purging, embargo)
and ch. 12 (combinatorial purged cross-validation and its backtest paths).

Sharpe ratios passed to ``probabilistic_sharpe_ratio`` / ``deflated_sharpe_ratio`` are per observation (not
annualised), kurtosis is RAW (3 for a normal distribution), as in the papers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import cast

import numpy as np
import polars as pl

from alpha_assets.lib.settings import SESSIONS_PER_QUARTER, SESSIONS_PER_YEAR

EULER_MASCHERONI = 0.5772156649015329
_STANDARD_NORMAL = NormalDist()


# ---------------------------------------------------------------------------------------------- Sharpe family
def sharpe_ratio(returns, risk_free: float = 0.0, periods_per_year: int | None = None) -> float:
    """Mean over standard deviation (ddof=1) of ``returns - risk_free`` per period; annualised by
    ``sqrt(periods_per_year)`` when given. NaN for fewer than two observations or zero dispersion."""
    excess = np.asarray(returns, dtype=np.float64) - risk_free
    if excess.size < 2:
        return float("nan")
    std = float(np.std(excess, ddof=1))
    if std == 0.0:
        return float("nan")
    sr = float(np.mean(excess)) / std
    return sr * math.sqrt(periods_per_year) if periods_per_year else sr


def return_moments(returns) -> tuple[float, float]:
    """Sample skewness and RAW kurtosis (normal = 3) of returns, population moments as in the PSR paper."""
    x = np.asarray(returns, dtype=np.float64)
    centred = x - x.mean()
    variance = float(np.mean(centred**2))
    if variance == 0.0:
        return 0.0, 3.0
    skew = float(np.mean(centred**3)) / variance**1.5
    kurtosis = float(np.mean(centred**4)) / variance**2
    return skew, kurtosis


def sharpe_ratio_std(sr: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Standard error of a per-period Sharpe estimate under non-normal returns:
    ``sqrt((1 - skew*SR + (kurtosis - 1)/4 * SR^2) / (T - 1))`` with RAW kurtosis."""
    if n_obs < 2:
        raise ValueError("n_obs must be >= 2")
    radicand = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if radicand <= 0.0:
        raise ValueError(f"skew/kurtosis give a non-positive Sharpe variance ({radicand})")
    return math.sqrt(radicand / (n_obs - 1))


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """PSR: probability that the true Sharpe exceeds ``sr_benchmark`` given the observed per-period ``sr``
    over ``n_obs`` returns with the given skewness and RAW kurtosis."""
    return _STANDARD_NORMAL.cdf((sr - sr_benchmark) / sharpe_ratio_std(sr, n_obs, skew, kurtosis))


def expected_max_sharpe(n_trials: int, var_trials_sr: float) -> float:
    """SR0: expected maximum Sharpe of ``n_trials`` independent zero-skill trials whose Sharpe estimates have
    variance ``var_trials_sr`` (same units as the Sharpe being deflated):
    ``sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e)))``, g the Euler–Mascheroni constant."""
    if n_trials < 2:
        raise ValueError("n_trials must be >= 2 (one trial needs no deflation)")
    if var_trials_sr < 0.0:
        raise ValueError("var_trials_sr must be >= 0")
    inv = _STANDARD_NORMAL.inv_cdf
    return math.sqrt(var_trials_sr) * (
        (1.0 - EULER_MASCHERONI) * inv(1.0 - 1.0 / n_trials)
        + EULER_MASCHERONI * inv(1.0 - 1.0 / (n_trials * math.e))
    )


def deflated_sharpe_ratio(
    sr: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, var_trials_sr: float
) -> float:
    """DSR: the PSR of the selected strategy's per-period ``sr`` against the expected maximum Sharpe SR0 of
    ``n_trials`` trials with per-period Sharpe variance ``var_trials_sr`` (RAW kurtosis)."""
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n_trials, var_trials_sr), n_obs, skew, kurtosis)


# ------------------------------------------------------------------------------------------------------ CPCV
@dataclass(frozen=True)
class CPCVSplit:
    """One combinatorial split: ``test_groups`` held out, ``train_idx`` purged and embargoed around them.

    Indices are row positions into the observations passed to ``cpcv_splits``; ``test_group_of_row`` gives
    the group of each entry of ``test_idx``.
    """

    split_id: int
    test_groups: tuple[int, ...]
    train_idx: np.ndarray
    test_idx: np.ndarray
    test_group_of_row: np.ndarray


def _date_positions(obs) -> tuple[np.ndarray, int]:
    """Each row's position among the sorted unique dates, and the number of unique dates."""
    if isinstance(obs, int | np.integer):
        return np.arange(int(obs)), int(obs)
    values = obs.to_numpy() if isinstance(obs, pl.Series) else np.asarray(obs)
    unique, positions = np.unique(values, return_inverse=True)
    return positions.ravel(), unique.size


def cpcv_splits(
    obs: int | Sequence | np.ndarray | pl.Series,
    n_groups: int,
    k_test_groups: int,
    purge: int = 0,
    embargo: int = 0,
) -> list[CPCVSplit]:
    """Combinatorial purged cross-validation splits (AFML ch. 12): C(n_groups, k_test_groups) splits.

    ``obs`` is the number of time-ordered observations, or one date per row (a panel: several rows per date);
    the unique dates are cut into ``n_groups`` contiguous groups. ``purge`` is the label horizon in dates: a
    training row's label may overlap a test row's when their dates are at most ``purge`` apart, so it is
    dropped. ``embargo`` drops ``embargo`` more dates after each contiguous test block (serial correlation
    leaking from test into later training data). A training row at date position i is thus dropped when
    ``a - purge <= i <= b + purge + embargo`` for some test block [a, b].
    """
    if not 1 <= k_test_groups < n_groups:
        raise ValueError("need 1 <= k_test_groups < n_groups")
    if purge < 0 or embargo < 0:
        raise ValueError("purge and embargo must be >= 0")
    positions, n_dates = _date_positions(obs)
    if n_dates < n_groups:
        raise ValueError(f"{n_dates} dates cannot form {n_groups} groups")
    group_of_date = np.empty(n_dates, dtype=np.int64)
    for g, members in enumerate(np.array_split(np.arange(n_dates), n_groups)):
        group_of_date[members] = g
    group_of_row = group_of_date[positions]
    bounds = [(int(m[0]), int(m[-1])) for m in np.array_split(np.arange(n_dates), n_groups)]

    splits = []
    for split_id, test_groups in enumerate(itertools.combinations(range(n_groups), k_test_groups)):
        is_test_date = np.isin(group_of_date, test_groups)
        dropped = is_test_date.copy()
        for start, end in _contiguous_blocks(test_groups, bounds):
            dropped[max(start - purge, 0) : min(end + purge + embargo, n_dates - 1) + 1] = True
        test_rows = np.flatnonzero(is_test_date[positions])
        splits.append(
            CPCVSplit(
                split_id=split_id,
                test_groups=tuple(test_groups),
                train_idx=np.flatnonzero(~dropped[positions]),
                test_idx=test_rows,
                test_group_of_row=group_of_row[test_rows],
            )
        )
    return splits


def _contiguous_blocks(test_groups: tuple[int, ...], bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    blocks: list[list[int]] = []
    for g in test_groups:
        if blocks and blocks[-1][1] == g - 1:
            blocks[-1][1] = g
        else:
            blocks.append([g, g])
    return [(bounds[first][0], bounds[last][1]) for first, last in blocks]


def cpcv_n_paths(n_groups: int, k_test_groups: int) -> int:
    """phi = k/N * C(N, k) = C(N-1, k-1): the number of full backtest paths CPCV yields."""
    return math.comb(n_groups - 1, k_test_groups - 1)


def cpcv_path_assignment(n_groups: int, k_test_groups: int) -> np.ndarray:
    """(phi, n_groups) array: entry [p, g] is the split whose test predictions fill group g on path p.

    Splits are numbered in ``itertools.combinations`` order (as ``cpcv_splits``); path p takes, for every
    group, the p-th split that tests that group, so every path covers every group exactly once.
    """
    assignment = np.empty((cpcv_n_paths(n_groups, k_test_groups), n_groups), dtype=np.int64)
    seen = np.zeros(n_groups, dtype=np.int64)
    for split_id, test_groups in enumerate(itertools.combinations(range(n_groups), k_test_groups)):
        for g in test_groups:
            assignment[seen[g], g] = split_id
            seen[g] += 1
    return assignment


def cpcv_path_returns(split_returns: Sequence[np.ndarray], splits: Sequence[CPCVSplit]) -> np.ndarray:
    """Reassemble the phi backtest paths: (phi, n_rows) with column j = row j of the observations.

    ``split_returns[s]`` holds the out-of-sample strategy return of every row in ``splits[s].test_idx``
    (same order), from a model trained on ``splits[s].train_idx``.
    """
    if len(split_returns) != len(splits):
        raise ValueError("one return array per split is needed")
    n_groups = 1 + max(max(s.test_groups) for s in splits)
    k = len(splits[0].test_groups)
    assignment = cpcv_path_assignment(n_groups, k)
    if assignment.max() >= len(splits):
        raise ValueError("splits do not form a full combinatorial set")
    n_rows = sum(int(s.test_idx.size) for s in splits) // cpcv_n_paths(n_groups, k)
    paths = np.full((assignment.shape[0], n_rows), np.nan)
    for p, row in enumerate(assignment):
        for g, split_id in enumerate(row):
            split, values = splits[split_id], np.asarray(split_returns[split_id], dtype=np.float64)
            if values.shape != split.test_idx.shape:
                raise ValueError(f"split {split_id}: {values.shape} returns for {split.test_idx.shape} rows")
            in_group = split.test_group_of_row == g
            paths[p, split.test_idx[in_group]] = values[in_group]
    return paths


def cpcv_path_sharpes(
    split_returns: Sequence[np.ndarray],
    splits: Sequence[CPCVSplit],
    dates: int | Sequence | np.ndarray | pl.Series | None = None,
    periods_per_year: int | None = None,
) -> np.ndarray:
    """Sharpe ratio of each of the phi CPCV backtest paths: the distribution, not one number.

    With ``dates`` (one per row, as given to ``cpcv_splits`` for a panel) the rows of a path are summed per
    date first (per-name pnl contributions -> portfolio return). Per period unless ``periods_per_year``.
    """
    paths = cpcv_path_returns(split_returns, splits)
    if dates is not None:
        positions, n_dates = _date_positions(dates)
        daily = np.zeros((paths.shape[0], n_dates))
        for p in range(paths.shape[0]):
            daily[p] = np.bincount(positions, weights=paths[p], minlength=n_dates)
        paths = daily
    return np.array([sharpe_ratio(path, periods_per_year=periods_per_year) for path in paths])


# ------------------------------------------------------------------------------------------------ walk-forward
@dataclass(frozen=True)
class WalkForwardWindow:
    fold: int
    train_start: date
    train_end: date
    test_start: date
    test_end: date


def walk_forward_windows(
    sessions: Sequence[date],
    train_days: int = SESSIONS_PER_YEAR,
    test_days: int = SESSIONS_PER_QUARTER,
    purge_days: int = 5,
    expanding: bool = False,
) -> list[WalkForwardWindow]:
    """Rolling (or expanding) train/test windows over trading sessions: train ``train_days``, skip
    ``purge_days`` sessions, test the next ``test_days``, roll forward by ``test_days``."""
    sessions = sorted(sessions)
    windows, start, fold = [], 0, 0
    while start + train_days + purge_days < len(sessions):
        train_end = start + train_days - 1
        test_start = train_end + 1 + purge_days
        test_end = min(test_start + test_days - 1, len(sessions) - 1)
        windows.append(
            WalkForwardWindow(
                fold,
                sessions[0 if expanding else start],
                sessions[train_end],
                sessions[test_start],
                sessions[test_end],
            )
        )
        start, fold = start + test_days, fold + 1
    return windows


class InSampleRowsError(ValueError):
    """Predictions evaluated as out-of-sample were made on or before the end of their training data."""


def walk_forward_evaluate(
    predictions: pl.DataFrame,
    *,
    prediction_col: str = "prediction",
    realised_col: str = "realised_return",
    quantile: float = 0.2,
    periods_per_year: int = SESSIONS_PER_YEAR,
) -> dict:
    """Score out-of-sample predictions fold by fold; refuse any in-sample row.

    ``predictions``: ``trade_date, ticker, trained_until, <prediction_col>, <realised_col>`` and optionally
    ``fold`` (else one fold per distinct ``trained_until``). ``trained_until`` is the last date whose label
    the model saw; a row is out-of-sample only if ``trade_date > trained_until``, otherwise
    ``InSampleRowsError``. A (trade_date, ticker) predicted twice (overlapping test windows) is refused too.

    Returns ``{"daily": frame, "folds": frame, "overall": dict}``: per date the Spearman IC, the hit rate of
    the predicted sign and the top-minus-bottom ``quantile`` long-short return; per fold and overall the mean
    IC, IC IR, hit rate, long-short Sharpe (annualised) and its PSR against 0.
    """
    required = ["trade_date", "ticker", "trained_until", prediction_col, realised_col]
    missing = [c for c in required if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions missing columns {missing}")
    frame = predictions.with_columns(pl.col("trade_date", "trained_until").cast(pl.Date))
    in_sample = frame.filter(pl.col("trade_date") <= pl.col("trained_until"))
    if in_sample.height:
        raise InSampleRowsError(
            f"{in_sample.height} in-sample rows (trade_date <= trained_until), "
            f"e.g. {in_sample.select('trade_date', 'ticker', 'trained_until').row(0)}"
        )
    if frame.select(pl.struct("trade_date", "ticker").is_duplicated().any()).item():
        raise ValueError("a (trade_date, ticker) is predicted more than once: overlapping test windows")
    if "fold" not in frame.columns:
        frame = frame.with_columns(pl.col("trained_until").rank("dense").cast(pl.Int64).sub(1).alias("fold"))
    frame = frame.drop_nulls([prediction_col, realised_col])

    pred, real = pl.col(prediction_col), pl.col(realised_col)
    bucket = pred.rank("average").over("trade_date") / pl.len().over("trade_date")
    daily = (
        frame.with_columns(bucket.alias("_pct"))
        .group_by("trade_date", "fold")
        .agg(
            pl.len().alias("n_names"),
            pl.corr(pred, real, method="spearman").alias("ic"),
            ((pred.sign() == real.sign()).mean()).alias("hit_rate"),
            (
                real.filter(pl.col("_pct") > 1.0 - quantile).mean()
                - real.filter(pl.col("_pct") <= quantile).mean()
            ).alias("long_short"),
        )
        .sort("trade_date")
    )

    def summary(block: pl.DataFrame) -> dict:
        ic = block["ic"].drop_nulls().drop_nans().to_numpy()
        long_short = block["long_short"].drop_nulls().drop_nans().to_numpy()
        ls_sr = sharpe_ratio(long_short)
        skew, kurt = return_moments(long_short) if long_short.size > 2 else (0.0, 3.0)
        return {
            "n_days": block.height,
            "first_date": block["trade_date"].min(),
            "last_date": block["trade_date"].max(),
            "mean_ic": float(ic.mean()) if ic.size else float("nan"),
            "ic_ir": sharpe_ratio(ic),
            "hit_rate": float(cast(float, block["hit_rate"].mean())),
            "long_short_mean": float(long_short.mean()) if long_short.size else float("nan"),
            "long_short_sharpe": ls_sr * math.sqrt(periods_per_year) if not math.isnan(ls_sr) else ls_sr,
            "long_short_psr": (
                probabilistic_sharpe_ratio(ls_sr, 0.0, long_short.size, skew, kurt)
                if long_short.size > 2 and not math.isnan(ls_sr)
                else float("nan")
            ),
        }

    trained_until = frame.group_by("fold").agg(pl.col("trained_until").max())
    folds = pl.DataFrame(
        [
            {"fold": fold, **summary(block)}
            for (fold,), block in daily.partition_by("fold", as_dict=True).items()
        ]
    )
    folds = folds.join(trained_until, on="fold").sort("fold") if folds.height else folds
    return {"daily": daily, "folds": folds, "overall": summary(daily)}
