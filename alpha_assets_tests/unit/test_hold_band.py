"""The book's no-trade band: yesterday's names keep their side while they rank within quantile + band, the books
keep their sizes and limits, and a noisy ranking trades far less."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.portfolio import PortfolioLimits, build_target_weights, check_limits
from alpha_assets.lib.portfolio.limits import select_books

from .test_portfolio_limits import LOOSE, make_universe

RANKED = [f"T{i:02d}" for i in range(20)]  # best first


def test_without_a_band_or_a_previous_book_the_books_are_the_quantiles():
    limits = PortfolioLimits(long_quantile=0.3, short_quantile=0.3, hold_band=0.2)
    assert select_books(RANKED, 6, 6, limits) == (RANKED[:6], RANKED[-6:])
    no_band = PortfolioLimits(long_quantile=0.3, short_quantile=0.3, hold_band=0.0)
    held = {"T07": "long", "T12": "short"}
    assert select_books(RANKED, 6, 6, no_band, held) == (RANKED[:6], RANKED[-6:])


def test_held_names_inside_the_band_keep_their_side_and_the_rest_refills_from_the_top():
    limits = PortfolioLimits(long_quantile=0.3, short_quantile=0.3, hold_band=0.15)  # zones: 9 names per end
    held = {"T07": "long", "T08": "long", "T10": "long", "T12": "short", "T00": "short"}
    longs, shorts = select_books(RANKED, 6, 6, limits, held)
    # T07, T08 rank 8th/9th: inside 0.45 x 20 = 9; T10 is outside; T00 was short but ranks best: it leaves
    assert longs == ["T07", "T08", "T00", "T01", "T02", "T03"]
    assert shorts == ["T12", "T19", "T18", "T17", "T16", "T15"]
    assert not set(longs) & set(shorts)


def test_banded_books_keep_sizes_and_limits_and_trade_less():
    alpha, wide, meta = make_universe(60, seed=3)
    limits = PortfolioLimits(**{**LOOSE.__dict__, "long_quantile": 0.3, "short_quantile": 0.3})
    banded = PortfolioLimits(**{**limits.__dict__, "hold_band": 0.1})
    rng = np.random.default_rng(4)
    persistent = alpha["alpha_score"].to_numpy()
    changes = {False: 0, True: 0}
    for use_band, lim in ((False, limits), (True, banded)):
        held, prev = None, set()
        for _ in range(15):
            a = alpha.with_columns(pl.Series("alpha_score", persistent + rng.normal(0, 0.8, 60)))
            w = build_target_weights(a, wide, meta, lim, held)
            assert check_limits(w, meta, lim) == []
            assert (
                (w["side"] == "long").sum() == (w["side"] == "short").sum() == 16
            )  # 0.3 of the eligible names
            book = set(zip(w["ticker"], w["side"], strict=True))
            changes[use_band] += len(book - prev)
            held, prev = dict(book), book
    assert changes[True] < 0.75 * changes[False]


def test_hold_band_must_be_a_share_of_the_ranking():
    with pytest.raises(ValueError, match="hold_band"):
        PortfolioLimits(hold_band=1.5)
