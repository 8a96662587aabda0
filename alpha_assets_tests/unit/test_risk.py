"""Risk statistics agree with empyrical's conventions and the drawdown control follows its rule day by day."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.risk import (
    RiskLimits,
    drawdown_control,
    drawdown_series,
    expected_shortfall,
    historical_var,
    horizon_returns,
    max_drawdown,
    parametric_var,
    risk_report_row,
)


@pytest.fixture(scope="module")
def portfolio_returns() -> np.ndarray:
    """Three years of fat-tailed daily returns with a bad spell, seeded."""
    rng = np.random.default_rng(11)
    returns = rng.standard_t(df=4, size=756) * 0.008 + 0.0003
    returns[300:340] -= 0.006
    return returns


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_historical_var_is_minus_empyricals_return_quantile(portfolio_returns, level):
    import empyrical

    # empyrical's VaR is the cutoff percentile of returns (a negative return); ours is the loss, positive.
    expected = -empyrical.value_at_risk(portfolio_returns, cutoff=1 - level)

    assert historical_var(portfolio_returns, level) == pytest.approx(expected, abs=1e-15)
    assert historical_var(portfolio_returns, level) > 0


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_expected_shortfall_is_minus_empyricals_cvar(portfolio_returns, level):
    import empyrical

    expected = -empyrical.conditional_value_at_risk(portfolio_returns, cutoff=1 - level)

    assert expected_shortfall(portfolio_returns, level) == pytest.approx(expected, abs=1e-15)
    assert expected_shortfall(portfolio_returns, level) >= historical_var(portfolio_returns, level)


def test_max_drawdown_is_minus_empyricals(portfolio_returns):
    import empyrical

    assert max_drawdown(portfolio_returns) == pytest.approx(
        -empyrical.max_drawdown(portfolio_returns), abs=1e-15
    )
    assert max_drawdown(portfolio_returns) > 0.1


def test_drawdown_series_is_minus_empyricals(portfolio_returns):
    from empyrical.stats import drawdown_series as empyrical_drawdown_series

    expected = -np.asarray(empyrical_drawdown_series(portfolio_returns))

    np.testing.assert_allclose(drawdown_series(portfolio_returns), expected, atol=1e-15)


def test_drawdowns_count_the_starting_equity_as_a_peak():
    returns = [-0.10, 0.05, -0.02]

    # Equity 0.9, 0.945, 0.9261 against the starting peak of 1.
    np.testing.assert_allclose(drawdown_series(returns), [0.10, 0.055, 0.0739], atol=1e-15)
    assert max_drawdown(returns) == pytest.approx(0.10, abs=1e-15)
    assert max_drawdown([0.01, 0.02]) == 0.0


def test_parametric_var_is_z_sigma_minus_mu():
    from scipy.stats import norm

    returns = np.array([0.01, -0.02, 0.015, 0.003, -0.007, 0.012, -0.001])
    mu, sigma = returns.mean(), returns.std(ddof=1)

    assert parametric_var(returns, 0.99) == pytest.approx(norm.ppf(0.99) * sigma - mu, abs=1e-15)
    assert parametric_var(returns, 0.95) == pytest.approx(1.6448536269514722 * sigma - mu, abs=1e-15)


def test_weekly_parametric_var_scales_mu_by_h_and_sigma_by_root_h():
    from scipy.stats import norm

    returns = np.array([0.01, -0.02, 0.015, 0.003, -0.007, 0.012, -0.001])
    mu, sigma = returns.mean(), returns.std(ddof=1)

    expected = norm.ppf(0.99) * sigma * math.sqrt(5) - 5 * mu
    assert parametric_var(returns, 0.99, horizon=5) == pytest.approx(expected, abs=1e-15)


def test_weekly_historical_var_uses_overlapping_compounded_five_day_returns():
    returns = np.array([0.01, -0.02, 0.03, -0.01, 0.02, -0.05, 0.01])
    by_hand = np.array(
        [
            1.01 * 0.98 * 1.03 * 0.99 * 1.02 - 1,
            0.98 * 1.03 * 0.99 * 1.02 * 0.95 - 1,
            1.03 * 0.99 * 1.02 * 0.95 * 1.01 - 1,
        ]
    )

    np.testing.assert_allclose(horizon_returns(returns, 5), by_hand, atol=1e-15)
    assert historical_var(returns, 0.99, horizon=5) == pytest.approx(-np.percentile(by_hand, 1), abs=1e-15)
    assert math.isnan(historical_var(returns[:4], 0.99, horizon=5))


def test_a_gain_in_the_tail_is_a_negative_var():
    assert historical_var([0.01, 0.02, 0.03], 0.99) == pytest.approx(-0.0102, abs=1e-15)


def test_missing_returns_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        historical_var([0.01, np.nan, 0.02])


def test_polars_series_are_accepted(portfolio_returns):
    assert max_drawdown(pl.Series(portfolio_returns)) == max_drawdown(portfolio_returns)


def test_drawdown_control_cuts_from_the_next_day_and_restores_after_a_new_high():
    # Day 0 closes 15% down: cut from day 1. On the half-size book equity goes 0.85 -> 0.935 -> 1.0285,
    # a new high at day 2's close: full size again from day 3.
    returns = [-0.15, 0.20, 0.20, 0.0, 0.0]

    np.testing.assert_array_equal(drawdown_control(returns), [1.0, 0.5, 0.5, 1.0, 1.0])


def test_drawdown_control_measures_from_the_running_peak():
    # Equity 1.1, 1.045, 0.9823: 10.7% below the 1.1 peak after day 2, though only 1.8% below the start.
    returns = [0.10, -0.05, -0.06, 0.01, 0.01]

    np.testing.assert_array_equal(drawdown_control(returns), [1.0, 1.0, 1.0, 0.5, 0.5])


def test_a_drawdown_exactly_at_the_threshold_does_not_trigger():
    returns = [-0.125, 0.0, -0.001, 0.0]

    # 0.875 is exactly 12.5% down (binary-exact): no cut; one more loss crosses it, the cut starts the day after.
    np.testing.assert_array_equal(drawdown_control(returns, threshold=0.125), [1.0, 1.0, 1.0, 0.5])


def test_the_de_risked_book_earns_its_way_back():
    returns = [-0.15, 0.10, 0.10, 0.0]

    # Controlled equity 0.85 -> 0.8925 -> 0.937125: still below the peak, so still cut.
    np.testing.assert_array_equal(drawdown_control(returns), [1.0, 0.5, 0.5, 0.5])
    # A realised P&L already reflects the cut: 0.85 -> 0.935 -> 1.0285 is a new high, restored on day 3.
    np.testing.assert_array_equal(drawdown_control(returns, returns_are_realised=True), [1.0, 0.5, 0.5, 1.0])


def test_drawdown_control_can_cut_again_after_a_recovery():
    returns = [-0.11, 0.30, -0.12, 0.0, 0.0]

    # Cut after day 0; on the half book 0.89 * 1.15 = 1.0235 is a new high after day 1, full size on day 2;
    # 1.0235 * 0.88 closes day 2 12% below that peak: cut again from day 3.
    np.testing.assert_array_equal(drawdown_control(returns), [1.0, 0.5, 1.0, 0.5, 0.5])
    # With a deeper cut the same rally is not enough for a new high (0.89 * 1.075 = 0.95675).
    np.testing.assert_array_equal(
        drawdown_control(returns, reduce_factor=0.25), [1.0, 0.25, 0.25, 0.25, 0.25]
    )


def test_risk_report_row_flags_var_breaches_of_the_daily_and_weekly_limits():
    rng = np.random.default_rng(5)
    calm = rng.normal(0.0005, 0.004, 500)
    stormy = rng.normal(0.0, 0.02, 500)

    calm_row = risk_report_row(calm)
    stormy_row = risk_report_row(stormy)

    assert calm_row["breaches"] == []
    assert {b.split(" ")[0] for b in stormy_row["breaches"]} == {
        "var_hist_1d",
        "var_param_1d",
        "var_hist_5d",
        "var_param_5d",
    }
    assert stormy_row["breaches"][0] == f"var_hist_1d {stormy_row['var_hist_1d']:.2%} > daily VaR limit 2.00%"
    assert stormy_row["var_param_5d"] == pytest.approx(parametric_var(stormy, 0.99, horizon=5))
    assert stormy_row["es_1d"] == pytest.approx(expected_shortfall(stormy, 0.99))


def test_risk_report_row_reports_drawdown_and_tomorrows_gross_multiplier():
    returns = np.array([0.02, -0.05, -0.07, 0.01])

    row = risk_report_row(returns, RiskLimits(drawdown_threshold=0.10, reduce_factor=0.5))

    equity = np.cumprod(1 + returns)
    assert row["n_days"] == 4
    assert row["drawdown"] == pytest.approx(1 - equity[-1] / equity[0], abs=1e-15)
    assert row["max_drawdown"] == pytest.approx(1 - equity[2] / equity[0], abs=1e-15)
    assert row["gross_multiplier"] == 0.5
    assert set(row) == {
        "n_days",
        "level",
        "var_hist_1d",
        "var_param_1d",
        "var_hist_5d",
        "var_param_5d",
        "es_1d",
        "drawdown",
        "max_drawdown",
        "gross_multiplier",
        "breaches",
    }


def test_a_short_history_gives_nan_figures_and_no_breach():
    row = risk_report_row([0.01])

    assert math.isnan(row["var_param_1d"]) and math.isnan(row["var_hist_5d"])
    assert row["breaches"] == []
