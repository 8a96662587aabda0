"""``Contract.validate`` screens a clean file in one pass and runs the per-check filters only when something is
wrong: every kind of problem must still be found, with the same failures as the detailed checks give."""

from __future__ import annotations

import datetime

import polars as pl
import pytest

from alpha_assets.lib.ingestion.contracts import PRICES

DAY = datetime.date(2026, 11, 30)
UNIVERSE = ["AAA", "BBB", "CCC"]


def _good() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trade_date": [DAY] * 3,
            "ticker": UNIVERSE,
            "open": [10.0, 20.0, 30.0],
            "high": [11.0, 21.0, 31.0],
            "low": [9.0, 19.0, 29.0],
            "close": [10.5, 20.5, 30.5],
            "volume": [1e5, 2e5, 3e5],
        }
    )


def _set(column: str, row: int, value) -> pl.DataFrame:
    df = _good()
    values = df[column].to_list()
    values[row] = value
    return df.with_columns(pl.Series(column, values, dtype=df.schema[column]))


CASES = {
    "missing close": (_set("close", 1, None), "missing value"),
    "NaN close": (_set("close", 1, float("nan")), "NaN or infinite"),
    "infinite volume": (_set("volume", 0, float("inf")), "NaN or infinite"),
    "zero price": (_set("open", 2, 0.0), "non-positive prices"),
    "huge price": (_set("high", 2, 1e9), "above the plausible maximum"),
    "negative volume": (_set("volume", 1, -5.0), "negative volume"),
    "lower-case ticker": (_set("ticker", 0, "aaa"), "not a ticker"),
    "not in the universe": (_set("ticker", 0, "ZZZ"), "not in the universe"),
    "duplicate key": (_set("ticker", 1, "AAA"), "duplicate rows"),
    "high below close": (_set("high", 0, 10.2), "do not bracket"),
    "other date": (_set("trade_date", 2, datetime.date(2026, 11, 27)), "dated otherwise"),
}


def test_a_clean_file_passes():
    failures, df = PRICES.validate("f.csv", _good(), universe=UNIVERSE, file_date=DAY)
    assert failures == [] and "__row" not in df.columns and df.height == 3


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_kind_of_problem_is_found_past_the_screen(case):
    df, reason = CASES[case]
    assert PRICES._any_problem(df.with_row_index("__row", offset=1), set(df.columns), UNIVERSE, DAY)
    failures, _ = PRICES.validate("f.csv", df, universe=UNIVERSE, file_date=DAY)
    assert failures and any(reason in f.reason for f in failures), failures
    assert all(f.file == "f.csv" for f in failures)
