"""The statistical leakage gate: does any feature, or any quick combination of them, know the future?

A feature row of day D may only use what was known at D's cut-off. The gate tests that claim on the output with
the returns that came after D: the test may look at the future because it is a test (it runs on re-runs and
backfills, where the future is in the lake; on the newest days it is not, and those horizons are skipped for
those days). It checks every horizon the models may learn from, close-to-close forward returns over 1, 5 and 20
sessions (``fwd_ret_h``: the labels table, and the training label is one of them), and, for alt data only, the same
day's return (``ret_same_day``): a price feature may track it by design (``ret_1`` *is* it).

Three tests, each "beyond chance AND beyond anything honest":

**1. Window mean IC** (a feature that knows the future a little, every day). Per day, the rank IC of the feature
with the return over the day's n names with the return known (the feature ranked among all the day's names: the
Spearman IC whenever every name has the return); under no relation its standard error is 1/sqrt(n-1) (0.21 for 24
names, 0.10 for 100, 0.014 for 5,000). Over D days the mean IC ``m`` has the standard error
``se = max(sqrt(mean 1/(n-1)), sd of the daily ICs) / sqrt(D_eff)``, with ``D_eff = D / h`` for the h-session
horizon (overlapping returns make a persistent feature's daily ICs move together; h = 1 for the same day) and the
empirical dispersion used once there are 10 days (a factor-like feature's IC swings from day to day more than
sampling says). An honest daily equity feature has a mean IC of a few hundredths, rarely 0.1 (the demo world's
oracle: 0.02-0.05 at one day); the gate assumes at most ``plausible_ic`` = 0.10 at any horizon and flags
``(|m| - 0.10) / se >= z`` (z = 4): the IC is significantly above the largest honest one, not merely above zero.
What that takes:

- one day of 24 names: |IC| >= 0.10 + 4 x 0.209 = 0.93 (chance of an honest day reaching it: 2.6e-11 per
  feature and horizon, so about 1e-8 over a 500-test day); only an exact copy of a return gets there;
- 100 names x 60 days: 0.15 at one day, 0.22 at 5 (D_eff 12), 0.33 at 20 (D_eff 3);
- 5,000 names x 250 days: 0.104 at one day.

So ``rank(fwd_ret_5)`` (IC 1 with ``fwd_ret_5``, ~0.44 with ``fwd_ret_1``) and ``0.2 rank(fwd_ret_5) + 0.8 rank(noise)``
(IC ~0.24 with ``fwd_ret_5``) are refused on 100 names x 60 days; no window of any size can separate an IC of
0.07 from an honest feature (the same mixture with Gaussian noise), and the gate says so rather than guess.

**2. Leaking days** (a feature that is tomorrow's return on some days only). A day is *extreme* when its IC is 4
standard errors beyond ``plausible_day_ic`` = 0.40 on Fisher's scale:
``(atanh|IC| - atanh 0.40) / sqrt(1.06 / (n - 3)) >= 4`` (1.06/(n-3): the variance of atanh of a Spearman IC),
i.e. |IC| >= 0.87 on 24 names, 0.69 on 100, 0.45 on 5,000. The 0.40 allows for factor days, when a beta-like
feature ranks a whole day's returns. Honest days are extreme with probability at most p0 = 2 Phi(-4) = 6.3e-5
(far less when the true IC is near 0: 4e-9 on 24 names); k extreme days out of D are refused when the binomial
chance ``P(K >= k | D, p0)`` is below ``max_false_alarm`` = 1e-6: 2 extreme days within 22 days, 3 within 289,
4 within 1,122. At an h-session horizon, days and extreme days are counted in runs of h (overlapping returns make
an honest factor-like feature's extreme days come together). Tomorrow's return on 40% of 20 days gives 8. One day
alone can never fail this test (6.3e-5 > 1e-6).

**3. A quick in-window fit** (leaks no single column shows: two columns whose difference is tomorrow's return).
A ridge regression of each horizon's per-day return ranks on all features' per-day ranks, fitted on ``folds``
contiguous blocks of days minus one and scored on the block left out, with h sessions purged on each side of it
(an in-sample fit would always look good). Its out-of-fold daily IC ``m`` is tested like a feature's against
``plausible_model_ic`` = 0.15 (an honest combination can beat its best feature; every model of the demo world
reaches less than 0.05): ``(m - 0.15) / se >= 4``. It needs ``min_model_days`` = 10 days with the horizon known
(a one-day run cannot be cross-validated by day), takes every k-th day above ``max_model_rows`` rows, and sums
per-group Gram matrices (groups of days, ~64 MB in all) so one pass of products serves every fold and horizon;
a fold trains on at least twice as many rows as there are features or is skipped. A refusal
names the columns carrying the whole-window fit (up to 3 with a standardised weight of at least a quarter of the
largest).

False positives, measured by simulation (honest features: noise plus one with a planted IC of 0.05 with the next
day's return): 10,000 single days of 24 names x 13 features x 4 returns, 520,000 tests, no refusal (largest |IC|
0.84, against the bar of 0.93; the old fixed cap of |IC| 0.5 refused 30% of those days); 60 windows of 24 names x 40
days and 20 of 100 names x 60 days, 58 features each, in-window fit included: no refusal (the fit's largest z 0.14).
The tests repeat smaller versions of these.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.features.price_features import LABEL_HORIZONS, compute_labels

KEYS = ("trade_date", "ticker")
SAME_DAY = "ret_same_day"
FISHER_SPEARMAN = 1.06  # var(atanh(Spearman IC)) ~ 1.06 / (n - 3) under independence (Fieller et al. 1957)


@dataclass(frozen=True)
class LeakageConfig:
    plausible_ic: float = 0.10  # the largest honest mean daily rank IC of one feature, at any horizon
    plausible_day_ic: float = 0.40  # the largest honest IC of one feature on one day (factor days)
    plausible_model_ic: float = 0.15  # the largest honest out-of-fold IC of a model fitted in the window
    z: float = 4.0  # standard errors beyond the plausible ceiling
    max_false_alarm: float = 1e-6  # binomial chance below which a count of extreme days is refused
    min_names: int = 8  # a day with fewer names (with the return known) is not tested
    folds: int = 5
    min_model_days: int = 10
    ridge_alpha: float = 1e-3  # penalty per row, on standardised features
    max_model_rows: int = 60_000  # every k-th day above this (the demo's 100 names x 504 days: all)


@dataclass
class GateResult:
    findings: list[dict] = field(default_factory=list)  # refused: one dict per (test, column(s), horizon)
    coverage: dict[str, dict] = field(default_factory=dict)  # per horizon: days tested / skipped and why
    model: dict[str, dict] = field(default_factory=dict)  # per horizon: the in-window fit's out-of-fold IC

    @property
    def passed(self) -> bool:
        return not self.findings

    def message(self, limit: int = 5) -> str:
        lines = [describe(f) for f in self.findings[:limit]]
        more = len(self.findings) - limit
        return "; ".join(lines) + (f"; and {more} more" if more > 0 else "")


def horizon_of(target: str) -> int:
    """Sessions a return column spans forward: ``fwd_ret_5`` -> 5; the same day's return -> 0."""
    if target == SAME_DAY:
        return 0
    if target.startswith("fwd_ret_") and target[8:].isdigit():
        return int(target[8:])
    raise ValueError(f"not a return column the gate knows: {target!r}")


