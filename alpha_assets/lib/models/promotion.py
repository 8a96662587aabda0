"""Champion / challenger: when a retrained model may replace the one trading, and how the two share the book.

The challenger is promoted when its daily IC beats the champion's over the same days by a margin that is
statistically clear. The test is sequential (``SequentialState`` / ``sequential_decision``): the paired daily IC
differences accumulate from the day the roles were last set, and every day the evidence is read again, without the
false-promotion rate growing with the number of looks. The evidence is a one-sided normal-mixture likelihood ratio
(an always-valid test, Robbins' mixture SPRT; Howard et al. 2021): with S the sum of the standardised differences
over n sessions and rho the planning horizon in sessions,

    E = 2 sqrt(rho / (n + rho)) exp(S^2 / (2 (n + rho))) Phi(S / sqrt(n + rho)),

a non-negative supermartingale while the challenger is no better, so by Ville's inequality the chance that it
ever reaches 1/alpha is at most alpha, however long the test runs (the daily differences' standard deviation is
estimated from the data, so the guarantee is approximate before ``min_sessions``). 1/E is an always-valid p-value.
Power: a mean gain delta is detected by session n with >= 80% probability when
delta >= sd * (b(n) + 0.84 sqrt(n)) / n, b(n) the boundary of S (``detectable_gain``); with alpha 0.05 and rho 126
that is 0.60 sd at 63 sessions, 0.24 sd at 252 and 0.16 sd at 504 (a fixed-sample test at 252 needs 0.16 sd,
but only if it looks once). The fixed-sample paired test (``promotion_decision``, Newey-West t) is kept for a
one-off comparison. Until promoted, the challenger trades a small share of the book (``blend_books``), or none
(shadow mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from alpha_assets.lib.models.metrics import cross_sectional_rank


@dataclass(frozen=True)
class PromotionRule:
    min_sessions: int = 30
    alpha: float = 0.05  # one-sided significance level
    min_ic_gain: float = 0.0  # the mean daily IC gain must exceed this, and significantly so
    hac_lags: int | None = None  # None: Newey-West's rule floor(4 * (n/100)^(2/9))


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    n_sessions: int
    mean_ic_champion: float
    mean_ic_challenger: float
    t_stat: float
    p_value: float


def paired_ics(champion_ic, challenger_ic) -> tuple[np.ndarray, np.ndarray]:
    """The two daily IC series as float arrays paired by day, days where either is missing dropped."""
    a = np.asarray(champion_ic, dtype=float)
    b = np.asarray(challenger_ic, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"champion ({a.shape}) and challenger ({b.shape}) ICs must be paired by day")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def newey_west_se(x: np.ndarray, lags: int | None = None) -> float:
    """HAC (Bartlett kernel) standard error of the mean of ``x``."""
    n = len(x)
    if lags is None:
        lags = int(np.floor(4 * (n / 100) ** (2 / 9)))
    lags = max(0, min(lags, n - 1))
    e = x - x.mean()
    var = e @ e / n
    for k in range(1, lags + 1):
        var += 2 * (1 - k / (lags + 1)) * (e[k:] @ e[:-k]) / n
    return float(np.sqrt(max(var, 0.0) / n))


def promotion_decision(
    champion_ic: np.ndarray, challenger_ic: np.ndarray, rule: PromotionRule = PromotionRule()
) -> PromotionDecision:
    """Promote when the challenger's mean daily IC gain over the champion is > ``min_ic_gain`` at one-sided
    level ``alpha`` (paired by day; days where either IC is missing are dropped). Fewer than
    ``min_sessions`` paired days: keep the champion."""
    from scipy import stats

    champ, chall = paired_ics(champion_ic, challenger_ic)
    n = len(champ)
    m_champ = float(champ.mean()) if n else float("nan")
    m_chall = float(chall.mean()) if n else float("nan")
    if n < rule.min_sessions:
        return PromotionDecision(
            False,
            f"keep: only {n} paired sessions, need {rule.min_sessions}",
            n,
            m_champ,
            m_chall,
            float("nan"),
            float("nan"),
        )
    diff = chall - champ
    gain = float(diff.mean()) - rule.min_ic_gain
    se = newey_west_se(diff, rule.hac_lags)
    if se > 0:
        t = gain / se
        p = float(stats.t.sf(t, df=n - 1))
    else:  # identical series, or a constant difference
        t = float("inf") if gain > 0 else (0.0 if gain == 0 else float("-inf"))
        p = 0.0 if gain > 0 else 1.0
    promote = gain > 0 and p < rule.alpha
    verdict = "promote" if promote else "keep"
    reason = (
        f"{verdict}: mean IC gain {diff.mean():+.4f} over {n} sessions "
        f"(HAC t={t:.2f}, one-sided p={p:.3g}, alpha={rule.alpha}, min gain={rule.min_ic_gain})"
    )
    return PromotionDecision(promote, reason, n, m_champ, m_chall, float(t), p)


@dataclass(frozen=True)
class SequentialRule:
    alpha: float = 0.05  # the chance of ever promoting a challenger that is no better
    min_sessions: int = 20  # paired sessions before a promotion (the daily differences' sd is estimated)
    planning_sessions: float = 126.0  # rho: the mixture's scale, in sessions (tightest boundary near there)
    min_ic_gain: float = 0.0  # the mean daily IC gain must exceed this


@dataclass(frozen=True)
class SequentialState:
    """The running sums of the paired daily ICs since the roles were last set (a promotion restarts them)."""

    n: int = 0
    sum_champion: float = 0.0
    sum_challenger: float = 0.0
    sum_diff: float = 0.0
    sum_sq_diff: float = 0.0

    def update(self, champion_ic: np.ndarray, challenger_ic: np.ndarray) -> SequentialState:
        """The state after more paired days (days where either IC is missing are dropped)."""
        a, b = paired_ics(champion_ic, challenger_ic)
        d = b - a
        return SequentialState(
            self.n + len(d),
            self.sum_champion + float(a.sum()),
            self.sum_challenger + float(b.sum()),
            self.sum_diff + float(d.sum()),
            self.sum_sq_diff + float(d @ d),
        )

    def sd(self) -> float:
        """Sample standard deviation of the daily IC differences (NaN below 2 sessions)."""
        if self.n < 2:
            return float("nan")
        var = (self.sum_sq_diff - self.sum_diff**2 / self.n) / (self.n - 1)
        return float(np.sqrt(max(var, 0.0)))


def log_evidence(s, n, rho: float):
    """log of the one-sided normal-mixture evidence E for a standardised sum ``s`` over ``n`` sessions (scalars, or
    arrays for a whole path)."""
    from scipy.stats import norm

    s, v = np.asarray(s, dtype=float), np.asarray(n, dtype=float) + rho
    out = np.log(2.0) + 0.5 * np.log(rho / v) + s * s / (2 * v) + norm.logcdf(s / np.sqrt(v))
    return float(out) if out.ndim == 0 else out


def evidence_boundary(n: float, rule: SequentialRule = SequentialRule()) -> float:
    """The standardised sum S at which the evidence reaches 1/alpha after ``n`` sessions."""
    from scipy.optimize import brentq

    target = np.log(1.0 / rule.alpha)
    hi = 1.0
    while log_evidence(hi, n, rule.planning_sessions) < target:
        hi *= 2.0
    return float(brentq(lambda s: log_evidence(s, n, rule.planning_sessions) - target, 0.0, hi, xtol=1e-9))


def detectable_gain(n: int, sd: float, rule: SequentialRule = SequentialRule(), power: float = 0.8) -> float:
    """The mean daily IC gain the sequential test detects by session ``n`` with probability >= ``power`` (the
    chance of being above the boundary at ``n``, a lower bound on having crossed it by then), for daily
    differences with standard deviation ``sd``."""
    from scipy.stats import norm

    if n < 1 or not np.isfinite(sd):
        return float("nan")
    return float(sd * (evidence_boundary(n, rule) + norm.ppf(power) * np.sqrt(n)) / n + rule.min_ic_gain)


@dataclass(frozen=True)
class SequentialDecision:
    promote: bool
    reason: str
    n_sessions: int
    mean_ic_champion: float
    mean_ic_challenger: float
    sd_ic_gain: float
    t_stat: float  # the plain t of the mean gain, for reading (the decision uses the evidence)
    evidence: float  # E; promote when >= 1/alpha
    p_value: float  # always-valid: min(1, 1/E)
    boundary_gain: float  # the mean gain that would promote today
    detectable_gain_80: float  # the gain detected with 80% power by now


def sequential_decision(
    state: SequentialState, rule: SequentialRule = SequentialRule()
) -> SequentialDecision:
    """Promote when the accumulated evidence that the challenger's mean daily IC beats the champion's by more than
    ``min_ic_gain`` reaches 1/alpha (and at least ``min_sessions`` paired sessions exist)."""
    n = state.n
    nan = float("nan")
    if n == 0:
        return SequentialDecision(
            False, "keep: no paired sessions yet", 0, nan, nan, nan, nan, 1.0, 1.0, nan, nan
        )
    m_champ, m_chall = state.sum_champion / n, state.sum_challenger / n
    gain = state.sum_diff / n
    sd = state.sd()
    if not np.isfinite(sd) or sd <= 0:
        sd_eff = 1e-9  # identical series (or one session): no noise to measure against
    else:
        sd_eff = sd
    s = (state.sum_diff - n * rule.min_ic_gain) / sd_eff
    log_e = log_evidence(s, n, rule.planning_sessions)
    evidence = float(np.exp(min(log_e, 700.0)))
    p = float(min(1.0, np.exp(-log_e)))
    t = float(gain / (sd_eff / np.sqrt(n))) if n > 1 else nan
    boundary = evidence_boundary(n, rule)
    boundary_gain = sd * boundary / n + rule.min_ic_gain if np.isfinite(sd) else nan
    detectable = detectable_gain(n, sd, rule)
    promote = n >= rule.min_sessions and gain > rule.min_ic_gain and log_e >= np.log(1.0 / rule.alpha)
    verdict = "promote" if promote else "keep"
    wait = f"; {n} of the {rule.min_sessions} sessions needed" if n < rule.min_sessions else ""
    reason = (
        f"{verdict}: mean IC gain {gain:+.4f} (sd {sd:.4f}) over {n} sessions since the roles were set; "
        f"evidence {evidence:.3g} vs {1 / rule.alpha:g} (always-valid p={p:.3g}); promotes at a mean gain "
        f">= {boundary_gain:+.4f} now; a gain of {detectable:+.4f} is detected with 80% power by now{wait}"
    )
    return SequentialDecision(
        promote, reason, n, m_champ, m_chall, sd, t, evidence, p, boundary_gain, detectable
    )


def evidence_path(
    champion_ic: np.ndarray, challenger_ic: np.ndarray, rule: SequentialRule = SequentialRule()
) -> tuple[np.ndarray, np.ndarray]:
    """``sequential_decision`` after each of a run of paired days, vectorised (for simulations of the rule):
    (log evidence, promote) per day, the state accumulating from the first day."""
    a = np.asarray(champion_ic, dtype=float)
    b = np.asarray(challenger_ic, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = np.where(ok, b - a, 0.0)
    n = np.cumsum(ok)
    s1, s2 = np.cumsum(d), np.cumsum(d * d)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(n > 1, (s2 - s1**2 / np.maximum(n, 1)) / np.maximum(n - 1, 1), np.nan)
        sd = np.sqrt(np.maximum(var, 0.0))
        sd_eff = np.where(np.isfinite(sd) & (sd > 0), sd, 1e-9)
        s = (s1 - n * rule.min_ic_gain) / sd_eff
    log_e = np.where(n > 0, log_evidence(s, np.maximum(n, 1), rule.planning_sessions), 0.0)
    gain = np.where(n > 0, s1 / np.maximum(n, 1), 0.0)
    promote = (n >= rule.min_sessions) & (gain > rule.min_ic_gain) & (log_e >= np.log(1.0 / rule.alpha))
    return log_e, promote


def alias_champion(decisions: list[dict]) -> str | None:
    """The recipe the registry's ``champion`` alias must name after a run's decisions (rows with ``promoted`` and
    ``champion_after``, in day order): the last decision's champion whenever any decision of the run promoted, so
    a multi-day run that promotes and then keeps still moves the aliases; None when nothing was promoted."""
    if not any(r["promoted"] for r in decisions):
        return None
    return decisions[-1]["champion_after"]


def blend_books(
    champion: pl.DataFrame,
    challenger: pl.DataFrame,
    challenger_share: float = 0.2,
    score: str = "alpha_score",
) -> pl.DataFrame:
    """trade_date, ticker, alpha_score, champion_score, challenger_score: each side's ``score`` ranked to
    [-0.5, 0.5] per day, blended (1 - share) * champion + share * challenger. Share 0 is shadow mode (the
    challenger is scored but trades nothing). A name one side lacks counts as neutral (0) on that side."""
    if not 0.0 <= challenger_share <= 1.0:
        raise ValueError(f"challenger_share must be in [0, 1], got {challenger_share}")
    keys = ["trade_date", "ticker"]

    def ranked(df: pl.DataFrame, name: str) -> pl.DataFrame:
        return df.select(*keys, score).with_columns(cross_sectional_rank(score).alias(name)).drop(score)

    both = ranked(champion, "champion_score").join(
        ranked(challenger, "challenger_score"), on=keys, how="full", coalesce=True
    )
    both = both.with_columns(pl.col("champion_score", "challenger_score").fill_null(0.0))
    alpha = (1 - challenger_share) * pl.col("champion_score") + challenger_share * pl.col("challenger_score")
    return both.select(*keys, alpha.alias("alpha_score"), "champion_score", "challenger_score").sort(keys)
