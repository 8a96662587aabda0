"""Is a live model still the model we validated? Distribution drift, IC decay and the retraining decision.

Population Stability Index, PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%), with bins cut
at the quantiles of the expected (training) sample. The usual reading, used here:

- PSI < 0.1: stable;  0.1 - 0.2: moderate shift, watch;  > 0.2: drift (``HealthThresholds.psi_drift``).

CSI is the same statistic applied to the model's score (the characteristic) instead of an input feature.

IC decay: the rolling mean of the daily rank IC over ``window`` sessions compared with the IC the model showed in
training/validation. A relative drop above 10% warns, above 20% asks for retraining.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

PSI_EPS = 1e-4  # floor on a bin's share: an empty bin must not make PSI infinite
PSI_STABLE = 0.1
PSI_DRIFT = 0.2
# PSI of n values drawn from the reference's own distribution (10 bins, 2,000 draws each): mean 4.72 at n = 5,
# 2.74 at n = 10, 0.55 at n = 30 (80% of them "drift"), 0.094 at n = 100 (2.8% above 0.2), 0.031 at n = 300.
# Below ~10 values a bin, PSI measures the sample size, not drift: it is not computed (null in feature_psi's table).
MIN_PSI_VALUES = 100


@dataclass(frozen=True)
class HealthThresholds:
    warn_ic_drop: float = 0.10  # relative drop of the rolling IC vs training IC that warns
    retrain_ic_drop: float = 0.20  # ... and that asks for retraining
    psi_drift: float = PSI_DRIFT  # max feature PSI above which the inputs have drifted
    min_sessions: int = 30  # live sessions of IC needed before the IC rule may fire


def _finite(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    return a[np.isfinite(a)]


def psi_reference(expected: np.ndarray, bins: int = 10) -> dict | None:
    """The expected side of PSI, kept so a day's PSI needs no training rows: the inner quantile edges of
    ``expected`` (repeated quantiles merged) and its share in each bin (before the PSI_EPS floor). None when
    ``expected`` has no finite value. A few dozen numbers per feature, JSON-ready."""
    e = _finite(expected)
    if e.size == 0:
        return None
    inner = np.unique(np.quantile(e, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    # bins are (edge_k, edge_k+1]: the same rule on both samples
    share = np.bincount(np.searchsorted(inner, e, side="left"), minlength=inner.size + 1) / e.size
    return {"inner": inner.tolist(), "share": share.tolist()}


def bin_counts(reference: dict, actual: np.ndarray) -> np.ndarray:
    """How many finite values of ``actual`` fall in each bin of a ``psi_reference``: samples of several days are
    pooled by adding their counts."""
    a = _finite(actual)
    inner = np.asarray(reference["inner"], dtype=np.float64)
    return np.bincount(np.searchsorted(inner, a, side="left"), minlength=inner.size + 1)


def psi_from_counts(reference: dict | None, counts: np.ndarray | None) -> float:
    """PSI of a sample given as ``bin_counts`` against its ``psi_reference``; NaN when either side is empty."""
    if reference is None or counts is None:
        return math.nan
    n = int(counts.sum())
    if n == 0:
        return math.nan
    e_share = np.clip(np.asarray(reference["share"], dtype=np.float64), PSI_EPS, None)
    a_share = np.clip(counts / n, PSI_EPS, None)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def psi_against(reference: dict | None, actual: np.ndarray) -> float:
    """PSI of ``actual`` against a ``psi_reference`` (NaN when either side is empty)."""
    return psi_from_counts(reference, None if reference is None else bin_counts(reference, actual))


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` over ``bins`` quantile bins of ``expected`` (NaNs ignored).

    Repeated quantiles (a discrete feature) merge bins. NaN when either sample is empty.
    """
    return psi_against(psi_reference(expected, bins), actual)


def feature_psi(
    train: pl.DataFrame,
    current: pl.DataFrame,
    features: list[str],
    bins: int = 10,
    min_values: int = MIN_PSI_VALUES,
) -> pl.DataFrame:
    """PSI per feature (training rows as expected, current rows as actual): feature, psi, drift (psi > 0.2),
    values (the current sample's finite values) and observations; psi is null below ``min_values``."""
    return feature_psi_against(feature_references(train, features, bins), current, features, min_values)


