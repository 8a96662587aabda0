"""Champion/challenger as a cumulative sequential test: rarely promotes an equal challenger however long it looks,
detects the gain it states with the power it states, and the registry follows the run's last decision."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from alpha_assets.lib.models.promotion import (
    SequentialRule,
    SequentialState,
    alias_champion,
    detectable_gain,
    evidence_path,
    sequential_decision,
)

SD_IC, SD_GAIN = 0.10, 0.06  # per-day IC of a recipe (~100 names), and of the paired difference


def _pair(rng, gain: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    champion = 0.02 + rng.normal(0, SD_IC, n)
    return champion, champion + gain + rng.normal(0, SD_GAIN, n)


def test_an_equal_challenger_is_promoted_on_at_most_alpha_of_runs_looking_every_day_for_two_years():
    rng = np.random.default_rng(1)
    promoted = [evidence_path(*_pair(rng, 0.0, 504))[1].any() for _ in range(400)]
    assert np.mean(promoted) <= SequentialRule().alpha, np.mean(promoted)


def test_the_stated_detectable_gain_is_found_with_80_percent_power():
    rng = np.random.default_rng(2)
    for n in (63, 252):
        gain = detectable_gain(n, SD_GAIN)
        found = [evidence_path(*_pair(rng, gain, n))[1].any() for _ in range(300)]
        assert np.mean(found) >= 0.8, (n, gain, np.mean(found))
    # evidence accumulates: the gain detectable after a year is well below what 30 sessions could ever show
    assert detectable_gain(252, SD_GAIN) < 0.25 * SD_GAIN < detectable_gain(30, SD_GAIN) / 4


def test_a_small_steady_gain_is_promoted_once_enough_evidence_has_accumulated():
    """The old rule restarted every 30 sessions and needed a 0.45 sd gain inside each slice; the cumulative test
    promotes a 0.25 sd gain within two years on most runs."""
    rng = np.random.default_rng(3)
    found = [evidence_path(*_pair(rng, 0.25 * SD_GAIN, 504))[1].any() for _ in range(200)]
    assert np.mean(found) >= 0.8


def test_the_daily_decision_and_the_vectorised_path_agree():
    rng = np.random.default_rng(4)
    a, b = _pair(rng, 0.4 * SD_GAIN, 150)
    log_e, promote = evidence_path(a, b)
    state = SequentialState()
    for k in range(150):
        state = state.update(a[k : k + 1], b[k : k + 1])
        if k in (5, 19, 40, 80, 149):
            d = sequential_decision(state)
            assert d.promote == promote[k]
            assert np.log(d.evidence) == pytest.approx(log_e[k], rel=1e-9, abs=1e-9)
            assert d.p_value == pytest.approx(min(1.0, np.exp(-log_e[k])))
            assert d.n_sessions == k + 1 and "detected with 80% power" in d.reason


def test_no_promotion_before_min_sessions_and_missing_days_are_dropped():
    state = SequentialState().update(np.zeros(10), np.full(10, 0.5))
    assert not sequential_decision(state, SequentialRule(min_sessions=20)).promote
    gappy = SequentialState().update(np.array([0.0, np.nan, 0.1]), np.array([0.1, 0.2, np.nan]))
    assert gappy.n == 1


def test_the_state_survives_the_promotions_row_it_is_written_to():
    from alpha_assets.models.scoring import _state_after

    rng = np.random.default_rng(5)
    state = SequentialState().update(*_pair(rng, 0.01, 40))
    d = sequential_decision(state)
    row = {
        "promoted": d.promote,
        "n_sessions": d.n_sessions,
        "mean_ic_champion": d.mean_ic_champion,
        "mean_ic_challenger": d.mean_ic_challenger,
        "sd_ic_gain": d.sd_ic_gain,
        "evaluated_from": date(2025, 1, 2),
        "evaluated_to": date(2025, 2, 28),
    }
    again, first, since = _state_after(row)
    assert again.n == state.n and first == date(2025, 1, 2) and since == date(2025, 2, 28)
    for field in ("sum_champion", "sum_challenger", "sum_diff", "sum_sq_diff"):
        assert getattr(again, field) == pytest.approx(getattr(state, field), rel=1e-9)
    restarted, _, since = _state_after({**row, "promoted": True})
    assert restarted.n == 0 and since == date(2025, 2, 28)  # a promotion restarts the evidence


def test_the_aliases_follow_the_last_decision_of_a_run_that_promoted():
    promote_then_keep = [
        {"promoted": True, "champion_after": "base"},
        {"promoted": False, "champion_after": "base"},
    ]
    assert (
        alias_champion(promote_then_keep) == "base"
    )  # the old code moved them only if the last day promoted
    assert alias_champion([{"promoted": False, "champion_after": "fusion"}] * 3) is None
    back_and_forth = [
        {"promoted": True, "champion_after": "base"},
        {"promoted": True, "champion_after": "fusion"},
        {"promoted": False, "champion_after": "fusion"},
    ]
    assert alias_champion(back_and_forth) == "fusion"
