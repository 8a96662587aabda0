"""A null world plants nothing: with no alpha, no name's return is centred anywhere but the common drift, so nothing
(volatility included) ranks tomorrow's returns."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from alpha_world import simulate
from alpha_world.simulate import DRIFT, Calibration, WorldConfig, simulate_world


@pytest.fixture
def uncorrelated(monkeypatch):
    """Returns without the market and sector factors: each name's returns are then independent draws, so its
    median over time estimates its centre to within the sampling error alone (the factors' sample paths would
    otherwise move every high-volatility name's median together)."""
    monkeypatch.setattr(
        simulate, "calibrate_on_sp500", lambda: Calibration(0.018, 0.0, 0.011, "test: no factors")
    )


def test_every_name_of_a_null_world_is_centred_on_the_same_drift_whatever_its_volatility(
    uncorrelated,
) -> None:
    cfg = WorldConfig(
        seed=3,
        tickers=2000,
        days=1000,
        start=date(2020, 1, 2),
        signal_strength=0.0,
        listing_share=0.0,
        delisting_share=0.0,
    )
    world = simulate_world(cfg)
    per_name = (
        world.prices.sort("ticker", "trade_date")
        .with_columns((pl.col("close") / pl.col("close").shift(1).over("ticker") - 1).alias("ret"))
        .group_by("ticker")
        .agg(pl.col("ret").median().alias("median_ret"))
        .join(world.universe.select("ticker", "daily_vol"), on="ticker")
    )
    # Log returns with an Ito drift of -vol^2/2 (the simulator before) gave -0.13 here: a null world carried a
    # volatility anomaly (a daily IC of -0.005 for volatility, measured on the same seeds before and after). The
    # standard error is 1/sqrt(2000) = 0.022.
    rho = per_name.select(pl.corr(pl.col("median_ret").rank(), pl.col("daily_vol").rank())).item()
    assert abs(rho) < 0.08, f"a name's median return depends on its volatility: rank correlation {rho:+.3f}"
    # and that centre is the common drift (the median of 2,000 names' medians, each within ~0.0008 of it)
    assert per_name["median_ret"].median() == pytest.approx(DRIFT, abs=2e-4)
