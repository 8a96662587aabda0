"""Backtest engine and fast path: hand-computed costs, financing, participation cap, timing, path equality."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.backtest import (
    PNL_SCHEMA,
    CostModel,
    prepare_bars,
    run_backtest,
    run_vectorised,
)

D1, D2, D3, D4, D5 = (date(2025, 3, 3) + timedelta(days=i) for i in range(5))
CAPITAL = 1_000_000.0
NO_COSTS = CostModel(
    impact_coef=0.0, slippage_bps=0.0, commission_bps=0.0, sell_fee_bps=0.0, borrow_rate_annual=0.0
)


def one_name_bars(opens, closes, volumes, sigma=0.02, adv_shares=250_000.0) -> pl.DataFrame:
    n = len(opens)
    return pl.DataFrame(
        {
            "trade_date": [D1 + timedelta(days=i) for i in range(n)],
            "ticker": ["AAA"] * n,
            "open": opens,
            "close": closes,
            "volume": volumes,
            "sigma": [sigma] * n,
            "adv_shares": [adv_shares] * n,
        }
    )


def weights(*rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["trade_date", "ticker", "weight"], orient="row")


@pytest.fixture(params=["engine", "vectorised"])
def run(request):
    return {"engine": run_backtest, "vectorised": run_vectorised}[request.param]


def test_one_buy_and_sell_cost_exactly_the_hand_computed_impact_slippage_commission_and_fee(run):
    bars = one_name_bars([100.0, 101.0, 104.0], [100.0, 102.0, 103.0], [1_000_000.0, 1_000_000.0, 800_000.0])
    costs = CostModel(borrow_rate_annual=0.0)
    result = run(bars, weights((D1, "AAA", 0.1), (D2, "AAA", 0.0)), costs, CAPITAL)

    # buy at D2 open: 0.1 * 1,000,000 / close(D1)=100 -> 1,000 shares at 101
    buy_value = 1_000 * 101.0
    buy_impact = 1.0 * 0.02 * math.sqrt(1_000 / 250_000) * buy_value
    buy_slippage = 100e-4 * (1_000 / 1_000_000) * buy_value
    buy_commission = 5e-4 * buy_value
    # sell all at D3 open 104; the fee applies to sells only
    sell_value = 1_000 * 104.0
    sell_impact = 0.02 * math.sqrt(1_000 / 250_000) * sell_value
    sell_slippage = 100e-4 * (1_000 / 800_000) * sell_value
    sell_commission = 5e-4 * sell_value
    sell_fee = 0.2e-4 * sell_value

    fills = result.fills
    assert fills["trade_date"].to_list() == [D2, D3]
    assert fills["side"].to_list() == ["buy", "sell"]
    assert fills["shares"].to_list() == [1_000.0, 1_000.0]
    assert fills["price"].to_list() == [101.0, 104.0]
    assert fills["impact_cost"].to_list() == pytest.approx([buy_impact, sell_impact], rel=1e-12)
    assert fills["slippage_cost"].to_list() == pytest.approx([buy_slippage, sell_slippage], rel=1e-12)
    assert fills["commission"].to_list() == pytest.approx([buy_commission, sell_commission], rel=1e-12)
    assert fills["fee"].to_list() == pytest.approx([0.0, sell_fee], rel=1e-12)
    assert buy_impact == pytest.approx(127.7560, abs=1e-4)  # 0.02 * sqrt(0.004) * 101,000

    buy_costs = buy_impact + buy_slippage + buy_commission
    sell_costs = sell_impact + sell_slippage + sell_commission + sell_fee
    pnl = result.pnl
    equity_d2 = CAPITAL - buy_value - buy_costs + 1_000 * 102.0
    equity_d3 = equity_d2 + 1_000 * (104.0 - 102.0) - sell_costs
    assert pnl["equity"].to_list() == pytest.approx([CAPITAL, equity_d2, equity_d3], rel=1e-12)
    assert pnl["gross_pnl"].to_list() == pytest.approx([0.0, 1_000.0, 2_000.0], abs=1e-6)
    assert pnl["total_cost"].to_list() == pytest.approx([0.0, buy_costs, sell_costs], rel=1e-12)
    assert pnl["turnover"][1] == pytest.approx(buy_value / CAPITAL, rel=1e-12)
    assert result.positions.select("trade_date", "shares").rows() == [(D2, 1_000.0)]


def test_weights_dated_d_are_flat_at_the_close_of_d_and_filled_at_the_next_open(run):
    bars = one_name_bars([50.0, 55.0, 60.0], [52.0, 58.0, 61.0], [1e7, 1e7, 1e7])
    result = run(bars, weights((D2, "AAA", 0.5)), NO_COSTS, CAPITAL)
    fill = result.fills.row(0, named=True)
    assert (fill["trade_date"], fill["price"]) == (D3, 60.0)
    assert fill["shares"] == pytest.approx(0.5 * CAPITAL / 58.0, rel=1e-15)  # sized at the close of D2
    assert result.positions["trade_date"].to_list() == [D3]
    # no position before D3: the move from 52 to 58 on D2 earns nothing
    assert result.pnl["gross_pnl"].to_list()[:2] == [0.0, 0.0]


def test_a_weight_on_the_last_session_never_trades(run):
    bars = one_name_bars([50.0, 55.0], [52.0, 58.0], [1e7, 1e7])
    result = run(bars, weights((D2, "AAA", 0.5)), NO_COSTS, CAPITAL)
    assert result.fills.height == 0
    assert result.pnl["equity"].to_list() == [CAPITAL, CAPITAL]


def test_a_short_held_overnight_is_charged_exactly_the_borrow_fee(run):
    bars = one_name_bars([100.0, 101.0, 99.0], [100.0, 102.0, 98.0], [1e7] * 3)
    costs = CostModel(
        impact_coef=0.0, slippage_bps=0.0, commission_bps=0.0, sell_fee_bps=0.0, borrow_rate_annual=0.03
    )
    result = run(bars, weights((D1, "AAA", -0.5)), costs, CAPITAL)
    shares = -0.5 * CAPITAL / 100.0  # -5,000 shorted at the D2 open
    financing = result.pnl["financing"].to_list()
    assert financing[0] == 0.0
    assert financing[1] == pytest.approx(0.03 / 252 * 5_000 * 102.0, rel=1e-12)
    assert financing[2] == pytest.approx(0.03 / 252 * 5_000 * 98.0, rel=1e-12)
    equity_d2 = CAPITAL + shares * (102.0 - 101.0) - financing[1]
    assert result.pnl["equity"][1] == pytest.approx(equity_d2, rel=1e-12)
    assert result.pnl["net_pnl"][1] == pytest.approx(-5_000.0 - financing[1], rel=1e-12)


def test_positive_cash_earns_and_negative_cash_pays_the_configured_rates(run):
    bars = one_name_bars([100.0, 100.0, 100.0], [100.0, 100.0, 100.0], [1e7] * 3)
    costs = CostModel(
        impact_coef=0.0,
        slippage_bps=0.0,
        commission_bps=0.0,
        sell_fee_bps=0.0,
        borrow_rate_annual=0.0,
        cash_rate_annual=0.04,
        margin_rate_annual=0.06,
    )
    result = run(bars, weights((D1, "AAA", 1.5)), costs, CAPITAL)
    credit_d1 = 0.04 / 252 * CAPITAL
    assert result.pnl["financing"][0] == pytest.approx(-credit_d1, rel=1e-12)
    equity_d1 = CAPITAL + credit_d1
    borrowed = 1.5 * equity_d1 - equity_d1  # cash after buying 1.5x equity at an unchanged price
    assert result.pnl["financing"][1] == pytest.approx(0.06 / 252 * borrowed, rel=1e-12)


def test_participation_cap_works_a_large_order_over_several_days_with_carry_over(run):
    n = 5
    bars = one_name_bars([10.0] * n, [10.0] * n, [3_000.0] * n)
    costs = CostModel(
        impact_coef=0.0, slippage_bps=0.0, commission_bps=0.0, sell_fee_bps=0.0, max_participation=0.1
    )
    result = run(bars, weights((D1, "AAA", 10_000.0 / CAPITAL)), costs, CAPITAL)  # 1,000 shares wanted
    fills = result.fills
    assert fills["trade_date"].to_list() == [D2, D3, D4, D5]
    assert fills["shares"].to_list() == pytest.approx([300.0, 300.0, 300.0, 100.0], rel=1e-12)
    assert result.pnl["capped_orders"].to_list() == [0, 1, 1, 1, 0]
    assert result.positions.filter(pl.col("trade_date") == D5)["shares"].item() == 1_000.0


def test_without_carry_over_the_unfilled_part_of_a_capped_order_is_dropped(run):
    bars = one_name_bars([10.0] * 4, [10.0] * 4, [3_000.0] * 4)
    costs = CostModel(
        impact_coef=0.0,
        slippage_bps=0.0,
        commission_bps=0.0,
        sell_fee_bps=0.0,
        max_participation=0.1,
        carry_unfilled=False,
    )
    result = run(bars, weights((D1, "AAA", 10_000.0 / CAPITAL)), costs, CAPITAL)
    assert result.fills["shares"].to_list() == pytest.approx([300.0])
    assert result.positions["shares"].to_list() == pytest.approx([300.0] * 3)


def test_pre_trade_sigma_and_adv_use_only_earlier_sessions():
    bars = one_name_bars(
        [10.0, 10.5, 10.0, 11.0, 12.0], [10.0, 11.0, 10.0, 12.0, 9.0], [100.0, 200.0, 300.0, 400.0, 0.0]
    )
    bars = bars.drop("sigma", "adv_shares")
    prepared = prepare_bars(bars, CostModel(vol_window=3, adv_window=2, default_sigma=0.05))
    returns = np.array([11 / 10 - 1, 10 / 11 - 1, 12 / 10 - 1])
    assert prepared["sigma"].to_list() == pytest.approx(
        [0.05, 0.05, 0.05, float(np.std(returns[:2], ddof=1)), float(np.std(returns, ddof=1))], rel=1e-12
    )
    assert prepared["adv_shares"].to_list() == pytest.approx([100.0, 100.0, 150.0, 250.0, 350.0])
    shocked = prepare_bars(
        bars.with_columns(
            pl.when(pl.col("trade_date") == D4).then(50.0).otherwise(pl.col("close")).alias("close")
        ),
        CostModel(vol_window=3, adv_window=2, default_sigma=0.05),
    )
    assert shocked["sigma"][3] == prepared["sigma"][3]  # a shock at the close of D4 is unknown at its open


def test_weights_on_dates_without_bars_or_for_unknown_names_are_refused():
    bars = one_name_bars([10.0, 10.0], [10.0, 10.0], [1e6, 1e6])
    with pytest.raises(ValueError, match="outside the bar sessions"):
        run_vectorised(bars, weights((date(2020, 1, 1), "AAA", 0.1)))
    with pytest.raises(ValueError, match="without bars"):
        run_backtest(bars, weights((D1, "ZZZ", 0.1)))


def random_market(seed: int, n_names: int = 15, n_days: int = 80):
    rng = np.random.default_rng(seed)
    sessions = [D1 + timedelta(days=i) for i in range(n_days)]
    rows, listed = [], {}
    for j in range(n_names):
        ticker = f"N{j:02d}"
        first = int(rng.integers(0, 10))
        close = 40.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n_days)))
        opening = close * np.exp(rng.normal(0.0, 0.004, n_days))
        volume = rng.lognormal(10.0, 0.6, n_days)
        for i in range(first, n_days):
            if rng.random() < 0.05:  # halted: no bar, cannot trade, valued at the last close
                continue
            rows.append((sessions[i], ticker, opening[i], close[i], volume[i]))
            listed.setdefault(ticker, sessions[i])  # weights only once a name has a close
    bars = pl.DataFrame(rows, schema=["trade_date", "ticker", "open", "close", "volume"], orient="row")
    target_rows = []
    for i, session in enumerate(sessions):
        if rng.random() < 0.25:  # no rebalance: targets (in shares) persist
            continue
        live = [t for t, start in listed.items() if start <= session]
        if len(live) < 2:
            continue
        raw = rng.normal(size=len(live))
        raw = raw - raw.mean()
        raw = 1.8 * raw / np.abs(raw).sum()
        target_rows += [(session, t, float(w)) for t, w in zip(live, raw, strict=True) if i % 7 or w > 0]
    return bars, pl.DataFrame(target_rows, schema=["trade_date", "ticker", "weight"], orient="row")


@pytest.mark.parametrize("carry_unfilled", [True, False])
def test_fast_path_reproduces_the_event_driven_engine_on_a_random_market(carry_unfilled):
    bars, target_weights = random_market(seed=7)
    capital = 2e5
    costs = CostModel(
        max_participation=0.02,  # binds on many orders
        carry_unfilled=carry_unfilled,
        borrow_rate_annual=0.01,
        cash_rate_annual=0.02,
        margin_rate_annual=0.05,
    )
    engine = run_backtest(bars, target_weights, costs, capital)
    fast = run_vectorised(bars, target_weights, costs, capital)
    assert engine.pnl["capped_orders"].sum() > 20
    assert (engine.pnl["gross_exposure"] > 1.0).any()
    dollar = {
        "equity",
        "gross_pnl",
        "impact_cost",
        "slippage_cost",
        "commission",
        "fee",
        "financing",
        "total_cost",
        "net_pnl",
        "traded_value",
        "market_value",
        "shares",
    }
    for table in ("pnl", "positions", "fills"):
        left, right = getattr(engine, table), getattr(fast, table)
        assert left.columns == right.columns and left.height == right.height > 0
        for column in left.columns:
            if left[column].dtype == pl.Float64:
                scale = capital if column in dollar else 1.0
                diff = np.abs(left[column].to_numpy() - right[column].to_numpy()) / scale
                assert diff.max() <= 1e-9, (table, column, diff.max())
            else:
                assert left[column].equals(right[column]), (table, column)


def test_pnl_identity_net_equals_gross_minus_costs_and_schema_is_stable():
    bars, target_weights = random_market(seed=11, n_names=6, n_days=30)
    pnl = run_vectorised(bars, target_weights).pnl
    assert dict(pnl.schema) == PNL_SCHEMA
    residual = pnl["gross_pnl"] - pnl["total_cost"] - pnl["net_pnl"]
    assert residual.abs().max() < 1e-6
    costs = pnl.select(pl.sum_horizontal("impact_cost", "slippage_cost", "commission", "fee", "financing"))
    assert np.allclose(costs.to_series().to_numpy(), pnl["total_cost"].to_numpy(), rtol=1e-12, atol=1e-9)
    assert (pnl["drawdown"] <= 0.0).all()


def test_tearsheet_writes_charts_and_html_and_returns_summary_stats(tmp_path):
    from alpha_assets.lib.backtest.tearsheet import write_tearsheet

    bars, target_weights = random_market(seed=3, n_names=5, n_days=40)
    pnl = run_vectorised(bars, target_weights).pnl
    stats = write_tearsheet(pnl, tmp_path / "sheet")
    for name in (
        "equity.png",
        "drawdown.png",
        "monthly_returns.png",
        "turnover.png",
        "costs.png",
        "tearsheet.html",
        "summary.json",
    ):
        assert (tmp_path / "sheet" / name).stat().st_size > 0
    assert "data:image/png;base64," in (tmp_path / "sheet" / "tearsheet.html").read_text()
    assert stats["max_drawdown"] == pytest.approx(pnl["drawdown"].min())
    assert stats["total_costs"]["commission"] == pytest.approx(pnl["commission"].sum())
    assert stats["total_return"] == pytest.approx(pnl["equity"][-1] / CAPITAL - 1.0)
    assert 0.0 <= stats["psr"] <= 1.0


def test_monthly_returns_compound_each_calendar_month_of_the_daily_returns():
    from datetime import date

    from alpha_assets.lib.backtest.tearsheet import monthly_returns

    pnl = pl.DataFrame(
        {
            "trade_date": [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2025, 2, 3)],
            "return": [0.10, -0.10, 0.02, None],
        }
    )
    table = monthly_returns(pnl)
    assert table.rows() == [
        (2024, 1, pytest.approx(1.1 * 0.9 - 1)),
        (2024, 2, pytest.approx(0.02)),
        (2025, 2, 0.0),
    ]