def gate_returns(prices: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """trade_date, ticker, ``ret_same_day`` (close D-1 -> D) and ``fwd_ret_h`` for every label horizon (the labels
    table's own definition, ``compute_labels``), for the days in [start, end].

    ``prices`` (raw prices: trade_date, ticker, open/high/low/close/volume) should start a few sessions before
    ``start`` and reach as far after ``end`` as is known: a horizon whose end session is not in it is null.
    """
    if prices.height == 0:
        return pl.DataFrame(schema={"trade_date": pl.Date, "ticker": pl.String, SAME_DAY: pl.Float64})
    px = prices.unique(list(KEYS)).sort("ticker", "trade_date")
    same = px.select(
        *KEYS, (pl.col("close") / pl.col("close").shift(1).over("ticker") - 1).alias(SAME_DAY)
    ).filter(pl.col("trade_date").is_between(start, end))
    if not px["trade_date"].is_between(start, end).any():
        return same
    fwd = compute_labels(px, start, end)
    return same.join(fwd, on=list(KEYS), how="left").sort(*KEYS)


def label_targets() -> list[str]:
    """The forward returns the models may learn from: features.labels' columns (the training label is one)."""
    return [f"fwd_ret_{h}" for h in LABEL_HORIZONS]


# ------------------------------------------------------------------------------------------------ per-day ICs


@dataclass
class DayPanel:
    """A frame laid out by day for the tests: rows sorted by day; each feature and each return as its per-day rank
    scaled to [-0.5, 0.5] (a null feature takes the day's mean first; a null return stays NaN and is ranked among
    the names that have it)."""

    dates: list[date]
    bounds: np.ndarray  # (days + 1,) row offsets: day i is rows bounds[i]:bounds[i + 1]
    features: list[str]
    ranks: np.ndarray  # (rows, features)
    returns: dict[str, np.ndarray]  # (rows,) ranked return per column, NaN where unknown


def _scaled_rank(c: str) -> pl.Expr:
    n = pl.col(c).count().over("trade_date")
    r = pl.col(c).rank("average").over("trade_date")
    return pl.when(n > 1).then((r - 1) / (n - 1) - 0.5).when(pl.col(c).is_not_null()).then(0.0).alias(c)


def day_panel(frame: pl.DataFrame, features: Sequence[str], targets: Sequence[str]) -> DayPanel:
    feats = list(features)
    targets = [t for t in targets if t in frame.columns]
    df = frame.sort(*KEYS).select(
        "trade_date",
        *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in feats],
        *[pl.col(t).cast(pl.Float64).fill_nan(None) for t in targets],
    )
    df = df.with_columns(
        [pl.col(c).fill_null(pl.col(c).mean().over("trade_date")).fill_null(0.0) for c in feats]
    )
    ranked = df.select("trade_date", *[_scaled_rank(c) for c in [*feats, *targets]])
    counts = ranked.group_by("trade_date", maintain_order=True).len()
    bounds = np.concatenate([[0], np.cumsum(counts["len"].to_numpy())]).astype(np.int64)
    x = ranked.select(feats).to_numpy().astype(np.float64) if feats else np.zeros((ranked.height, 0))
    returns = {t: ranked[t].fill_null(np.nan).to_numpy().astype(np.float64) for t in targets}
    return DayPanel(counts["trade_date"].to_list(), bounds, feats, x, returns)


