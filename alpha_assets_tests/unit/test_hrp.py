"""HRP weights agree with riskfolio-lib's HCPortfolio to 1e-9 on real and generated returns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from alpha_assets.lib.portfolio import hrp_weights

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def sp500_returns() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    # Ships inside the skfolio wheel: 20 S&P 500 stocks, daily prices since 1990, no download.
    prices = load_sp500_dataset()
    return prices.pct_change().dropna().iloc[-2000:]


def generated_returns(n_days: int, n_names: int, seed: int) -> np.ndarray:
    """Returns with a market factor and sector blocks, so the tree has structure to find."""
    rng = np.random.default_rng(seed)
    sectors = rng.integers(0, 6, n_names)
    market = rng.standard_normal((n_days, 1)) * 0.01
    sector_moves = rng.standard_normal((n_days, 6)) * 0.008
    volatility = rng.uniform(0.005, 0.03, n_names)
    return (
        market * rng.uniform(0.5, 1.5, n_names)
        + sector_moves[:, sectors]
        + rng.standard_normal((n_days, n_names)) * volatility
    )


def riskfolio_hrp(returns: pd.DataFrame, linkage: str, leaf_order: bool) -> np.ndarray:
    import riskfolio as rp

    portfolio = rp.HCPortfolio(returns=returns)
    weights = portfolio.optimization(
        model="HRP", codependence="pearson", rm="MV", linkage=linkage, leaf_order=leaf_order
    )
    return weights["weights"].to_numpy()


@pytest.mark.parametrize("leaf_order", [False, True])
@pytest.mark.parametrize("linkage", ["single", "complete", "average"])
def test_hrp_matches_riskfolio_on_sp500_returns(sp500_returns, linkage, leaf_order):
    expected = riskfolio_hrp(sp500_returns, linkage, leaf_order)

    ours = hrp_weights(sp500_returns.to_numpy(), linkage=linkage, optimal_ordering=leaf_order)

    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOLERANCE)
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("leaf_order", [False, True])
@pytest.mark.parametrize("linkage", ["single", "complete", "average"])
def test_hrp_matches_riskfolio_on_generated_returns(linkage, leaf_order):
    # 150 names is beyond the batched-cluster size (64), so both variance paths are compared.
    returns = generated_returns(n_days=120, n_names=150, seed=7)
    expected = riskfolio_hrp(pd.DataFrame(returns), linkage, leaf_order)

    ours = hrp_weights(returns, linkage=linkage, optimal_ordering=leaf_order)

    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOLERANCE)


def test_hrp_matches_riskfolio_when_clusters_outgrow_the_history():
    # More names than days: the largest clusters' variances come from portfolio returns, not covariance blocks.
    returns = generated_returns(n_days=60, n_names=200, seed=3)

    ours = hrp_weights(returns)

    np.testing.assert_allclose(ours, riskfolio_hrp(pd.DataFrame(returns), "single", False), atol=TOLERANCE)


def test_two_names_get_inverse_variance_weights():
    rng = np.random.default_rng(0)
    returns = rng.standard_normal((500, 2)) * np.array([0.01, 0.02])
    variances = returns.var(axis=0, ddof=1)

    weights = hrp_weights(returns)

    expected = (1 / variances) / (1 / variances).sum()
    np.testing.assert_allclose(weights, expected, atol=1e-15)


def test_polars_frame_columns_are_the_assets_and_dates_are_ignored():
    returns = generated_returns(n_days=50, n_names=8, seed=1)
    frame = pl.DataFrame({f"N{i}": returns[:, i] for i in range(8)}).with_columns(
        trade_date=pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1) + dt.timedelta(days=49), eager=True)
    )

    np.testing.assert_array_equal(hrp_weights(frame), hrp_weights(returns))


def test_a_single_name_gets_the_whole_book():
    np.testing.assert_array_equal(hrp_weights(np.array([[0.01], [-0.02], [0.005]])), [1.0])


def test_missing_returns_are_refused():
    returns = generated_returns(n_days=30, n_names=4, seed=2)
    returns[3, 1] = np.nan

    with pytest.raises(ValueError, match="non-finite"):
        hrp_weights(returns)


def test_a_name_that_never_moves_is_refused():
    returns = generated_returns(n_days=30, n_names=4, seed=2)
    returns[:, 2] = 0.001

    with pytest.raises(ValueError, match=r"columns \[2\] have zero variance"):
        hrp_weights(returns)


def test_unknown_linkage_is_refused():
    with pytest.raises(ValueError, match="linkage"):
        hrp_weights(generated_returns(n_days=30, n_names=4, seed=2), linkage="dbht")


def test_the_dendrogram_picture_draws_every_name_and_cuts_large_trees(tmp_path):
    from alpha_assets.lib.portfolio.plots import hrp_dendrogram_png

    rng = np.random.default_rng(0)
    small = hrp_dendrogram_png(rng.normal(size=(60, 8)), [f"T{i}" for i in range(8)], "t")
    big = hrp_dendrogram_png(rng.normal(size=(60, 300)), [f"T{i}" for i in range(300)], "t")
    for png in (small, big):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp_path.iterdir()) == []  # a picture, not a file
    with pytest.raises(ValueError, match="7 return columns for 8 tickers"):
        hrp_dendrogram_png(rng.normal(size=(60, 7)), [f"T{i}" for i in range(8)], "t")
