"""A fund without alt data keeps trading: the feature matrix builds from the price features alone when no alt-data
vendor has delivered (features.alt_features empty but typed) or when the alt_features table does not exist yet
(an automation run that reached the matrix first); once a vendor has delivered, every source keeps its columns."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from dagster import AssetKey

from alpha_assets.lib.features.matrix import ALT_VALUE_COLUMNS, MISSING_SUFFIX, PRICE_NON_FEATURES

MATRIX = AssetKey(["features", "feature_matrix"])


def _price_feature_columns(lake) -> set[str]:
    schema = lake.scan("features", "price_features").collect_schema()
    return {c for c, t in schema.items() if c not in PRICE_NON_FEATURES and t.is_numeric()}


def _matrix_metadata(instance) -> dict:
    event = instance.get_latest_materialization_event(MATRIX)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@pytest.mark.slow
def test_a_prices_only_world_gets_a_price_only_matrix_through_daily_data(home, instance):
    from alpha_assets.app.runs import materialize
    from resources.lake import DeltaLake

    res = materialize(home, quiet=True, instance=instance, job_name="daily_data")
    assert res["success"], res["failed_steps"]
    lake = DeltaLake(home.lake)

    alt = lake.read("features", "alt_features")
    assert alt.height == 0 and set(ALT_VALUE_COLUMNS) <= set(alt.columns)  # no vendor: typed, no rows
    assert alt.schema["parking_total_cars"] == pl.Float64

    matrix = lake.read("features", "feature_matrix")
    prices = lake.read("features", "price_features", columns=["trade_date", "ticker"])
    assert (
        matrix.select("trade_date", "ticker")
        .sort("trade_date", "ticker")
        .equals(prices.sort("trade_date", "ticker"))
    )
    feats = set(matrix.columns) - {"trade_date", "ticker"}
    # price columns only, and the one missing indicator the code defines for them
    assert feats == _price_feature_columns(lake) | {f"price{MISSING_SUFFIX}"}
    assert set(matrix["price__missing"].unique()) <= {0.0, 1.0}
    # 1 only where every price feature is null: a name with a price history has its features
    assert matrix.filter(pl.col("trade_date") == matrix["trade_date"].max())["price__missing"].sum() == 0
    assert _matrix_metadata(instance)["alt_sources"] == []


@pytest.mark.slow
def test_the_matrix_builds_when_the_alt_features_table_does_not_exist_yet(home, instance):
    from alpha_assets.app.runs import materialize
    from resources.lake import DeltaLake

    # the automation's order: the price layer and the matrix before features.alt_features ever ran
    select = [
        "raw/universe",
        "raw/prices",
        "raw/price_reconciliation",
        "features/price_features",
        "features/feature_matrix",
    ]
    res = materialize(home, quiet=True, instance=instance, job_name="daily_data", select=select)
    assert res["success"], res["failed_steps"]
    lake = DeltaLake(home.lake)
    assert not lake.exists("features", "alt_features")
    matrix = lake.read("features", "feature_matrix")
    assert matrix.height == lake.read("features", "price_features", columns=["ticker"]).height
    assert set(matrix.columns) - {"trade_date", "ticker"} == _price_feature_columns(lake) | {"price__missing"}
    assert _matrix_metadata(instance)["alt_sources"] == []


def test_once_a_vendor_has_delivered_every_source_keeps_rows_and_columns(tmp_path):
    from alpha_assets.altdata.features import alt_feature_frame
    from alpha_assets.lib.altdata.point_in_time import MAX_AGE_DAYS
    from partitions.calendar import sessions_from
    from resources.lake import DeltaLake

    lake = DeltaLake(tmp_path / "lake")
    days = sessions_from(datetime(2024, 3, 1).date(), 5)
    universe = pl.DataFrame({"trade_date": [d for d in days for _ in range(2)], "ticker": ["AAA", "BBB"] * 5})
    lake.write_window("raw", "universe", universe, days[0], days[-1])
    ages = {k: float(v) for k, v in MAX_AGE_DAYS.items()}

    empty, _ = alt_feature_frame(lake, days[0], days[-1], ages)
    assert empty.height == 0 and set(ALT_VALUE_COLUMNS) <= set(empty.columns)

    # one call transcript for AAA, published before the second session's cut-off
    call = pl.DataFrame(
        {
            "trade_date": [days[1]],
            "ticker": ["AAA"],
            "published_at": [datetime(2024, 3, 4, 14, tzinfo=UTC)],
            **{
                c: [0.25]
                for c in ("call_sentiment", "management_sentiment", "prepared_sentiment", "qa_sentiment")
            },
        }
    )
    lake.write_window("raw", "call_sentiment", call, days[1], days[1])
    frame, stats = alt_feature_frame(lake, days[0], days[-1], ages)
    assert frame.height == universe.height  # every ticker-day, even where no source has a value
    assert set(ALT_VALUE_COLUMNS) <= set(frame.columns)
    filled = frame.filter(pl.col("call_sentiment").is_not_null())
    assert filled["ticker"].unique().to_list() == ["AAA"] and filled["trade_date"].min() == days[1]
    assert (
        frame["parking_total_cars"].null_count() == frame.height and stats["call"]["ticker_days_filled"] >= 1
    )
