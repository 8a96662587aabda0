"""Re-running a day refreshes what reads it through the partition mappings (issue 9 #7): the labels of the
sessions before the day read its close, so the CLI and the automation condition re-run them too."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    Definitions,
    asset,
    evaluate_automation_conditions,
    materialize,
    mem_io_manager,
)

from alpha_assets.automation import downstream
from partitions import label_horizon, trading_days
from partitions.calendar import sessions_between, shift_sessions

PRICES, LABELS = AssetKey(["raw", "prices"]), AssetKey(["features", "labels"])
SELECT = ["raw/prices", "raw/price_reconciliation", "features/labels"]


@pytest.mark.slow
def test_a_one_day_rerun_refreshes_the_labels_of_the_days_before_it(home, instance):
    from alpha_assets.app.runs import materialize as cli_materialize
    from resources.lake import DeltaLake

    first = cli_materialize(home, select=SELECT, quiet=True, instance=instance, job_name="daily_data")
    assert first["success"] and first["refreshed"] == []  # nothing existed outside the window
    lake = DeltaLake(home.lake)
    sessions = sessions_between(first["start"], first["end"])
    day = sessions[25]
    # Provider A corrects day's closes by +10%: the labels of the 20 sessions before it read that close.
    path = home.landing / "prices_a" / f"prices_a_{day.isoformat()}.csv"
    corrected = pl.read_csv(path).with_columns(pl.col("close") * 1.1)
    corrected.with_columns(pl.max_horizontal("high", "close").alias("high")).write_csv(path)

    rerun = cli_materialize(
        home, day, day, select=SELECT, quiet=True, instance=instance, job_name="daily_data"
    )

    assert rerun["success"], rerun
    assert [(r["start"], r["end"], r["assets"]) for r in rerun["refreshed"]] == [
        (max(shift_sessions(day, -20), sessions[0]), shift_sessions(day, -1), ["features/labels"])
    ]
    prices = lake.read("raw", "prices").filter(pl.col("trade_date").is_in([shift_sessions(day, -1), day]))
    closes = prices.pivot(on="trade_date", index="ticker", values="close")
    want = closes.select(
        "ticker", (pl.col(str(day)) / pl.col(str(shift_sessions(day, -1))) - 1).alias("want")
    )
    got = lake.read("features", "labels").filter(pl.col("trade_date") == shift_sessions(day, -1))
    both = got.join(want, on="ticker")
    assert both.height > 5
    assert (both["fwd_ret_1"] - both["want"]).abs().max() < 1e-12  # the corrected close, not the old one


def prices_and_reader(key: AssetKey, mapping):
    """raw/prices and one `downstream` asset reading it through ``mapping``, both materialized on every session of
    2026-09-01..2026-11-27 (reported, on an ephemeral instance): (defs, instance, assets, sessions)."""

    @asset(key=PRICES, partitions_def=trading_days)
    def prices():
        return 1

    @asset(
        key=key,
        partitions_def=trading_days,
        automation_condition=downstream,
        ins={"prices": AssetIn(key=PRICES, partition_mapping=mapping)},
    )
    def reader(prices):
        return 1

    instance = DagsterInstance.ephemeral()
    days = sessions_between(datetime(2026, 9, 1).date(), datetime(2026, 11, 27).date())
    for d in days:
        for k in (PRICES, key):
            instance.report_runless_asset_event(AssetMaterialization(k, partition=d.isoformat()))
    return Definitions(assets=[prices, reader]), instance, [prices, reader], days


def test_the_automation_condition_refreshes_the_labels_that_read_a_rerun_day():
    defs, instance, assets, days = prices_and_reader(LABELS, label_horizon)
    now = datetime(2026, 11, 30, 12)
    cursor = evaluate_automation_conditions(defs, instance, evaluation_time=now).cursor
    day = days[-12]

    # The CLI path: one run re-materializes the day's prices and labels.
    materialize(
        assets, partition_key=day.isoformat(), instance=instance, resources={"io_manager": mem_io_manager}
    )
    result = evaluate_automation_conditions(defs, instance, cursor=cursor, evaluation_time=now)

    requested = {
        r.key: sorted(r.true_subset.expensively_compute_partition_keys())
        for r in result.results
        if r.true_subset.size
    }
    assert requested[LABELS] == [
        d.isoformat() for d in sessions_between(shift_sessions(day, -20), shift_sessions(day, -1))
    ]


def test_a_new_session_waits_for_its_own_prices_before_the_automation_builds_it():
    """At 00:00 UTC a new session exists and its 125-session lookback holds yesterday's (just updated) prices: the
    automation used to launch its features then, over no prices. It waits for the day's own delivery now."""
    from partitions import feature_lookback

    features_key = AssetKey(["features", "price_features"])
    defs, instance, _, days = prices_and_reader(features_key, feature_lookback)
    cursor = evaluate_automation_conditions(defs, instance, evaluation_time=datetime(2026, 11, 27, 22)).cursor

    def requested(cursor, now):
        result = evaluate_automation_conditions(defs, instance, cursor=cursor, evaluation_time=now)
        keys = {r.key: sorted(r.true_subset.expensively_compute_partition_keys()) for r in result.results}
        return keys.get(features_key, []), result.cursor

    # Friday's prices are corrected late; Monday 30 Nov 2026 exists from midnight, with no delivery yet.
    instance.report_runless_asset_event(AssetMaterialization(PRICES, partition=days[-1].isoformat()))
    got, cursor = requested(cursor, datetime(2026, 11, 30, 1))
    assert got == [days[-1].isoformat()]  # the corrected day, not the new one
    got, cursor = requested(cursor, datetime(2026, 11, 30, 12))
    assert got == []  # still nothing for Monday during the day
    # Monday's prices land in the evening: Monday is built then, once.
    instance.report_runless_asset_event(AssetMaterialization(PRICES, partition="2026-11-30"))
    got, cursor = requested(cursor, datetime(2026, 11, 30, 22))
    assert got == ["2026-11-30"]