def feature_references(train: pl.DataFrame, features: list[str], bins: int = 10) -> dict[str, dict | None]:
    """``psi_reference`` of each feature over the training rows: what ``feature_psi_against`` compares a day to."""
    return {f: psi_reference(train[f].cast(pl.Float64).to_numpy(), bins) for f in features}


def feature_counts(
    references: dict[str, dict | None], current: pl.DataFrame, features: list[str]
) -> dict[str, np.ndarray | None]:
    """``bin_counts`` of each feature of ``current`` (None where the feature has no reference)."""
    return {
        f: None if (ref := references[f]) is None else bin_counts(ref, current[f].cast(pl.Float64).to_numpy())
        for f in features
    }


def feature_psi_from_counts(
    references: dict[str, dict | None],
    counts: dict[str, np.ndarray | None],
    features: list[str],
    min_values: int = MIN_PSI_VALUES,
    observations: dict[str, int] | None = None,
) -> pl.DataFrame:
    """``feature_psi_against`` of a sample given as ``feature_counts`` (several days' counts added up).

    ``observations``: per feature, how many of the sample's values are distinct observations (see
    ``new_observations``); PSI needs ``min_values`` of those. Without it every value counts as one."""
    sizes = [0 if (c := counts[f]) is None else int(c.sum()) for f in features]
    seen = [observations.get(f, 0) for f in features] if observations is not None else sizes
    values = [
        psi_from_counts(references[f], counts[f]) if n >= min_values else math.nan
        for f, n in zip(features, seen, strict=True)
    ]
    return (
        pl.DataFrame(
            {"feature": list(features), "psi": values, "values": sizes, "observations": seen},
            schema={"feature": pl.String, "psi": pl.Float64, "values": pl.Int64, "observations": pl.Int64},
        )
        .with_columns(
            # null, not NaN, where PSI is not computed (no training values, or too few current ones): SQL's
            # `ORDER BY psi DESC NULLS LAST` then ranks the real values first (DuckDB and polars order NaN above every
            # number)
            pl.col("psi").fill_nan(None)
        )
        .select(
            "feature",
            "psi",
            (pl.col("psi") > PSI_DRIFT).fill_null(False).alias("drift"),  # no evidence is not drift
            "values",
            "observations",
        )
    )


