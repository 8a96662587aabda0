"""Champion/challenger: promote only on a clear, long enough IC gain; blend the books by rank."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.models.promotion import PromotionRule, blend_books, newey_west_se, promotion_decision


def _ics(mean: float, n: int, seed: int) -> np.ndarray:
    return mean + 0.05 * np.random.default_rng(seed).normal(size=n)


def test_a_clearly_better_challenger_over_60_days_is_promoted():
    champion = _ics(0.02, 60, 1)
    challenger = champion + _ics(0.03, 60, 2)  # same days, +0.03 on average
    d = promotion_decision(champion, challenger)
    assert d.promote and d.n_sessions == 60 and d.p_value < 0.05
    assert d.mean_ic_challenger > d.mean_ic_champion
    assert d.reason.startswith("promote")


def test_an_equal_challenger_is_kept():
    champion = _ics(0.02, 60, 3)
    d = promotion_decision(champion, champion.copy())
    assert not d.promote and d.p_value == 1.0
    noisy_equal = promotion_decision(champion, _ics(0.02, 60, 4))
    assert not noisy_equal.promote


def test_fewer_than_min_sessions_paired_days_keeps_the_champion():
    champion, challenger = _ics(0.0, 29, 5), _ics(0.2, 29, 6)
    d = promotion_decision(champion, challenger, PromotionRule(min_sessions=30))
    assert not d.promote and "29 paired sessions" in d.reason
    with_gaps = promotion_decision(np.r_[_ics(0.0, 40, 7)], np.r_[_ics(0.2, 15, 8), [np.nan] * 25])
    assert not with_gaps.promote and with_gaps.n_sessions == 15


def test_a_gain_below_the_required_margin_is_kept():
    champion = _ics(0.02, 120, 9)
    challenger = champion + 0.01 + 0.002 * np.random.default_rng(10).normal(size=120)
    assert promotion_decision(champion, challenger, PromotionRule(min_ic_gain=0.0)).promote
    assert not promotion_decision(champion, challenger, PromotionRule(min_ic_gain=0.02)).promote


def test_newey_west_without_lags_is_the_plain_standard_error():
    x = np.random.default_rng(11).normal(size=50)
    assert newey_west_se(x, lags=0) == pytest.approx(x.std(ddof=0) / np.sqrt(50))


def test_blend_books_splits_eighty_twenty_by_rank_and_share_zero_is_shadow_mode():
    d = date(2024, 1, 2)
    champion = pl.DataFrame(
        {"trade_date": [d] * 3, "ticker": ["A", "B", "C"], "alpha_score": [0.1, 0.2, 0.3]}
    )
    challenger = pl.DataFrame(
        {"trade_date": [d] * 3, "ticker": ["A", "B", "C"], "alpha_score": [3.0, 2.0, 1.0]}
    )
    blended = blend_books(champion, challenger)
    assert blended["alpha_score"].to_list() == pytest.approx([-0.3, 0.0, 0.3])
    shadow = blend_books(champion, challenger, challenger_share=0.0)
    assert shadow["alpha_score"].to_list() == pytest.approx([-0.5, 0.0, 0.5])
    with pytest.raises(ValueError):
        blend_books(champion, challenger, challenger_share=1.5)
