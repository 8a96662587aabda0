"""Price features at scale (issue 11 item 6): the fast path's values are the previous implementation's bit for
bit, and the chunked paths give the full call's rows."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from alpha_assets.lib.features import price_features as pf
from alpha_assets_tests.features import reference_price_features as ref
from alpha_assets_tests.features.panels import make_panel


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    return make_panel()


def _days(prices: pl.DataFrame) -> list[date]:
    return prices["trade_date"].unique().sort().to_list()


@pytest.mark.parametrize("first,zero_close", [(0, False), (130, False), (100, True)])
def test_features_equal_the_previous_implementation_bit_for_bit(panel, first, zero_close):
    days = _days(panel)
    if zero_close:  # infinite and NaN returns (x/0, 0/0) inside rolling windows
        zero = pl.col("ticker").is_in(["N020", "N030"]) & pl.col("trade_date").is_between(
            days[150], days[152]
        )
        panel = panel.with_columns(pl.when(zero).then(0.0).otherwise("close").alias("close"))
    new = pf.compute_price_features(panel, days[first], days[-1])
    old = ref.compute_price_features(panel, days[first], days[-1])
    assert new.height > 0 and new["mom_120_5"].null_count() > 0
    assert_frame_equal(new, old, check_exact=True)


def test_labels_equal_the_previous_implementation_bit_for_bit(panel):
    days = _days(panel)
    for known in (None, days[-10]):
        new = pf.compute_labels(panel, days[100], days[-1], known_until=known)
        assert_frame_equal(
            new, ref.compute_labels(panel, days[100], days[-1], known_until=known), check_exact=True
        )


@pytest.mark.parametrize("sessions", [1, 37, 100, 10_000])
def test_chunked_features_are_the_full_calls_rows(panel, sessions):
    days = _days(panel)
    # The window starts 100 sessions in: the first chunk's lookback is the full call's (the grid's first row).
    full = pf.compute_price_features(panel, days[100], days[-1])
    chunks = list(pf.iter_price_features(panel, days[100], days[-1], sessions=sessions))
    assert len(chunks) == -(-(len(days) - 100) // sessions)
    assert all(c.height for c in chunks)
    joined = pl.concat(chunks)
    # Same rows in the same order, same nulls; the first chunk is the full call's bit for bit, later chunks to
    # machine precision (rolling sums restart at each chunk's lookback, as for an incremental day).
    assert joined.select("trade_date", "ticker", "is_filled").equals(
        full.select("trade_date", "ticker", "is_filled")
    )
    assert_frame_equal(joined, full, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    assert_frame_equal(chunks[0], full.head(chunks[0].height), check_exact=True)
    for c in pf.feature_columns(full):
        assert joined[c].null_count() == full[c].null_count(), c


def test_chunked_labels_are_the_full_calls_bit_for_bit(panel):
    days = _days(panel)
    full = pf.compute_labels(panel, days[50], days[-1], known_until=days[-3])
    chunks = list(pf.iter_labels(panel, days[50], days[-1], known_until=days[-3], sessions=29))
    assert len(chunks) > 5
    assert_frame_equal(pl.concat(chunks), full, check_exact=True)


def test_an_empty_window_yields_no_chunk(panel):
    days = _days(panel)
    early = panel.filter(pl.col("trade_date") <= days[10])
    assert list(pf.iter_price_features(early, days[20], days[30])) == []
    assert pf.compute_price_features(early, days[20], days[30]).height == 0
