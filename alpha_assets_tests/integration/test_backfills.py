"""Single-run range backfills through a real Dagster instance: every day written, downstream reads the range."""

from __future__ import annotations

import polars as pl

from alpha_assets.cli import materialize
from alpha_assets_tests.conftest import WORLD_START
from partitions.calendar import sessions_from
from resources.lake import DeltaLake


def test_a_five_day_single_run_backfill_writes_all_days_and_downstream_sees_them(home, instance):
    days = sessions_from(WORLD_START, 40)[30:35]
    res = materialize(home, days[0], days[-1], quiet=True, instance=instance, job_name="daily_data")
    assert res["success"]
    runs = instance.get_runs()
    assert len(runs) == 1  # one run for the whole range
    lake = DeltaLake(home.lake)
    prices = lake.read("raw", "prices")
    assert sorted(prices["trade_date"].unique().to_list()) == days
    feats = lake.read("features", "price_features")
    assert sorted(feats["trade_date"].unique().to_list()) == days
    # Each day has a row per priced ticker: the downstream asset read the whole range, not the first day only.
    per_day = prices.group_by("trade_date").len().sort("trade_date")["len"].to_list()
    assert feats.group_by("trade_date").len().sort("trade_date")["len"].to_list() == per_day


def test_rerunning_a_range_is_idempotent(home, instance):
    days = sessions_from(WORLD_START, 40)
    materialize(home, days[0], days[9], quiet=True, instance=instance, job_name="daily_data")
    lake = DeltaLake(home.lake)
    first = lake.read("features", "price_features").sort("trade_date", "ticker")
    materialize(home, days[3], days[5], quiet=True, instance=instance, job_name="daily_data")
    again = lake.read("features", "price_features").sort("trade_date", "ticker")
    assert again.height == first.height
    assert again.equals(first)
    assert lake.read("raw", "prices").select("trade_date", "ticker").is_duplicated().sum() == 0


def test_the_demo_pipeline_records_failovers_and_quarantines_bad_files(home, instance):
    import json

    meta = json.loads((home.ground_truth / "world.json").read_text())
    res = materialize(home, quiet=True, instance=instance, job_name="daily_data")
    assert res["success"]
    prices = DeltaLake(home.lake).read("raw", "prices")
    by_day = prices.group_by("trade_date").agg(pl.col("source").first(), pl.col("failover_reason").first())
    src = {str(r["trade_date"]): (r["source"], r["failover_reason"]) for r in by_day.to_dicts()}
    for d in meta["faults"]["provider_a_missing"]:
        assert src[d] == ("B", "provider A missing")
    for d in meta["faults"]["provider_a_late"]:
        assert src[d] == ("B", "provider A late")
    for d in meta["faults"]["provider_a_corrupt"]:
        assert src[d][0] == "B" and "corrupt" in src[d][1]
        q = home.quarantine / "prices_a" / f"prices_a_{d}.csv"
        assert (
            q.exists() and "corrupt" in json.loads(q.with_name(q.name + ".reason.json").read_text())["reason"]
        )
    # Every session of the world has prices: failover kept trading through every fault.
    assert len(src) == meta["days"]
