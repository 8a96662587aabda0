"""Champion / challenger: when a retrained model may replace the one trading, and how the two share the book.

The challenger is promoted only when its daily IC beats the champion's over the same days by a margin that is
statistically clear: a one-sided paired t-test on the daily IC differences, with a Newey-West (HAC) standard
error because daily ICs of overlapping signals are autocorrelated (a plain t-test would overstate certainty).
Until promoted, the challenger trades a small share of the book (``blend_books``), or none (shadow mode).
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

    champ = np.asarray(champion_ic, dtype=float)
    chall = np.asarray(challenger_ic, dtype=float)
    if champ.shape != chall.shape:
        raise ValueError(f"champion ({champ.shape}) and challenger ({chall.shape}) ICs must be paired by day")
    ok = np.isfinite(champ) & np.isfinite(chall)
    champ, chall = champ[ok], chall[ok]
    n = len(champ)
    m_champ = float(champ.mean()) if n else float("nan")
    m_chall = float(chall.mean()) if n else float("nan")
    if n < rule.min_sessions:
        return PromotionDecision(False, f"keep: only {n} paired sessions, need {rule.min_sessions}",
                                 n, m_champ, m_chall, float("nan"), float("nan"))  # fmt: skip
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
