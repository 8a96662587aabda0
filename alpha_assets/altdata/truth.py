"""Demo-only add-on: the alt-data assets' measurement error against the demo world's truth.

The assets themselves know nothing of a truth (production has none). In the local deployment, these asset checks
run after their asset in the same run: each reads the window the asset just wrote from the lake and the truth file
the simulator wrote under ``ALPHA_HOME/ground_truth`` (through ``GroundTruthResource``), and reports the error as
the check's metadata (``truth_*`` keys; WARN when above its goal). Nothing computed here flows downstream.
``alpha_assets.definitions`` adds them, with the ``ground_truth`` resource, only when ALPHA_DEPLOYMENT=local.
"""

from datetime import date

import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from alpha_assets.keys import (
    RAW_CALL_SENTIMENT,
    RAW_FILING_FEATURES,
    RAW_OIL_TANK_LEVELS,
    RAW_OIL_TANKS,
    RAW_PARKING_LOT_COUNTS,
    RAW_PARKING_LOT_IMAGES,
    RAW_WEB_PRODUCTS,
)
from alpha_assets.lib.altdata.web.products import normalise_availability
from partitions import trading_days, window_dates
from resources.altdata import GroundTruthResource
from resources.lake_resource import DeltaLakeResource

NO_TRUTH = {"note": "no ground truth for this window (no truth file, or nothing delivered)"}


def _window(context: AssetCheckExecutionContext, lake_store: DeltaLakeResource, table: str) -> pl.DataFrame:
    start, end = window_dates(*context.partition_time_window)
    layer, name = table.split(".")
    if not lake_store.lake.exists(layer, name):
        return pl.DataFrame()
    return lake_store.lake.read(layer, name, start, end)


def parking_error(images: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Mean absolute error of the cars counted per image against the true count, absolute and in % of the mean."""
    if not images.height:
        return {}
    j = images.join(truth, on=["trade_date", "store_id"], how="inner")
    if not j.height:
        return {}
    mae = float((j["n_cars"].cast(pl.Float64) - j["true_count"]).abs().mean())
    mean = float(j["true_count"].mean())
    return {
        "truth_images_vs_truth": j.height,
        "truth_count_mae": round(mae, 3),
        "truth_mean_true_count": round(mean, 2),
        "truth_count_mae_pct": round(100.0 * mae / mean, 3) if mean else float("nan"),
    }


def tank_error(tanks: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Match each true tank to the nearest found tank of the same farm-day (within its radius)."""
    if not tanks.height:
        return {}
    truth = truth.join(tanks.select("trade_date", "farm_id").unique(), on=["trade_date", "farm_id"])
    if not truth.height:
        return {}
    found = tanks.select(
        "trade_date",
        "farm_id",
        pl.col("center_x_px").alias("fx"),
        pl.col("center_y_px").alias("fy"),
        pl.col("fill_ratio").alias("est"),
    )
    pairs = (
        truth.join(found, on=["trade_date", "farm_id"])
        .with_columns(
            ((pl.col("fx") - pl.col("center_x_px")) ** 2 + (pl.col("fy") - pl.col("center_y_px")) ** 2)
            .sqrt()
            .alias("dist")
        )
        .filter(pl.col("dist") <= pl.col("radius_px"))
        .sort("dist")
        .unique(["trade_date", "tank_id"], keep="first")
    )
    measured = pairs.filter(pl.col("est").is_not_nan())
    mae = float((measured["est"] - measured["fill_ratio"]).abs().mean()) if measured.height else float("nan")
    return {
        "truth_true_tanks": truth.height,
        "truth_tanks_found": pairs.height,
        "truth_tanks_measured": measured.height,
        "truth_fill_mae": round(mae, 5),
    }


def document_spearman(df: pl.DataFrame, truth: pl.DataFrame, truth_col: str, cols: list[str]) -> dict:
    """Spearman correlation of ``cols`` with the true ``truth_col`` of the same documents (matched by file)."""
    if not df.height:
        return {}
    matched = df.with_columns(pl.col("file").str.split("/").list.last()).join(
        truth.select("file", truth_col), on="file", how="inner"
    )
    out: dict = {"truth_documents": matched.height, "truth_column": truth_col}
    for c in cols:
        pairs = matched.select(c, truth_col).drop_nulls()
        if pairs.height >= 3:
            rho = pairs.select(pl.corr(c, truth_col, method="spearman")).item()
            if rho is not None and rho == rho:
                out[f"truth_spearman_{c}"] = round(float(rho), 4)
    return out


def web_error(products: pl.DataFrame, truth: pl.DataFrame, start: date, end: date) -> dict:
    """Scraped prices and availability against the site's own (the truth the site was generated from)."""
    truth = truth.filter(pl.col("trade_date").is_between(start, end)).with_columns(
        pl.col("availability").map_elements(normalise_availability, return_dtype=pl.String)
    )
    if not truth.height or not products.height:
        return {}
    joined = truth.join(products, on=["trade_date", "ticker", "product"], how="left", suffix="_scraped")
    found = joined.filter(pl.col("price_scraped").is_not_null())
    return {
        "truth_rows": truth.height,
        "truth_rows_scraped": found.height,
        "truth_max_abs_price_error": float((found["price"] - found["price_scraped"]).abs().max() or 0.0),
        "truth_availability_match_share": float(
            (found["availability"] == found["availability_scraped"]).mean() or 0.0
        ),
    }


def _result(error: dict, passed: bool) -> AssetCheckResult:
    return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.WARN, metadata=error or NO_TRUTH)


