"""The trade list (lib.portfolio.orders.book_orders): whole shares on the NAV at the drawdown multiplier, minus the
previous book, holds kept, names leaving the book sold at the day's close, the rounding residual stated."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from alpha_assets.lib.portfolio.orders import ORDERS_SCHEMA, book_orders

D1, D2 = date(2024, 3, 4), date(2024, 3, 5)


def _inputs():
    weights = pl.DataFrame(
        {
            "trade_date": [D1, D1, D2, D2],
            "ticker": ["A", "B", "A", "C"],
            "weight": [0.5, -0.5, 0.5, -0.5],
        }
    )
    prices = pl.DataFrame(
        {
            "trade_date": [D1, D1, D1, D2, D2, D2],
            "ticker": ["A", "B", "C", "A", "B", "C"],
            "close": [10.0, 20.0, 30.0, 10.0, 20.0, 30.0],
        }
    )
    universe = pl.DataFrame(
        {"trade_date": [D1] * 3 + [D2] * 3, "ticker": ["A", "B", "C"] * 2, "adv_usd": [1e9] * 6}
    )
    return weights, prices, universe


def test_orders_are_the_whole_share_change_of_the_book_at_the_multiplier() -> None:
    weights, prices, universe = _inputs()
    frames, cut = book_orders(weights, {D2: 0.5}, prices, universe, 1_000.0, [D1, D2])
    assert cut == [] and [f["trade_date"][0] for f in frames] == [D1, D2]
    assert all(f.schema == pl.Schema(ORDERS_SCHEMA) for f in frames)
    first = {r["ticker"]: r for r in frames[0].to_dicts()}
    assert first["A"]["order_shares"] == 50 and first["B"]["order_shares"] == -25  # from nothing
    second = {r["ticker"]: r for r in frames[1].to_dicts()}
    # A: 0.5 x 0.5 x 1000 / 10 = 25 shares held from 50: sell 25
    a, b = second["A"], second["B"]
    assert (a["target_shares"], a["order_shares"], a["side"]) == (25, -25, "sell")
    # B left the book: its 25 short shares are bought back at the day's close
    assert (b["target_shares"], b["order_shares"], b["side"]) == (0, 25, "buy")
    assert b["order_value"] == pytest.approx(500.0)
    # C: -0.25 x 1000 / 30 = -8.33 -> -8 shares; the 1/3 share left out is the residual, in dollars
    assert second["C"]["order_shares"] == -8
    assert second["C"]["rounding_residual_value"] == pytest.approx(-10.0)


def test_an_order_above_the_names_liquidity_is_cut_to_it() -> None:
    weights, prices, universe = _inputs()
    thin = universe.with_columns(pl.when(pl.col("ticker") == "A").then(200.0).otherwise(1e9).alias("adv_usd"))
    frames, cut = book_orders(weights, {}, prices, thin, 1_000.0, [D1])
    a = frames[0].filter(pl.col("ticker") == "A").row(0, named=True)
    assert a["order_shares"] == 20 and a["order_value"] == pytest.approx(200.0)  # 500 USD wanted, 200 allowed
    assert cut == [{"trade_date": str(D1), "ticker": "A", "order_value": 500.0, "limit_usd": 200.0}]
