"""Single-run range backfills through a real Dagster instance: every day written, downstream reads the range."""

from __future__ import annotations

import polars as pl

from alpha_assets.app.runs import materialize
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


def test_the_pipeline_log_gives_a_range_run_per_day_rows_and_the_steps_seconds(home, instance):
    from alpha_assets.serving.assets import pipeline_log

    days = sessions_from(WORLD_START, 40)[30:35]
    assert materialize(home, days[0], days[-1], quiet=True, instance=instance, job_name="daily_data")[
        "success"
    ]
    assert materialize(home, days[-1], days[-1], quiet=True, instance=instance, job_name="daily_data")[
        "success"
    ]
    lake = DeltaLake(home.lake)
    log = pipeline_log(instance, days, None, lake).filter(pl.col("asset") == "features/price_features")
    per_day = lake.read("features", "price_features").group_by("trade_date").len()
    expected = dict(zip(per_day["trade_date"].to_list(), per_day["len"].to_list(), strict=True))
    assert log["trade_date"].to_list() == days
    # each day's rows are that day's rows in the table, not the range run's total
    assert dict(zip(log["trade_date"].to_list(), log["rows_written"].to_list(), strict=True)) == expected
    range_run, day_run = log["run_id"][0], log["run_id"][-1]
    assert log["run_id"].to_list() == [range_run] * 4 + [day_run] and day_run != range_run
    tags = instance.get_run_by_id(range_run).tags
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        days[0].isoformat(),
        days[-1].isoformat(),
    )
    # each day of the range run shows the whole step's seconds (Dagster's step stats), not a fifth of them
    stats = instance.get_run_step_stats(range_run)
    step = next(s for s in stats if "price_features" in s.step_key)
    shared = log.filter(pl.col("run_id") == range_run)["run_seconds"].to_list()
    assert len(set(shared)) == 1 and abs(shared[0] - (step.end_time - step.start_time)) < 1e-6
    # a one-session run keeps its own figures (the rows it wrote, its whole step)
    assert log["rows_written"][-1] == expected[days[-1]]
