"""The research harness's maths: walk-forward fits of every learner by quarterly block, ensembles, the traded
(smoothed) score and a simple book, all out of sample and on the same ticker-days.

It mirrors ``models.alpha_models`` / ``models.alpha_scores`` without Dagster or MLflow, so a benchmark
(``benchmarks/research.py``) and the tests can run it over many worlds in minutes:

- ``quarter_splits``: one test block per calendar quarter, trained on the ``train_sessions`` sessions that end
  ``purge_sessions`` before it (a block trains when the panel holds ``min_history_share`` of that window, as in production);
- ``walk_forward_predictions``: each model fitted once per block on the whole training window (the fixed-budget
  fitting rule of ``alpha_assets.lib.models.learners``) and scored on the block's sessions only;
- ``gated_ensemble``: the production gate (``ensemble.gated_weights``) on trailing ICs known before each day;
- ``smooth`` / ``walk_forward_halflife``: the traded score's exponential average, its half-life either fixed or
  chosen each day by the trailing IC of each candidate (past days only);
- ``quantile_book`` + ``book_stats``: an equal-weight long/short book (top/bottom ``quantile``) with an optional
  hold band (a held name stays while it ranks within ``quantile + band``), run through the project's vectorised
  backtest and cost model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import cast

import numpy as np
import polars as pl

from alpha_assets.lib.backtest.validation import sharpe_ratio
from alpha_assets.lib.models.ensemble import BASELINE, combine, gated_weights_for_day
from alpha_assets.lib.models.metrics import cross_sectional_rank, daily_ic, ic_summary
from alpha_assets.lib.models.walk_forward import BlockSplit, WalkForwardConfig, block_split
from alpha_assets.lib.settings import IC_WINDOW_SESSIONS, SESSIONS_PER_YEAR


def quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def training_window(split: BlockSplit, sessions: Sequence[date]) -> list[date]:
    """Every session from the first fit day to the last validation day (the whole training window: with no early
    stopping there is no validation slice to purge from the fit)."""
    lo = split.fit_dates[0]
    hi = split.validation_dates[-1] if split.validation_dates else split.fit_dates[-1]
    return [d for d in sessions if lo <= d <= hi]


def quarter_splits(
    sessions: Sequence[date],
    have: Iterable[date],
    cfg: WalkForwardConfig = WalkForwardConfig(),
    *,
    min_history_share: float,
) -> list[BlockSplit]:
    """One purged split per calendar quarter of ``sessions`` whose training window the panel (``have``: the dates
    with rows) covers to >= ``min_history_share`` (production's rule: ``partitions.MIN_HISTORY_SHARE``, passed in
    because ``lib`` does not import ``partitions``)."""
    ss = sorted(set(sessions))
    have = set(have)
    quarters: dict[date, list[date]] = {}
    for d in ss:
        quarters.setdefault(quarter_start(d), []).append(d)
    out = []
    for days in quarters.values():
        try:
            split = block_split(ss, days[0], days[-1], cfg)
        except ValueError:
            continue
        window = training_window(split, ss)
        if sum(d in have for d in window) >= min_history_share * len(window) and any(
            d in have for d in split.test_dates
        ):
            out.append(split)
    return out


def ranked_target(panel: pl.DataFrame, label: str) -> pl.DataFrame:
    """``target``: the label's cross-sectional rank per day in [-0.5, 0.5] (the production training target)."""
    return panel.with_columns(cross_sectional_rank(label).alias("target"))


def walk_forward_predictions(
    panel: pl.DataFrame,
    features: list[str],
    kinds: Sequence[str],
    splits: Sequence[BlockSplit],
    label: str = "fwd_ret_1",
    params: dict[str, dict] | None = None,
    budget: str = "seed",
    seed: int = 7,
    threads: int = 1,
    sessions: Sequence[date] | None = None,
    names: dict[str, str] | None = None,
) -> pl.DataFrame:
    """trade_date, ticker, model, block, score: every model of ``kinds`` fitted per block on its training window
    (rows with a known ``label``, target = its daily rank) and scored on the block's sessions.

    ``params``: per-kind overrides of the budget; ``names``: the model column's value per kind (default: kind).
    """
    from alpha_assets.lib.models.learners import make_learner

    sessions = sorted(set(sessions or panel["trade_date"].unique().to_list()))
    frames = []
    for split in splits:
        window = training_window(split, sessions)
        train = ranked_target(
            panel.filter(
                pl.col("trade_date").is_in(window) & pl.col(label).is_not_null() & pl.col(label).is_finite()
            ),
            label,
        )
        test = panel.filter(pl.col("trade_date").is_in(split.test_dates))
        if train.height == 0 or test.height == 0:
            continue
        x = train.select(features).fill_null(0.0).to_numpy().astype(np.float32)
        y = train["target"].to_numpy().astype(np.float32)
        xt = test.select(features).fill_null(0.0).to_numpy().astype(np.float32)
        block = quarter_start(split.test_dates[0]).isoformat()
        for kind in kinds:
            learner = make_learner(
                kind, seed=seed, params=(params or {}).get(kind), threads=threads, budget=budget
            )
            learner.fit(x, y, feature_names=features, groups=train["trade_date"].to_numpy())
            frames.append(
                test.select("trade_date", "ticker").with_columns(
                    pl.lit((names or {}).get(kind, kind)).alias("model"),
                    pl.lit(block).alias("block"),
                    pl.Series("score", learner.predict(xt)),
                )
            )
    schema = {
        "trade_date": pl.Date,
        "ticker": pl.String,
        "model": pl.String,
        "block": pl.String,
        "score": pl.Float64,
    }
    # polars types cast()'s Mapping key as a union (keys are invariant): a dict[str, dtype], its documented use, misses it
    return pl.concat(frames).cast(schema) if frames else pl.DataFrame(schema=schema)  # type: ignore[arg-type]