def _segment_ics(x: np.ndarray, y: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (rows starts[i]:starts[i + 1]): the Pearson correlation of each column of ``x`` with ``y`` and
    the segment's row count; a column constant in a segment gives NaN."""
    n = np.diff(starts).astype(np.float64)
    at = starts[:-1]
    sx, sy = np.add.reduceat(x, at, axis=0), np.add.reduceat(y, at)
    sxx, syy = np.add.reduceat(x * x, at, axis=0), np.add.reduceat(y * y, at)
    sxy = np.add.reduceat(x * y[:, None], at, axis=0)
    cov = sxy - sx * (sy / n)[:, None]
    vx = sxx - sx * sx / n[:, None]
    vy = syy - sy * sy / n
    den = np.sqrt(np.maximum(vx, 0.0) * np.maximum(vy, 0.0)[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, cov / den, np.nan), n


def panel_ics(panel: DayPanel, cols: Sequence[int], target: str, min_names: int):
    """(day indices, names, ICs (days x cols)): each day's rank IC of the columns with ``target`` over the names
    whose target is known (the features ranked among all the day's names); days with fewer than ``min_names`` such
    names are left out, a column constant on a day is NaN."""
    y = panel.returns[target]
    known = np.isfinite(y)
    per_day = np.add.reduceat(known.astype(np.int64), panel.bounds[:-1]) if len(y) else np.zeros(0, np.int64)
    days = np.flatnonzero(per_day >= min_names)
    if len(days) == 0:
        return days, np.zeros(0), np.zeros((0, len(cols)))
    rows = np.concatenate([np.arange(panel.bounds[i], panel.bounds[i + 1]) for i in days])
    rows = rows[known[rows]]
    starts = np.concatenate([[0], np.cumsum(per_day[days])])
    ics, n = _segment_ics(panel.ranks[rows][:, list(cols)], y[rows], starts)
    return days, n, ics


def daily_ics(frame: pl.DataFrame, features: Sequence[str], target: str, min_names: int) -> pl.DataFrame:
    """trade_date, n, one column per feature: the day's Spearman IC with ``target`` over the names whose target is
    known (days with fewer than ``min_names`` such names left out; a feature constant on a day gives null)."""
    panel = day_panel(frame, features, [target])
    days, n, ics = panel_ics(panel, list(range(len(panel.features))), target, min_names)
    return pl.DataFrame(
        {
            "trade_date": pl.Series([panel.dates[i] for i in days], dtype=pl.Date),
            "n": n.astype(np.int64),
            **{c: pl.Series(c, ics[:, j]).fill_nan(None) for j, c in enumerate(panel.features)},
        }
    )


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(K >= k) for K ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lp + (n - j) * lq
        for j in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def window_se(ics: np.ndarray, n: np.ndarray, horizon: int) -> float:
    """Standard error of the mean of daily ICs (see the module docstring): sampling 1/sqrt(n-1), or the daily
    ICs' own dispersion once there are 10 days, over sqrt(days / horizon)."""
    days = len(ics)
    d_eff = max(1.0, days / max(horizon, 1))
    sampling = math.sqrt(float(np.mean(1.0 / (n - 1.0))))
    spread = float(np.std(ics, ddof=1)) if days >= 10 else 0.0
    return max(sampling, spread) / math.sqrt(d_eff)


def ic_findings(
    ics: np.ndarray, n: np.ndarray, horizon: int, cfg: LeakageConfig = LeakageConfig()
) -> list[dict]:
    """Tests 1 and 2 on one feature's daily ICs (NaN = not tested that day) and the days' name counts.

    Returns zero, one or two findings: ``{"test": "mean_ic", "ic", "z", "days"}`` and/or
    ``{"test": "leaking_days", "extreme_days", "days", "chance", "max_day_ic"}``."""
    ok = np.isfinite(ics) & (n >= max(cfg.min_names, 4))
    ics, n = ics[ok], n[ok].astype(np.float64)
    if len(ics) == 0:
        return []
    out = []
    m = float(np.mean(ics))
    se = window_se(ics, n, horizon)
    z = (abs(m) - cfg.plausible_ic) / se
    if z >= cfg.z:
        out.append(
            {
                "test": "mean_ic",
                "ic": m,
                "z": z,
                "days": len(ics),
                "needs": cfg.plausible_ic + cfg.z * se,
                "plausible": cfg.plausible_ic,
            }
        )
    fisher = np.arctanh(np.minimum(np.abs(ics), 1 - 1e-12))
    day_z = (fisher - math.atanh(cfg.plausible_day_ic)) / np.sqrt(FISHER_SPEARMAN / (n - 3.0))
    extreme = int((day_z >= cfg.z).sum())
    if extreme:
        p0 = math.erfc(cfg.z / math.sqrt(2))  # 2 Phi(-z): an honest day's chance of being extreme, at most
        # overlapping h-session returns make extreme days come in runs: count runs of h days, not days
        h = max(horizon, 1)
        chance = _binomial_tail(math.ceil(extreme / h), math.ceil(len(ics) / h), p0)
        if chance <= cfg.max_false_alarm:
            worst = int(np.argmax(np.abs(ics)))
            out.append(
                {
                    "test": "leaking_days",
                    "extreme_days": extreme,
                    "days": len(ics),
                    "chance": chance,
                    "max_day_ic": float(ics[worst]),
                    "expected": p0 * len(ics),
                    "plausible": cfg.plausible_day_ic,
                }
            )
    return out


# ------------------------------------------------------------------------------------------ the in-window fit


def model_check(
    panel: DayPanel, targets: Sequence[str], cfg: LeakageConfig = LeakageConfig()
) -> tuple[dict[str, dict], list[dict]]:
    """Test 3: per target, a ridge fitted by day-blocks; returns ({target: summary}, findings).

    The days (every ``step``-th when the window holds more than ``max_model_rows`` rows) are cut into groups small
    enough that one Gram matrix per group fits in ~64 MB; a fold's training set is every group whose days are more
    than h sessions from the fold's (so one pass of products serves every target and fold)."""
    summary: dict[str, dict] = {}
    findings: list[dict] = []
    n_days, feats = len(panel.dates), panel.features
    if n_days < cfg.min_model_days or not feats:
        for t in targets:
            summary[t] = {"skipped": f"{n_days} day(s) in the window; the fit needs {cfg.min_model_days}"}
        return summary, findings
    step = max(1, math.ceil(int(panel.bounds[-1]) / cfg.max_model_rows))
    days = np.arange(0, n_days, step)
    per_group = max(1, math.ceil(len(days) * len(feats) ** 2 * 8 / 64e6))
    groups = [days[i : i + per_group] for i in range(0, len(days), per_group)]
    group_rows = [
        np.concatenate([np.arange(panel.bounds[d], panel.bounds[d + 1]) for d in g]) for g in groups
    ]
    first = np.array([g[0] for g in groups])
    last = np.array([g[-1] for g in groups])
    grams = np.stack([panel.ranks[r].T @ panel.ranks[r] for r in group_rows])
    sizes = np.array([len(r) for r in group_rows], dtype=np.float64)
    for t in targets:
        h = max(horizon_of(t), 1)
        y_all = panel.returns[t]
        per_day = np.add.reduceat(np.isfinite(y_all).astype(np.int64), panel.bounds[:-1])
        usable = np.array(
            [i for i, g in enumerate(groups) if (per_day[g] >= cfg.min_names).all()], dtype=np.int64
        )
        if sum(len(groups[i]) for i in usable) < cfg.min_model_days or len(usable) < 2:
            summary[t] = {
                "skipped": f"{int((per_day[days] >= cfg.min_names).sum())} day(s) with {t} known; the "
                f"fit needs {cfg.min_model_days}"
            }
            continue
        y0 = np.where(
            np.isfinite(y_all), y_all, 0.0
        )  # a name whose return is unknown counts as the day's middle
        moments = np.stack([panel.ranks[group_rows[i]].T @ y0[group_rows[i]] for i in range(len(groups))])
        ics, ns = [], []
        for fold in np.array_split(usable, min(cfg.folds, len(usable))):
            lo, hi = first[fold[0]], last[fold[-1]]
            train = usable[(last[usable] < lo - h) | (first[usable] > hi + h)]
            if sizes[train].sum() < 2 * len(feats):
                continue
            beta = _ridge(grams[train].sum(0), moments[train].sum(0), sizes[train].sum(), cfg.ridge_alpha)
            for i in fold:
                for d in groups[i]:
                    a, b = panel.bounds[d], panel.bounds[d + 1]
                    known = np.isfinite(y_all[a:b])
                    pred = panel.ranks[a:b][known] @ beta
                    pr = np.argsort(np.argsort(pred, kind="stable"), kind="stable").astype(np.float64)
                    ic, n = _segment_ics(pr[:, None], y_all[a:b][known], np.array([0, int(known.sum())]))
                    ics.append(ic[0, 0])
                    ns.append(n[0])
        ic_arr, n_arr = np.array(ics), np.array(ns, dtype=np.float64)
        ok = np.isfinite(ic_arr)
        if ok.sum() < max(2, cfg.min_model_days // 2):
            summary[t] = {"skipped": "too few days outside the purge around each fold"}
            continue
        ic_arr, n_arr = ic_arr[ok], n_arr[ok]
        m = float(ic_arr.mean())
        se = window_se(ic_arr, n_arr, horizon_of(t))
        z = (m - cfg.plausible_model_ic) / se
        summary[t] = {"oof_ic": round(m, 4), "z": round(z, 2), "days": len(ic_arr)}
        if z >= cfg.z:
            gram, rows = grams[usable].sum(0), sizes[usable].sum()
            beta = _ridge(gram, moments[usable].sum(0), rows, cfg.ridge_alpha)
            weight = np.abs(beta * np.sqrt(np.maximum(np.diag(gram) / rows, 0.0)))
            # the columns carrying the fit: up to 3 with at least a quarter of the largest weight
            top = [feats[j] for j in np.argsort(-weight)[:3] if weight[j] >= 0.25 * weight.max() > 0]
            findings.append(
                {
                    "test": "model",
                    "features": top,
                    "return": t,
                    "ic": m,
                    "z": z,
                    "days": len(ic_arr),
                    "needs": cfg.plausible_model_ic + cfg.z * se,
                    "plausible": cfg.plausible_model_ic,
                }
            )
    return summary, findings


def _one_blas_thread():
    """The fit's products are small (features x features): BLAS threads only contend, badly on a busy machine
    (measured: 12 s instead of 0.6 s for the demo's Gram matrices under a load of 12 on 2 cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _ridge(gram: np.ndarray, moment: np.ndarray, rows: float, alpha: float) -> np.ndarray:
    """Ridge coefficients on standardised columns, returned on the original scale (constant columns get 0)."""
    scale = np.sqrt(np.maximum(np.diag(gram) / max(rows, 1.0), 0.0))
    live = scale > 1e-12
    beta = np.zeros(len(scale))
    if not live.any():
        return beta
    s = scale[live]
    g = gram[np.ix_(live, live)] / np.outer(s, s)
    g[np.diag_indices_from(g)] += alpha * rows
    beta[live] = np.linalg.solve(g, moment[live] / s) / s
    return beta


# ---------------------------------------------------------------------------------------------------- the gate


def leakage_gate(
    frame: pl.DataFrame,
    returns: pl.DataFrame,
    features: Sequence[str],
    cfg: LeakageConfig = LeakageConfig(),
    same_day_features: Sequence[str] = (),
    targets: Sequence[str] | None = None,
) -> GateResult:
    """Run the three tests on ``frame`` (trade_date, ticker, features) against ``returns`` (``gate_returns``).

    Every feature is tested against every forward horizon in ``targets`` (default: the label horizons);
    ``same_day_features`` (alt data; a subset of ``features``) also against ``ret_same_day``. Findings come mean-IC
    first, then leaking days, then the fit, each worst first; ``coverage`` says, per horizon, how many days could be
    tested, and ``model`` the fit's out-of-fold IC (or why it was skipped).
    """
    targets = list(targets) if targets is not None else label_targets()
    have = [t for t in [*targets, SAME_DAY] if t in returns.columns]
    joined = frame.select(*KEYS, *features).join(returns.select(*KEYS, *have), on=list(KEYS), how="left")
    panel = day_panel(joined, features, have)
    window_days = len(panel.dates)
    result = GateResult()
    index = {c: j for j, c in enumerate(panel.features)}
    plan: dict[str, list[str]] = {t: list(features) for t in targets}
    if same_day_features:
        plan[SAME_DAY] = list(same_day_features)
    for target, cols in plan.items():
        if target not in panel.returns:
            result.coverage[target] = {"days": 0, "of": window_days, "skipped": "no such return"}
            continue
        days, n, ics = panel_ics(panel, [index[c] for c in cols], target, cfg.min_names)
        cov: dict = {"days": len(days), "of": window_days}
        if len(days) < window_days:
            untested = sorted(set(range(window_days)) - set(days.tolist()))
            cov["skipped"] = (
                f"{len(untested)} day(s) from {panel.dates[untested[0]]} on: the return is not known "
                f"yet or fewer than {cfg.min_names} names have it"
            )
        result.coverage[target] = cov
        for j, c in enumerate(cols):
            for f in ic_findings(ics[:, j], n, horizon_of(target), cfg):
                result.findings.append({"features": [c], "return": target, **f})
    with _one_blas_thread():
        result.model, model_findings = model_check(panel, [t for t in targets if t in panel.returns], cfg)
    result.findings.extend(model_findings)
    order = {"mean_ic": 0, "leaking_days": 1, "model": 2}
    result.findings.sort(key=lambda f: (order[f["test"]], -f.get("z", f.get("extreme_days", 0))))
    return result


def describe(f: dict) -> str:
    """One line naming the column(s), the horizon and the statistic."""
    cols = ", ".join(f["features"])
    if f["test"] == "mean_ic":
        return (
            f"{cols} has mean IC {f['ic']:+.2f} with {f['return']} over {f['days']} day(s): {f['z']:.1f} "
            f"standard errors above the plausible {f['plausible']:.2f} (refused from |IC| {f['needs']:.2f})"
        )
    if f["test"] == "leaking_days":
        return (
            f"{cols} has an implausible IC with {f['return']} on {f['extreme_days']} of {f['days']} days "
            f"(4 standard errors above {f['plausible']:.2f}, up to {f['max_day_ic']:+.2f}; by chance "
            f"{f['expected']:.4f} days)"
        )
    return (
        f"a ridge on all features predicts {f['return']} out of fold with IC {f['ic']:+.2f} over "
        f"{f['days']} days: {f['z']:.1f} standard errors above the plausible {f['plausible']:.2f} (refused from "
        f"{f['needs']:.2f}); it leans on {cols}"
    )