def _truth(ground_truth: GroundTruthResource, name: str) -> pl.DataFrame | None:
    path = ground_truth.path(name)
    return pl.read_parquet(path) if path is not None else None


@asset_check(
    asset=RAW_PARKING_LOT_COUNTS,
    additional_deps=[RAW_PARKING_LOT_IMAGES],
    partitions_def=trading_days,
    description="demo world only: mean absolute car-count error ≤ 10% of the mean true count",
)
def parking_count_error(
    context: AssetCheckExecutionContext, lake_store: DeltaLakeResource, ground_truth: GroundTruthResource
) -> AssetCheckResult:
    truth = _truth(ground_truth, "parking_counts.parquet")
    error = (
        {} if truth is None else parking_error(_window(context, lake_store, "raw.parking_lot_images"), truth)
    )
    return _result(error, not error or error["truth_count_mae_pct"] <= 10.0)


@asset_check(
    asset=RAW_OIL_TANK_LEVELS,
    additional_deps=[RAW_OIL_TANKS],
    partitions_def=trading_days,
    description="demo world only: mean absolute tank fill error ≤ 0.05",
)
def tank_fill_error(
    context: AssetCheckExecutionContext, lake_store: DeltaLakeResource, ground_truth: GroundTruthResource
) -> AssetCheckResult:
    truth = _truth(ground_truth, "tank_fills.parquet")
    error = {} if truth is None else tank_error(_window(context, lake_store, "raw.oil_tanks"), truth)
    return _result(error, not error or not error["truth_fill_mae"] > 0.05)


@asset_check(
    asset=RAW_CALL_SENTIMENT,
    partitions_def=trading_days,
    description="demo world only: call sentiment rises with the true management tone (Spearman > 0)",
)
def call_sentiment_tracks_tone(
    context: AssetCheckExecutionContext, lake_store: DeltaLakeResource, ground_truth: GroundTruthResource
) -> AssetCheckResult:
    truth = _truth(ground_truth, "transcript_tone.parquet")
    df = _window(context, lake_store, "raw.call_sentiment")
    error = (
        {}
        if truth is None
        else document_spearman(df, truth, "management_tone", ["call_sentiment", "management_sentiment"])
    )
    rho = error.get("truth_spearman_call_sentiment")
    return _result(error, rho is None or rho > 0)


@asset_check(
    asset=RAW_FILING_FEATURES,
    partitions_def=trading_days,
    description="demo world only: the risk section's negative terms rise with the true filing risk",
)
def filing_features_track_risk(
    context: AssetCheckExecutionContext, lake_store: DeltaLakeResource, ground_truth: GroundTruthResource
) -> AssetCheckResult:
    truth = _truth(ground_truth, "filing_risk.parquet")
    df = _window(context, lake_store, "raw.filing_features")
    cols = ["risk_factors_words", "risk_factors_negative_terms", "mdna_negative_share"]
    error = {} if truth is None else document_spearman(df, truth, "filing_risk", cols)
    rho = error.get("truth_spearman_risk_factors_negative_terms")
    return _result(error, rho is None or rho > 0)


@asset_check(
    asset=RAW_WEB_PRODUCTS,
    partitions_def=trading_days,
    description="demo world only: scraped prices equal the site's to the cent",
)
def web_prices_match_site(
    context: AssetCheckExecutionContext, lake_store: DeltaLakeResource, ground_truth: GroundTruthResource
) -> AssetCheckResult:
    truth = _truth(ground_truth, "web_prices.parquet")
    start, end = window_dates(*context.partition_time_window)
    error = (
        {}
        if truth is None
        else web_error(_window(context, lake_store, "raw.web_products"), truth, start, end)
    )
    return _result(error, not error or error["truth_max_abs_price_error"] <= 0.005)


TRUTH_CHECKS = [
    parking_count_error,
    tank_fill_error,
    call_sentiment_tracks_tone,
    filing_features_track_risk,
    web_prices_match_site,
]
