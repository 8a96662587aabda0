"""The alpha ensemble: weight each model by its trailing out-of-sample IC, combine their ranked scores into one
alpha score per name-day, and flag model pairs that say the same thing.

**The gate** (``gated_weights``): a linear model on the same features is the baseline every learner must beat:
ridge, or (``baseline=LINEAR``, what the pipeline trades) the equal blend of the two linear learners' daily ranks,
ridge and the screened IC-weighted composite, as one pseudo-model whose weight the two share equally. A
learner gets weight only while its trailing out-of-sample daily IC beats the baseline's on the same days (paired
difference, mean > 0 with a t-statistic of at least ``min_t``, over at least ``min_history`` days); the baseline
and the learners that pass share the book with weights shrunk toward equal (``shrink``: 0 = equal weights, 1 =
proportional to positive trailing IC). Until a learner has shown it beats the baseline, the baseline trades alone:
on unseen worlds the tree learners and the MLP found nothing while a ridge reached most of the oracle, and IC
weights over 63 noisy days moved by 0.14-0.34 a day.

The weights for day D only use ICs whose labels were known at D's cut-off: the IC of day t on ``fwd_ret_h``
needs the close of session t+h, so only t <= D - h sessions count. A model without ``min_history`` such days
(a new model, the first quarter) gets the seed weights, and so does everyone when no model has a positive
trailing IC: a zero-information period is no reason to bet on the least bad model.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import date
from itertools import combinations
from typing import cast

import polars as pl

from alpha_assets.lib.models.metrics import MIN_NAMES, cross_sectional_rank
from alpha_assets.lib.settings import IC_WINDOW_SESSIONS

SEED_WEIGHTS: dict[str, float] = {"xgboost": 0.3, "lightgbm": 0.3, "catboost": 0.2, "mlp": 0.2}
BASELINE = "ridge"  # the model every other one must beat to get ensemble weight
# The linear baseline: the equal blend of these learners' daily ranks, a pseudo-model named LINEAR in the gate. At
# the research benchmark's 0.05 strength neither linear learner dominates (tuning worlds, share of the oracle:
# ridge -0.10, 0.63, -1.23, 0.72, 0.69, 0.63; ic_weighted 0.45, -0.04, -0.46, 0.69, 0.66, 0.41; their blend 0.17,
# 0.27, -0.83, 0.74, 0.73, 0.59: mean 0.28 against ridge's 0.22), and a learner that must beat one of them on 63
# noisy days never does (the paired t of ~0.005 IC is ~0.8), so gating one against the other only picked ridge.
LINEAR = "linear"
LINEAR_MEMBERS = ("ridge", "ic_weighted")
# One-sided t of the paired daily IC difference a learner needs over the baseline. 2, not 1: at t >= 1 each learner
# with no edge passes by chance on ~16% of windows, and with 4-5 learners the membership churned the book (research
# benchmark, tuning seeds 1, 3, 5 at strength 0.05: turnover 20.0% -> 13.6% a day, net Sharpe better on 2 of 3
# and equal on the third; the trees and the MLP alone turn over 35-37% a day).
GATE_MIN_T = 2.0
GATE_SHRINK = 0.5  # weights: (1 - shrink) x equal + shrink x proportional to positive trailing IC


def _normalised(w: dict[str, float]) -> dict[str, float]:
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def ensemble_weights(
    trailing_ic: dict[str, float | None],
    min_history: int,
    history_days: dict[str, int],
    seed_weights: dict[str, float] = SEED_WEIGHTS,
) -> dict[str, float]:
    """Weights over the models of ``seed_weights`` (summing to 1, non-negative).

    Proportional to max(trailing IC, 0) once every model has >= ``min_history`` days of known IC; the seed
    weights (normalised) before that, or when no model's trailing IC is positive. Models outside
    ``seed_weights`` are ignored (the seed weights define the ensemble's members).
    """
    models = list(seed_weights)
    seed = _normalised(dict(seed_weights))
    ready = all(history_days.get(m, 0) >= min_history and trailing_ic.get(m) is not None for m in models)
    if not ready:
        return seed
    clipped = {m: max(float(cast(float, trailing_ic[m])), 0.0) for m in models}  # ready: every IC is known
    if sum(clipped.values()) <= 0:
        return seed
    return _normalised(clipped)


def gated_weights(
    paired_ic: pl.DataFrame,
    members: Sequence[str],
    baseline: str = BASELINE,
    min_history: int = 20,
    min_t: float = GATE_MIN_T,
    shrink: float = GATE_SHRINK,
) -> dict[str, float]:
    """Weights over ``members`` (the baseline among them), summing to 1, from trailing daily ICs.

    ``paired_ic``: trade_date, model, ic over the trailing window of days whose labels are known (the caller
    picks them, e.g. with ``known_window``). A member other than the baseline is admitted when it has
    >= ``min_history`` days paired with the baseline and its mean daily IC difference over them is positive with
    t >= ``min_t``; the admitted and the baseline get ``(1 - shrink) / k + shrink * max(ic, 0) / sum`` (equal
    weights alone when no admitted model has a positive IC). Everyone else: 0.
    """
    import numpy as np

    members = list(dict.fromkeys(members))
    linear = [m for m in LINEAR_MEMBERS if m in members] if baseline == LINEAR else []
    if (
        linear
    ):  # the linear learners gated as one (their blend's ICs: ``with_linear``), its weight shared equally
        inner = gated_weights(
            paired_ic, [LINEAR, *(m for m in members if m not in linear)], LINEAR, min_history, min_t, shrink
        )
        return {m: inner[LINEAR] / len(linear) if m in linear else inner[m] for m in members}
    if baseline not in members:
        raise ValueError(f"the baseline {baseline!r} is not among the members {members}")
    ic = paired_ic.drop_nulls("ic")
    wide = ic.pivot(on="model", index="trade_date", values="ic", aggregate_function="first")
    admitted = [baseline]
    if baseline in wide.columns:
        for m in members:
            if m == baseline or m not in wide.columns:
                continue
            d = wide.select((pl.col(m) - pl.col(baseline)).alias("d")).drop_nulls()["d"].to_numpy()
            if len(d) < max(min_history, 2):
                continue
            sd = float(d.std(ddof=1))
            t = float(d.mean() / sd * np.sqrt(len(d))) if sd > 0 else (np.inf if d.mean() > 0 else 0.0)
            if d.mean() > 0 and t >= min_t:
                admitted.append(m)
    means = {
        m: float(cast(float, wide[m].drop_nulls().mean()) or 0.0) if m in wide.columns else 0.0
        for m in admitted
    }
    pos = {m: max(v, 0.0) for m, v in means.items()}
    total = sum(pos.values())
    k = len(admitted)
    out = dict.fromkeys(members, 0.0)
    for m in admitted:
        out[m] = (1 - shrink) / k + (shrink * pos[m] / total if total > 0 else shrink / k)
    return out


def with_linear(preds: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """trade_date, ticker, model, score, *by: ``preds`` and the rows of the pseudo-model ``LINEAR``, per day (and
    ``by`` group, e.g. the recipe) the mean of the daily ranks of the ``LINEAR_MEMBERS`` present. Its daily IC is the
    baseline of ``gated_weights(baseline=LINEAR)``; ``combine`` with the two members at half its weight each trades
    the same blend."""
    keys = ["trade_date", *by]
    base = preds.select("trade_date", "ticker", "model", "score", *by)
    lin = (
        base.filter(pl.col("model").is_in(LINEAR_MEMBERS))
        .with_columns(cross_sectional_rank("score", [*keys, "model"]).alias("score"))
        .group_by([*keys, "ticker"])
        .agg(pl.col("score").mean())
        .with_columns(pl.lit(LINEAR).alias("model"))
    )
    return pl.concat([base, lin.select(base.columns)])


def known_window(
    daily_ic_by_model: pl.DataFrame,
    day: date,
    window: int = IC_WINDOW_SESSIONS,
    horizon: int = 1,
    sessions: Sequence[date] | None = None,
) -> pl.DataFrame:
    """The rows of ``daily_ic_by_model`` (trade_date, model, ic) whose label was known at ``day``'s cut-off
    (t <= ``day`` - ``horizon`` sessions), the last ``window`` such sessions."""
    cal = sorted(
        set(sessions) if sessions is not None else set(daily_ic_by_model["trade_date"].to_list()) | {day}
    )
    last_known = bisect.bisect_left(cal, day) - horizon
    if last_known < 0:
        return daily_ic_by_model.head(0)
    lo, hi = cal[max(0, last_known - window + 1)], cal[last_known]
    return daily_ic_by_model.filter(pl.col("trade_date").is_between(lo, hi))


def gated_weights_for_day(
    daily_ic_by_model: pl.DataFrame,
    day: date,
    members: Sequence[str],
    baseline: str = BASELINE,
    min_history: int = 20,
    window: int = IC_WINDOW_SESSIONS,
    horizon: int = 1,
    sessions: Sequence[date] | None = None,
    min_t: float = GATE_MIN_T,
    shrink: float = GATE_SHRINK,
) -> dict[str, float]:
    """``gated_weights`` over the trailing window known at ``day`` (the usual composition)."""
    known = known_window(daily_ic_by_model, day, window, horizon, sessions)
    return gated_weights(
        known.select("trade_date", "model", "ic"), members, baseline, min_history, min_t, shrink
    )


def trailing_ic(
    daily_ic_by_model: pl.DataFrame,
    day: date,
    window: int = IC_WINDOW_SESSIONS,
    horizon: int = 1,
    sessions: Sequence[date] | None = None,
) -> dict[str, dict]:
    """Per model {"ic": mean IC over the window or None, "n_days": days used}, from trade_date, model, ic rows.

    Only days t with t <= (``day`` - ``horizon`` sessions) count (their label was known at ``day``'s cut-off),
    and of those the last ``window`` sessions. Sessions come from ``sessions`` (pass the trading calendar) or,
    when None, from the trade_dates in the frame plus ``day`` (exact as long as no session is missing from it).
    """
    cal = sorted(
        set(sessions) if sessions is not None else set(daily_ic_by_model["trade_date"].to_list()) | {day}
    )
    i = bisect.bisect_left(cal, day)  # position of day (or of the first session after it)
    last_known = i - horizon
    models = daily_ic_by_model["model"].unique().sort().to_list()
    if last_known < 0:
        return {m: {"ic": None, "n_days": 0} for m in models}
    hi = cal[last_known]
    lo = cal[max(0, last_known - window + 1)]
    known = daily_ic_by_model.filter(pl.col("trade_date").is_between(lo, hi)).drop_nulls("ic")
    stats = {
        r["model"]: r
        for r in known.group_by("model").agg(pl.col("ic").mean(), pl.len().alias("n")).to_dicts()
    }
    return {
        m: {"ic": stats[m]["ic"], "n_days": int(stats[m]["n"])} if m in stats else {"ic": None, "n_days": 0}
        for m in models
    }


def weights_for_day(
    daily_ic_by_model: pl.DataFrame,
    day: date,
    min_history: int = 20,
    window: int = IC_WINDOW_SESSIONS,
    horizon: int = 1,
    sessions: Sequence[date] | None = None,
    seed_weights: dict[str, float] = SEED_WEIGHTS,
) -> dict[str, float]:
    """``ensemble_weights`` fed by ``trailing_ic`` for one day (the usual composition)."""
    stats = trailing_ic(daily_ic_by_model, day, window, horizon, sessions)
    return ensemble_weights(
        {m: s["ic"] for m, s in stats.items()},
        min_history,
        {m: s["n_days"] for m, s in stats.items()},
        seed_weights,
    )


def combine(predictions: pl.DataFrame, weights: dict[str, float] | pl.DataFrame) -> pl.DataFrame:
    """trade_date, ticker, alpha_score: the weighted sum of each model's score ranked to [-0.5, 0.5] per day.

    ``predictions`` is long (trade_date, ticker, model, score). ``weights`` is one dict for every day or a frame
    (trade_date, model, weight) of per-day weights. A model missing a name counts as neutral (0) for it.
    """
    ranked = predictions.with_columns(cross_sectional_rank("score", ["trade_date", "model"]).alias("rank"))
    if isinstance(weights, dict):
        w = pl.DataFrame({"model": list(weights), "weight": [float(v) for v in weights.values()]})
        ranked = ranked.join(w, on="model", how="inner")
    else:
        ranked = ranked.join(
            weights.select("trade_date", "model", "weight"), on=["trade_date", "model"], how="inner"
        )
    return (
        ranked.group_by("trade_date", "ticker")
        .agg((pl.col("rank").fill_null(0.0) * pl.col("weight")).sum().alias("alpha_score"))
        .sort("trade_date", "ticker")
    )


def correlation_report(predictions: pl.DataFrame, threshold: float = 0.7) -> pl.DataFrame:
    """model_a, model_b, mean_corr (mean daily rank correlation of their scores), n_days, above_threshold."""
    wide = predictions.pivot(
        on="model", index=["trade_date", "ticker"], values="score", aggregate_function="first"
    )
    models = sorted(c for c in wide.columns if c not in ("trade_date", "ticker"))
    rows = []
    for a, b in combinations(models, 2):
        daily = (
            wide.select("trade_date", a, b)
            .drop_nulls()
            .with_columns(pl.col(a, b).rank("average").over("trade_date"))
            .group_by("trade_date")
            .agg(pl.corr(a, b).alias("rho"), pl.len().alias("n"))
            .filter(pl.col("n") >= MIN_NAMES)
            .with_columns(pl.col("rho").fill_nan(None))
            .drop_nulls()
        )
        mean = float(cast(float, daily["rho"].mean())) if daily.height else float("nan")
        rows.append(
            {
                "model_a": a,
                "model_b": b,
                "mean_corr": mean,
                "n_days": daily.height,
                "above_threshold": bool(mean > threshold) if daily.height else False,
            }
        )
    schema = {
        "model_a": pl.String,
        "model_b": pl.String,
        "mean_corr": pl.Float64,
        "n_days": pl.Int64,
        "above_threshold": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)


def recipe_ensembles(predictions: pl.DataFrame) -> pl.DataFrame:
    """Each recipe's equal-weight ensemble as model "ensemble": trade_date, ticker, model, recipe, score.

    ``predictions`` is long (trade_date, ticker, model, recipe, score). Equal weights make the series comparable
    across recipes and days (the promotion test, model health and the report use it); the traded ensemble is
    IC-weighted (``weights_for_day``)."""
    frames = []
    for (recipe,), g in predictions.partition_by("recipe", as_dict=True).items():
        models = g["model"].unique().to_list()
        weights = dict.fromkeys(models, 1.0 / len(models))
        ens = combine(g.select("trade_date", "ticker", "model", "score"), weights)
        frames.append(
            ens.select(
                "trade_date",
                "ticker",
                pl.lit("ensemble").alias("model"),
                pl.lit(recipe).alias("recipe"),
                pl.col("alpha_score").alias("score"),
            )
        )
    schema = {
        "trade_date": pl.Date,
        "ticker": pl.String,
        "model": pl.String,
        "recipe": pl.String,
        "score": pl.Float64,
    }
    # polars types cast()'s Mapping key as a union (keys are invariant): a dict[str, dtype], its documented use, misses it
    return pl.concat(frames).cast(schema) if frames else pl.DataFrame(schema=schema)  # type: ignore[arg-type]
