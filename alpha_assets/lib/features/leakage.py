"""The statistical leakage gate: does any feature, or any quick combination of them, know the future?

A feature row of day D may only use what was known at D's cut-off. The gate tests that claim on the output with
the returns that came after D: the test may look at the future because it is a test (it runs on re-runs and
backfills, where the future is in the lake; on the newest days it is not, and those horizons are skipped for
those days). It checks every horizon the models may learn from, close-to-close forward returns over 1, 5 and 20
sessions (``fwd_ret_h``: the labels table, and the training label is one of them), and, for alt data only, the same
day's return (``ret_same_day``): a price feature may track it by design (``ret_1`` *is* it).

Three tests, each "beyond chance AND beyond anything honest":

**1. Window mean IC** (a feature that knows the future a little, every day). Per day, the Spearman IC of the
feature with the return over the day's n names; under no relation its standard error is 1/sqrt(n-1) (0.21 for 24
names, 0.10 for 100, 0.014 for 5,000). Over D days the mean IC ``m`` has the standard error
``se = max(sqrt(mean 1/(n-1)), sd of the daily ICs) / sqrt(D_eff)``, with ``D_eff = D / h`` for the h-session
horizon (overlapping returns make a persistent feature's daily ICs move together; h = 1 for the same day) and the
empirical dispersion used once there are 10 days (a factor-like feature's IC swings from day to day more than
sampling says). An honest daily equity feature has a mean IC of a few hundredths, rarely 0.1 (the demo world's
oracle: 0.02-0.05 at one day); the gate assumes at most ``plausible_ic`` = 0.10 at any horizon and flags
``(|m| - 0.10) / se >= z`` (z = 4): the IC is significantly above the largest honest one, not merely above zero.
What that takes:

- one day of 24 names: |IC| >= 0.10 + 4 x 0.209 = 0.93 (chance of an honest day reaching it: about 1e-11 per
  feature and horizon, so about 1e-8 over a 500-test day); only an exact copy of a return gets there;
- 100 names x 60 days: 0.15 at one day, 0.21 at 5 (D_eff 12), 0.33 at 20 (D_eff 3);
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
chance ``P(K >= k | D, p0)`` is below ``max_false_alarm`` = 1e-6: 2 extreme days within 22, 3 within 60, 4 within
400. Tomorrow's return on 40% of 20 days gives 8. One day alone can never fail this test (6.3e-5 > 1e-6).

**3. A quick in-window fit** (leaks no single column shows: two columns whose difference is tomorrow's return).
A ridge regression of each horizon's per-day return ranks on all features' per-day ranks, fitted on ``folds``
contiguous blocks of days minus one and scored on the block left out, with h sessions purged on each side of it
(an in-sample fit would always look good). Its out-of-fold daily IC ``m`` is tested like a feature's against
``plausible_model_ic`` = 0.15 (an honest combination can beat its best feature; every model of the demo world
reaches less than 0.05): ``(m - 0.15) / se >= 4``. It needs ``min_model_days`` = 10 days with the horizon known
(a one-day run cannot be cross-validated by day) and subsamples days above ``max_model_rows`` rows. A refusal
names the columns carrying the whole-window fit (up to 3 with a standardised weight of at least a quarter of the
largest).

The false-positive rate is checked by simulation in the tests (honest days of 24 names with a planted IC of 0.05:
no refusal in thousands).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
    max_model_rows: int = 200_000


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
    return [f"fwd_ret_{h}" for h in LABEL_HORIZONS]


# ------------------------------------------------------------------------------------------------ per-day ICs


def daily_ics(frame: pl.DataFrame, features: Sequence[str], target: str, min_names: int) -> pl.DataFrame:
    """trade_date, n, one column per feature: the day's Spearman IC with ``target`` over the names whose target is
    known (days with fewer than ``min_names`` such names, and features constant on a day, give null)."""
    known = frame.filter(pl.col(target).is_not_null() & pl.col(target).is_finite())
    if known.height == 0:
        return pl.DataFrame(
            schema={"trade_date": pl.Date, "n": pl.UInt32, **dict.fromkeys(features, pl.Float64)}
        )
    filled = known.with_columns([pl.col(c).cast(pl.Float64).fill_nan(None) for c in features]).with_columns(
        [pl.col(c).fill_null(pl.col(c).mean().over("trade_date")) for c in features]
    )
    daily = (
        filled.group_by("trade_date")
        .agg([pl.len().alias("n")] + [pl.corr(c, target, method="spearman").alias(c) for c in features])
        .filter(pl.col("n") >= min_names)
        .with_columns([pl.col(c).fill_nan(None) for c in features])
    )
    return daily.sort("trade_date")


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
            {"test": "mean_ic", "ic": m, "z": z, "days": len(ics), "needs": cfg.plausible_ic + cfg.z * se}
        )
    fisher = np.arctanh(np.minimum(np.abs(ics), 1 - 1e-12))
    day_z = (fisher - math.atanh(cfg.plausible_day_ic)) / np.sqrt(FISHER_SPEARMAN / (n - 3.0))
    extreme = int((day_z >= cfg.z).sum())
    if extreme:
        p0 = math.erfc(cfg.z / math.sqrt(2))  # 2 Phi(-z): an honest day's chance of being extreme, at most
        chance = _binomial_tail(extreme, len(ics), p0)
        if chance <= cfg.max_false_alarm:
            worst = int(np.argmax(np.abs(ics)))
            out.append({"test": "leaking_days", "extreme_days": extreme, "days": len(ics), "chance": chance,
                        "max_day_ic": float(ics[worst]), "expected": p0 * len(ics)})  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------ the in-window fit


def _centered_ranks(frame: pl.DataFrame, cols: Sequence[str]) -> list[pl.Expr]:
    """Per-day ranks scaled to [-0.5, 0.5] (null stays null)."""
    out = []
    for c in cols:
        n = pl.col(c).count().over("trade_date")
        r = pl.col(c).rank("average").over("trade_date")
        out.append(
            pl.when(n > 1).then((r - 1) / (n - 1) - 0.5).when(pl.col(c).is_not_null()).then(0.0).alias(c)
        )
    return out


def _spearman_rows(pred: np.ndarray, y: np.ndarray) -> float:
    """Spearman IC of a prediction against (already ranked) target values, one day."""
    if len(pred) < 3:
        return float("nan")
    rp = np.argsort(np.argsort(pred, kind="stable"), kind="stable").astype(np.float64)
    rp -= rp.mean()
    yc = y - y.mean()
    den = math.sqrt(float(rp @ rp) * float(yc @ yc))
    return float(rp @ yc) / den if den > 0 else float("nan")


def model_check(
    frame: pl.DataFrame,
    features: Sequence[str],
    targets: Sequence[str],
    cfg: LeakageConfig = LeakageConfig(),
) -> tuple[dict[str, dict], list[dict]]:
    """Test 3: per target, a ridge fitted by day-blocks; returns ({target: summary}, findings)."""
    days_all = sorted(frame["trade_date"].unique().to_list())
    summary: dict[str, dict] = {}
    findings: list[dict] = []
    if len(days_all) < cfg.min_model_days or not features:
        for t in targets:
            summary[t] = {
                "skipped": f"{len(days_all)} day(s) in the window; the fit needs {cfg.min_model_days}"
            }
        return summary, findings
    index = {d: i for i, d in enumerate(days_all)}  # session position within the window, for the purge
    per_day = max(1, frame.height // len(days_all))
    keep = days_all
    if frame.height > cfg.max_model_rows:
        step = math.ceil(frame.height / cfg.max_model_rows)
        keep = days_all[::step]
    sub = frame.filter(pl.col("trade_date").is_in(keep)).sort(*KEYS)
    feats = list(features)
    ranked = sub.select(
        "trade_date",
        *_centered_ranks(sub, feats),
        *_centered_ranks(sub.with_columns([pl.col(t).fill_nan(None) for t in targets]), targets),
    )
    ranked = ranked.with_columns([pl.col(c).fill_null(0.0) for c in feats])
    x_all = ranked.select(feats).to_numpy().astype(np.float64)
    dates = ranked["trade_date"].to_list()
    bounds: list[tuple[date, int, int]] = []
    lo = 0
    for i in range(1, len(dates) + 1):
        if i == len(dates) or dates[i] != dates[lo]:
            bounds.append((dates[lo], lo, i))
            lo = i
    grams = np.stack([x_all[a:b].T @ x_all[a:b] for _, a, b in bounds])
    pos = np.array([index[d] for d, _, _ in bounds])
    p = len(feats)
    for t in targets:
        h = max(horizon_of(t), 1)
        y_all = ranked[t].to_numpy().astype(np.float64)
        known = np.isfinite(y_all)
        day_known = np.array([known[a:b].sum() >= cfg.min_names for _, a, b in bounds])
        if day_known.sum() < cfg.min_model_days:
            summary[t] = {"skipped": f"{int(day_known.sum())} day(s) with {t} known; the fit needs "
                                     f"{cfg.min_model_days}"}  # fmt: skip
            continue
        y0 = np.where(known, y_all, 0.0)  # a name whose return is unknown counts as the day's middle
        moments = np.stack([x_all[a:b].T @ y0[a:b] for _, a, b in bounds])
        rows = np.array([b - a for _, a, b in bounds], dtype=np.float64)
        usable = np.flatnonzero(day_known)
        blocks = np.array_split(usable, min(cfg.folds, len(usable)))
        ics, ns = [], []
        for block in blocks:
            lo_pos, hi_pos = pos[block].min(), pos[block].max()
            train = usable[(pos[usable] < lo_pos - h) | (pos[usable] > hi_pos + h)]
            if len(train) < 2:
                continue
            beta = _ridge(grams[train].sum(0), moments[train].sum(0), rows[train].sum(), cfg.ridge_alpha)
            for k in block:
                _, a, b = bounds[k]
                m = known[a:b]
                ics.append(_spearman_rows(x_all[a:b][m] @ beta, y_all[a:b][m]))
                ns.append(int(m.sum()))
        ic_arr, n_arr = np.array(ics), np.array(ns, dtype=np.float64)
        ok = np.isfinite(ic_arr)
        if ok.sum() < cfg.min_model_days // 2:
            summary[t] = {"skipped": "too few days outside the purge around each fold"}
            continue
        ic_arr, n_arr = ic_arr[ok], n_arr[ok]
        m = float(ic_arr.mean())
        se = window_se(ic_arr, n_arr, horizon_of(t))
        z = (m - cfg.plausible_model_ic) / se
        summary[t] = {"oof_ic": round(m, 4), "z": round(z, 2), "days": len(ic_arr), "rows_per_day": per_day}
        if z >= cfg.z:
            beta = _ridge(grams[usable].sum(0), moments[usable].sum(0), rows[usable].sum(), cfg.ridge_alpha)
            scale = np.sqrt(np.maximum(np.diag(grams[usable].sum(0)) / rows[usable].sum(), 0.0))
            weight = np.abs(beta * scale)
            # the columns carrying the fit: up to 3 with at least a quarter of the largest weight
            top = [feats[j] for j in np.argsort(-weight)[: min(3, p)] if weight[j] >= 0.25 * weight.max() > 0]
            findings.append({"test": "model", "features": top, "return": t, "ic": m, "z": z,
                             "days": len(ic_arr), "needs": cfg.plausible_model_ic + cfg.z * se})  # fmt: skip
    return summary, findings


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
    ``same_day_features`` (alt data) also against ``ret_same_day``. Findings are sorted worst first (by z; a
    leaking-days finding ranks by its count) and ``coverage`` says, per horizon, how many days could be tested.
    """
    targets = list(targets) if targets is not None else label_targets()
    have = [t for t in [*targets, SAME_DAY] if t in returns.columns]
    joined = frame.select(*KEYS, *features).join(returns.select(*KEYS, *have), on=list(KEYS), how="left")
    window_days = joined["trade_date"].n_unique()
    result = GateResult()
    plan: Mapping[str, Sequence[str]] = {t: features for t in targets}
    if same_day_features:
        plan = {**plan, SAME_DAY: list(same_day_features)}
    for target, cols in plan.items():
        if target not in joined.columns:
            result.coverage[target] = {"days": 0, "of": window_days, "skipped": "no such return"}
            continue
        daily = daily_ics(joined, list(cols), target, cfg.min_names)
        tested = daily.height
        cov: dict = {"days": tested, "of": window_days}
        if tested < window_days:
            untested = sorted(
                set(joined["trade_date"].unique().to_list()) - set(daily["trade_date"].to_list())
            )
            cov["skipped"] = (f"{len(untested)} day(s) from {untested[0]} on: the return is not known yet or fewer "
                              f"than {cfg.min_names} names have it")  # fmt: skip
        result.coverage[target] = cov
        if tested == 0:
            continue
        n = daily["n"].to_numpy().astype(np.float64)
        for c in cols:
            for f in ic_findings(daily[c].to_numpy().astype(np.float64), n, horizon_of(target), cfg):
                result.findings.append({"features": [c], "return": target, **f})
    model_summary, model_findings = model_check(joined, list(features), [t for t in targets if t in joined.columns],
                                                cfg)  # fmt: skip
    result.model = model_summary
    result.findings.extend(model_findings)
    result.findings.sort(key=lambda f: -(f.get("z") or 100.0 + f.get("extreme_days", 0)))
    return result


def describe(f: dict) -> str:
    """One line naming the column(s), the horizon and the statistic."""
    cols = ", ".join(f["features"])
    if f["test"] == "mean_ic":
        return (f"{cols} has mean IC {f['ic']:+.2f} with {f['return']} over {f['days']} day(s) "
                f"({f['z']:.1f} standard errors above the plausible, refused from |IC| {f['needs']:.2f})")  # fmt: skip
    if f["test"] == "leaking_days":
        return (f"{cols} has an implausible IC with {f['return']} on {f['extreme_days']} of {f['days']} days "
                f"(up to {f['max_day_ic']:+.2f}; by chance {f['expected']:.4f} days)")  # fmt: skip
    return (f"a ridge on all features predicts {f['return']} out of fold with IC {f['ic']:+.2f} over "
            f"{f['days']} days ({f['z']:.1f} standard errors above the plausible, refused from {f['needs']:.2f}); "
            f"it leans on {cols}")  # fmt: skip