def model_daily_ics(preds: pl.DataFrame, labels: pl.DataFrame, label: str = "fwd_ret_1") -> pl.DataFrame:
    """trade_date, model, ic: each model's daily rank IC with ``label``."""
    joined = preds.join(labels.select("trade_date", "ticker", label), on=["trade_date", "ticker"])
    return daily_ic(joined, "score", label, by=("model",)).select("trade_date", "model", "ic")


def equal_ensemble(preds: pl.DataFrame, members: Sequence[str]) -> pl.DataFrame:
    """trade_date, ticker, score: the equal-weight mean of the members' daily ranks."""
    p = preds.filter(pl.col("model").is_in(list(members)))
    out = combine(
        p.select("trade_date", "ticker", "model", "score"), dict.fromkeys(members, 1.0 / len(members))
    )
    return out.rename({"alpha_score": "score"})


def gated_ensemble(
    preds: pl.DataFrame,
    daily_ics: pl.DataFrame,
    members: Sequence[str],
    baseline: str = BASELINE,
    min_history: int = 20,
    window: int = IC_WINDOW_SESSIONS,
    **gate,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(trade_date, ticker, score; trade_date, model, weight): the gated ensemble, each day's weights from the
    ICs known at its cut-off (next-day labels: days before it)."""
    days = preds["trade_date"].unique().sort().to_list()
    ics = daily_ics.filter(pl.col("model").is_in([*members, baseline]))  # the baseline may be a pseudo-model
    rows = []
    for d in days:
        w = gated_weights_for_day(
            ics, d, members, baseline, min_history, window, horizon=1, sessions=days, **gate
        )
        rows += [{"trade_date": d, "model": m, "weight": v} for m, v in w.items()]
    weights = pl.DataFrame(rows, schema={"trade_date": pl.Date, "model": pl.String, "weight": pl.Float64})
    p = preds.filter(pl.col("model").is_in(list(members))).select("trade_date", "ticker", "model", "score")
    return combine(p, weights).rename({"alpha_score": "score"}), weights


def smooth(scores: pl.DataFrame, halflife: float, column: str = "score") -> pl.DataFrame:
    """trade_date, ticker, score: the exponential average of ``column`` over past sessions, carried from the
    name's score on the previous session (as ``models.alpha_scores``; a name absent a day restarts)."""
    if halflife <= 0:
        return scores.select("trade_date", "ticker", pl.col(column).alias("score"))
    a = 1 - 0.5 ** (1 / halflife)
    out: list[pl.DataFrame] = []
    prev: dict[str, float] = {}
    for (_,), g in sorted(scores.partition_by("trade_date", as_dict=True).items()):
        tickers, raw = g["ticker"].to_list(), g[column].to_numpy()
        sm = np.array(
            [a * r + (1 - a) * prev[t] if t in prev else r for t, r in zip(tickers, raw, strict=True)]
        )
        prev = dict(zip(tickers, sm.tolist(), strict=True))
        out.append(g.select("trade_date", "ticker").with_columns(pl.Series("score", sm)))
    return pl.concat(out)


def walk_forward_halflife(
    raw: pl.DataFrame,
    labels: pl.DataFrame,
    grid: Sequence[float] = (0, 2, 5, 10, 20),
    window: int = 126,
    min_days: int = 20,
    default: float = 5.0,
    label: str = "fwd_ret_1",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(trade_date, ticker, score; trade_date, halflife): each day's score is the smoothing whose trailing mean
    IC over the last ``window`` days known at its cut-off is highest (``default`` until ``min_days`` exist)."""
    smoothed = {h: smooth(raw, h) for h in grid}
    ics = {
        h: model_daily_ics(s.with_columns(pl.lit("x").alias("model")), labels, label)
        for h, s in smoothed.items()
    }
    days = raw["trade_date"].unique().sort().to_list()
    ic_wide = None
    for h in grid:
        f = ics[h].select("trade_date", pl.col("ic").alias(str(h)))
        ic_wide = f if ic_wide is None else ic_wide.join(f, on="trade_date", how="full", coalesce=True)
    assert ic_wide is not None, "grid names no halflife"
    ic_wide = ic_wide.sort("trade_date")
    ic_dates = ic_wide["trade_date"].to_list()
    chosen, parts = [], []
    for i, d in enumerate(days):
        known = [j for j, t in enumerate(ic_dates) if t < d][-window:] if i else []
        h = default
        if len(known) >= min_days:
            sub = ic_wide[known[0] : known[-1] + 1]
            means = {g: float(cast(float, sub[str(g)].drop_nulls().mean()) or -1) for g in grid}
            h = max(grid, key=lambda g: (means[g], -g))
        chosen.append({"trade_date": d, "halflife": float(h)})
        parts.append(smoothed[h if h in smoothed else default].filter(pl.col("trade_date") == d))
    return pl.concat(parts), pl.DataFrame(chosen)


def ic_stats(scores: pl.DataFrame, labels: pl.DataFrame, label: str = "fwd_ret_1") -> dict:
    """ic, t_stat, n_days of ``score`` against ``label`` (daily Spearman)."""
    df = scores.join(labels.select("trade_date", "ticker", label), on=["trade_date", "ticker"])
    s = ic_summary(daily_ic(df, "score", label))
    return {"ic": s["ic"], "t_stat": s["t_stat"], "n_days": s["n_days"]}


def quantile_book(scores: pl.DataFrame, quantile: float = 0.3, band: float = 0.0) -> pl.DataFrame:
    """trade_date, ticker, weight: long the top ``quantile`` of names by score, short the bottom, equal weights,
    0.5 gross per side. With ``band`` > 0 a name already held on a side stays on it while its rank is within
    ``quantile + band`` of that end (a no-trade band on the ranking: fewer trades for the same forecast)."""
    rows = []
    held: dict[str, str] = {}
    for (d,), g in sorted(scores.partition_by("trade_date", as_dict=True).items()):
        g = g.drop_nulls("score").sort("score", "ticker", descending=[True, False])
        n = g.height
        k = math.floor(quantile * n + 1e-9)
        if k == 0:
            held = {}
            continue
        tickers = g["ticker"].to_list()
        pos = {t: i / max(n - 1, 1) for i, t in enumerate(tickers)}  # 0 = best
        keep = quantile + band
        longs = [t for t in tickers if held.get(t) == "long" and pos[t] <= keep]
        shorts = [t for t in tickers if held.get(t) == "short" and pos[t] >= 1 - keep]
        for t in tickers:  # fill up from the best (worst) names not yet held
            if len(longs) >= k:
                break
            if t not in longs and t not in shorts:
                longs.append(t)
        for t in reversed(tickers):
            if len(shorts) >= k:
                break
            if t not in shorts and t not in longs:
                shorts.append(t)
        longs, shorts = longs[:k], shorts[:k]
        held = {**dict.fromkeys(longs, "long"), **dict.fromkeys(shorts, "short")}
        rows += [(d, t, 0.5 / k) for t in longs] + [(d, t, -0.5 / k) for t in shorts]
    return pl.DataFrame(
        rows, schema={"trade_date": pl.Date, "ticker": pl.String, "weight": pl.Float64}, orient="row"
    )


def book_stats(weights: pl.DataFrame, bars: pl.DataFrame, costs=None) -> dict:
    """Net and gross Sharpe (annualised), mean daily turnover, costs as a share of NAV a year and of gross P&L,
    from the project's vectorised backtest (next-open execution, ``CostModel`` costs) over the weights' days."""
    from alpha_assets.lib.backtest.vectorised import run_vectorised

    if weights.height == 0:
        return {
            "net_sharpe": float("nan"),
            "gross_sharpe": float("nan"),
            "turnover": float("nan"),
            "costs_nav_year": float("nan"),
            "costs_share_gross": float("nan"),
        }
    lo, hi = weights["trade_date"].min(), weights["trade_date"].max()
    b = bars.filter(pl.col("trade_date").is_between(lo, hi)).filter(pl.col("volume") > 0)
    pnl = run_vectorised(b, weights.filter(pl.col("ticker").is_in(b["ticker"].unique().to_list())), costs).pnl
    pnl = pnl.filter(pl.col("trade_date") > lo)  # the first session only builds the book
    prev = pnl["equity"] - pnl["net_pnl"]
    net = (pnl["net_pnl"] / prev).to_numpy()
    gross = (pnl["gross_pnl"] / prev).to_numpy()

    def sharpe(r):
        return sharpe_ratio(r, periods_per_year=SESSIONS_PER_YEAR) if len(r) > 2 else float("nan")

    total_cost = float(pnl["total_cost"].sum())
    gross_pnl = float(pnl["gross_pnl"].sum())
    return {
        "net_sharpe": sharpe(net),
        "gross_sharpe": sharpe(gross),
        "turnover": float(cast(float, pnl["turnover"].mean())),
        "costs_nav_year": float(cast(float, (pnl["total_cost"] / prev).mean()) * SESSIONS_PER_YEAR),
        "costs_share_gross": total_cost / gross_pnl if gross_pnl > 0 else float("nan"),
    }


@dataclass(frozen=True)
class Scored:
    """A named score series and its IC figures (for the harness's table)."""

    name: str
    ic: float
    t_stat: float
    n_days: int
    share: float  # of the all-channel oracle's IC on the same ticker-days
