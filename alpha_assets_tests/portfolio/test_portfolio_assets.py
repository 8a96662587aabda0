"""The daily book through Dagster: limits hold, trade lists are written, the risk report follows, and a past
day's weights are rebuilt bit-identically from the Delta versions in the audit table."""

from __future__ import annotations

import json

import polars as pl
import pytest

from alpha_assets.cli import materialize, run_backtest
from alpha_assets.lib.portfolio import PortfolioLimits, check_limits
from alpha_assets.portfolio.assets import rebuild_weights
from resources.lake import DeltaLake

pytestmark = pytest.mark.slow
CONFIG = {"ops": {"target_weights": {"config": {"alpha_source": "mom_20", "cov_window": 20}}}}


@pytest.fixture
def book_home(tmp_path, monkeypatch):
    from alpha_assets.home import AlphaHome
    from alpha_assets_tests.conftest import make_world

    home = AlphaHome(tmp_path / "alpha").ensure()
    monkeypatch.setenv("ALPHA_HOME", str(home.root))
    make_world(home.root, tickers=60, days=70, seed=5)
    return home


def test_books_respect_limits_orders_are_written_and_a_past_day_rebuilds_exactly(book_home, instance):
    res = materialize(book_home, quiet=True, instance=instance, run_config=CONFIG)
    assert res["success"], res["failed_steps"]
    lake = DeltaLake(book_home.lake)
    w = lake.read("portfolio", "target_weights")
    uni = lake.read("raw", "universe")
    days = sorted(w["trade_date"].unique().to_list())
    assert len(days) >= 30
    limits = PortfolioLimits(long_quantile=0.3, short_quantile=0.3)
    for d in days[::7]:
        assert (
            check_limits(w.filter(pl.col("trade_date") == d), uni.filter(pl.col("trade_date") == d), limits)
            == []
        )
    # The execution system's files: one per day, orders = target minus yesterday's book.
    files = sorted((book_home.outbox / "orders").glob("orders_*.csv"))
    assert len(files) == len(days)
    o = pl.read_csv(files[1])
    assert {"ticker", "order_shares", "order_value", "side"} <= set(o.columns)
    # Risk report rows carry VaR and the drawdown multiplier for the next day.
    rr = lake.read("risk", "risk_report")
    assert rr.filter(pl.col("var_hist_1d").is_not_null()).height > 0
    assert set(rr["gross_multiplier_next"].unique().to_list()) <= {1.0, 0.5}
    # As-of rebuild: rematerialize later (new Delta versions), then rebuild an early day from its audit row.
    audit = lake.read("portfolio", "weights_audit").filter(pl.col("trade_date") == days[3]).row(0, named=True)
    materialize(book_home, days[-5], days[-1], quiet=True, instance=instance, run_config=CONFIG)
    rebuilt = rebuild_weights(lake, days[3], audit)
    original = w.filter(pl.col("trade_date") == days[3])
    assert rebuilt.equals(original)  # bit-identical
    assert json.loads(audit["input_versions"])["raw.prices"] is not None
    # The backtest runs over the executed books and writes its tables and tear sheet.
    assert run_backtest(book_home, instance=instance, quiet=True)["success"]
    pnl = lake.read("reports", "backtest_pnl")
    assert pnl.height > 20 and (pnl["commission"] > 0).any()
    assert (book_home.outbox / "reports" / "backtest" / "tearsheet.html").exists()


def test_infeasible_limits_leave_the_day_without_a_book_and_say_why(book_home, instance):
    cfg = {
        "ops": {
            "target_weights": {
                "config": {"alpha_source": "mom_20", "cov_window": 20, "max_name_weight": 0.01}
            }
        }
    }
    res = materialize(book_home, quiet=True, instance=instance, run_config=cfg)
    assert "every_day_has_a_book" in res["failed_checks"]
    lake = DeltaLake(book_home.lake)
    assert lake.read("portfolio", "target_weights").height == 0  # no non-compliant book was written
    assert not (book_home.outbox / "orders").exists() or not list((book_home.outbox / "orders").glob("*.csv"))
    from dagster import AssetKey

    ev = instance.get_latest_materialization_event(AssetKey(["portfolio", "target_weights"]))
    infeasible = ev.asset_materialization.metadata["infeasible_days"].value
    assert infeasible and "max_name_weight=0.01" in infeasible[0]