def new_observations(frame: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    """Per trade_date, how many finite values of each feature are new: not the value the same ticker had on its
    previous row. A quarterly filing score carried forward for 60 sessions is one observation, not 60; a rolling
    price feature is new every day. The frame's first row of each ticker counts as new.
    Returns trade_date plus one count column per feature."""
    if frame.height == 0:
        return pl.DataFrame(schema={"trade_date": pl.Date, **dict.fromkeys(features, pl.Int64)})
    ordered = frame.select("trade_date", "ticker", *[pl.col(f).cast(pl.Float64) for f in features]).sort(
        "ticker", "trade_date"
    )
    fresh = [
        (
            pl.col(f).is_finite()
            & (pl.col(f).shift(1).over("ticker").is_null() | (pl.col(f) != pl.col(f).shift(1).over("ticker")))
        )
        .fill_null(False)
        .alias(f)
        for f in features
    ]
    return (
        ordered.select("trade_date", *fresh).group_by("trade_date").agg(pl.col(features).sum().cast(pl.Int64))
    )


def feature_psi_against(
    references: dict[str, dict | None],
    current: pl.DataFrame,
    features: list[str],
    min_values: int = MIN_PSI_VALUES,
) -> pl.DataFrame:
    """``feature_psi`` with the training side already reduced to ``feature_references``."""
    return feature_psi_from_counts(
        references, feature_counts(references, current, features), features, min_values
    )


def csi(train_scores: np.ndarray, current_scores: np.ndarray, bins: int = 10) -> float:
    """Characteristic stability of the model score: PSI of today's scores against the training scores."""
    return psi(train_scores, current_scores, bins)


def rolling_ic(daily_ic: pl.DataFrame, window: int = 30) -> pl.DataFrame:
    """Rolling mean IC per model over ``window`` sessions: trade_date, model, ic_<window> (ic_30 by default).

    Input: trade_date, model, ic (one row per session and model). Null until ``window`` sessions with an IC.
    """
    name = f"ic_{window}"
    missing = {"trade_date", "model", "ic"} - set(daily_ic.columns)
    if missing:
        raise KeyError(f"daily IC frame lacks columns {sorted(missing)}")
    return (
        daily_ic.select("trade_date", "model", pl.col("ic").cast(pl.Float64))
        .drop_nulls("ic")
        .filter(pl.col("ic").is_not_nan())
        .sort("model", "trade_date")
        .with_columns(pl.col("ic").rolling_mean(window, min_samples=window).over("model").alias(name))
        .select("trade_date", "model", name)
        .sort("trade_date", "model")
    )


def ic_drop(rolling: float, training_ic: float, warn: float = 0.10, retrain: float = 0.20) -> dict:
    """Relative IC drop and status: "ok" (drop <= warn), "warn" (> warn), "retrain" (> retrain).

    drop_share = (training_ic - rolling) / training_ic; negative when the live IC beats training.
    training_ic <= 0: the model showed no edge when it was fitted, so a relative drop means nothing;
    drop_share is NaN and the status is "retrain" (there is no edge to protect; refit before trusting it).
    A NaN rolling IC (not enough live sessions) is "ok" with a NaN drop: no evidence yet.
    """
    out = {"rolling_ic": float(rolling), "training_ic": float(training_ic)}
    if not np.isfinite(training_ic) or training_ic <= 0:
        return out | {"drop_share": math.nan, "status": "retrain"}
    if not np.isfinite(rolling):
        return out | {"drop_share": math.nan, "status": "ok"}
    drop = (training_ic - rolling) / training_ic
    status = "retrain" if drop > retrain else "warn" if drop > warn else "ok"
    return out | {"drop_share": float(drop), "status": status}


def importance_stability(imp_a: dict[str, float], imp_b: dict[str, float]) -> float:
    """Spearman rank correlation of two importance vectors (union of features, absent = 0); NaN if undefined."""
    from scipy.stats import spearmanr

    features = sorted(set(imp_a) | set(imp_b))
    a = np.array([imp_a.get(f, 0.0) for f in features], dtype=np.float64)
    b = np.array([imp_b.get(f, 0.0) for f in features], dtype=np.float64)
    if len(features) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def needs_retraining(
    health_rows: pl.DataFrame, thresholds: HealthThresholds = HealthThresholds()
) -> tuple[bool, list[str]]:
    """Should the models be refitted now, and why. Reads the latest row of each model.

    ``health_rows``: one row per (trade_date, model) with ``rolling_ic`` (or ``ic_30``) and ``training_ic``;
    optional ``n_sessions`` (live sessions behind the rolling IC; otherwise the count of non-null rolling ICs of
    the model) and ``max_psi`` (the largest feature PSI that day). IC rule: a drop above ``retrain_ic_drop``
    once at least ``min_sessions`` sessions are live. Drift rule: ``max_psi`` above ``psi_drift``.
    """
    if health_rows.is_empty():
        return False, []
    ic_col = "rolling_ic" if "rolling_ic" in health_rows.columns else "ic_30"
    frame = health_rows.sort("model", "trade_date")
    if "n_sessions" not in frame.columns:
        frame = frame.with_columns(
            pl.col(ic_col).is_not_null().cast(pl.Int64).cum_sum().over("model").alias("n_sessions")
        )
    latest = frame.group_by("model", maintain_order=True).last().sort("model")
    reasons: list[str] = []
    for row in latest.iter_rows(named=True):
        model, day = row["model"], row["trade_date"]
        rolling = row.get(ic_col)
        training = row.get("training_ic")
        if (
            rolling is not None
            and training is not None
            and (row["n_sessions"] or 0) >= thresholds.min_sessions
        ):
            verdict = ic_drop(rolling, training, thresholds.warn_ic_drop, thresholds.retrain_ic_drop)
            if verdict["status"] == "retrain":
                if math.isnan(verdict["drop_share"]):
                    reasons.append(f"{model}: training IC {training:.4f} is not positive ({day})")
                else:
                    reasons.append(
                        f"{model}: rolling IC {rolling:.4f} is {verdict['drop_share']:.0%} below training IC "
                        f"{training:.4f} (> {thresholds.retrain_ic_drop:.0%}, {day})"
                    )
        max_psi = row.get("max_psi")
        if max_psi is not None and np.isfinite(max_psi) and max_psi > thresholds.psi_drift:
            reasons.append(f"{model}: feature drift, max PSI {max_psi:.3f} > {thresholds.psi_drift} ({day})")
    return bool(reasons), reasons