def test_a_days_feature_matrix_waits_for_that_days_price_features():
    """The race the production e2e saw: the automation launched a day's feature matrix while that day's price
    features were missing and not being built (held back, e.g. by another day's price correction in progress), and
    the run failed. The matrix now waits until its day's price features exist or are requested in the same tick,
    which puts both in one run (or one backfill): ``automation.SameDayParentsReady``."""
    from dagster import AssetSelection

    from partitions import feature_lookback

    features_key, matrix_key = (
        AssetKey(["features", "price_features"]),
        AssetKey(["features", "feature_matrix"]),
    )
    defs, instance, _, days = prices_and_reader(features_key, feature_lookback)

    @asset(
        key=matrix_key,
        partitions_def=trading_days,
        automation_condition=downstream,
        ins={"price_features": AssetIn(key=features_key)},
    )
    def matrix(price_features):
        return 1

    for d in days:
        instance.report_runless_asset_event(AssetMaterialization(matrix_key, partition=d.isoformat()))
    defs = Definitions(assets=[*defs.assets, matrix])
    cursor = evaluate_automation_conditions(defs, instance, evaluation_time=datetime(2026, 11, 27, 22)).cursor
    # Monday's prices land; its price features are not built in this tick (only the matrix is evaluated)
    instance.report_runless_asset_event(AssetMaterialization(PRICES, partition="2026-11-30"))

    def requested(selection):
        result = evaluate_automation_conditions(
            defs,
            instance,
            cursor=cursor,
            asset_selection=selection,
            evaluation_time=datetime(2026, 11, 30, 22),
        )
        return {r.key: sorted(r.true_subset.expensively_compute_partition_keys()) for r in result.results}

    assert (
        requested(AssetSelection.assets(matrix_key)).get(matrix_key) == []
    )  # no matrix over missing features
    both = requested(AssetSelection.assets(features_key, matrix_key))  # the same tick builds both, in order
    assert both[features_key] == both[matrix_key] == ["2026-11-30"]


def test_a_days_book_waits_for_that_days_scores_on_another_partitioning_until_they_exist():
    """The book chain of a new day ran before that day's scores existed and again after them (prod e2e). A parent on
    another partitioning (the data layer under the model layer's later-starting days) goes into another run, so
    being requested in the same tick is not enough: the day waits until the parent exists."""
    from partitions import _trading_days

    scores_key, book_key = AssetKey(["models", "alpha_scores"]), AssetKey(["portfolio", "target_weights"])
    defs, instance, _, days = prices_and_reader(scores_key, None)
    later_days = _trading_days(days[10])

    @asset(
        key=book_key,
        partitions_def=later_days,
        automation_condition=downstream,
        ins={"scores": AssetIn(key=scores_key), "prices": AssetIn(key=PRICES, partition_mapping=None)},
    )
    def book(scores, prices):
        return 1

    for d in days[10:]:
        instance.report_runless_asset_event(AssetMaterialization(book_key, partition=d.isoformat()))
    defs = Definitions(assets=[*defs.assets, book])
    cursor = evaluate_automation_conditions(defs, instance, evaluation_time=datetime(2026, 11, 27, 22)).cursor
    instance.report_runless_asset_event(AssetMaterialization(PRICES, partition="2026-11-30"))

    def requested(cursor):
        result = evaluate_automation_conditions(
            defs, instance, cursor=cursor, evaluation_time=datetime(2026, 11, 30, 22)
        )
        return {
            r.key: sorted(r.true_subset.expensively_compute_partition_keys()) for r in result.results
        }, result.cursor

    got, cursor = requested(cursor)
    assert got[scores_key] == ["2026-11-30"] and got[book_key] == []  # the scores first, in their own run
    instance.report_runless_asset_event(AssetMaterialization(scores_key, partition="2026-11-30"))
    got, cursor = requested(cursor)
    assert got[book_key] == ["2026-11-30"]  # then the book, once
