"""The one Definitions object. Resources are chosen once by deployment: ALPHA_DEPLOYMENT=local (default) | prod."""

from __future__ import annotations

import os

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    define_asset_job,
    in_process_executor,
)

from alpha_assets.altdata.features import alt_features
from alpha_assets.altdata.text_assets import TEXT_ASSETS
from alpha_assets.altdata.vision_assets import car_detector, oil_tank_levels, parking_lot_counts
from alpha_assets.altdata.web_assets import WEB_ASSETS, WEB_SENSORS
from alpha_assets.backtest.assets import backtest
from alpha_assets.features.assets import labels, price_features
from alpha_assets.features.matrix import feature_matrix
from alpha_assets.home import AlphaHome
from alpha_assets.ingestion.assets import prices, universe
from alpha_assets.ingestion.sensors import vendor_sensors
from alpha_assets.models.explanations import lime_explanations, shap_values
from alpha_assets.models.report import model_report, registry
from alpha_assets.models.scoring import alpha_scores, fused_embeddings, predictions, promotions
from alpha_assets.models.training import alpha_models, fusion_encoder
from alpha_assets.monitoring.assets import feature_drift, model_health, retraining_sensor
from alpha_assets.portfolio.assets import orders, target_weights
from alpha_assets.risk.assets import risk_report
from partitions import trading_days, training_blocks
from resources import DeltaIOManager, DeltaLakeResource, LocalVendorLanding, S3VendorLanding
from resources.altdata import GroundTruthResource, SentimentResource, WebVendorResource
from resources.model_registry import ModelRegistry
from resources.outbox import OutboxResource


def deployment() -> str:
    dep = os.environ.get("ALPHA_DEPLOYMENT", "local")
    if dep not in ("local", "prod"):
        raise ValueError(f"ALPHA_DEPLOYMENT must be 'local' or 'prod', not {dep!r}")
    return dep


def local_resources(home: AlphaHome | None = None) -> dict:
    home = (home or AlphaHome.from_env()).ensure()
    lake_root = str(home.lake)
    return {
        "io_manager": DeltaIOManager(lake_root=lake_root),
        "lake_store": DeltaLakeResource(lake_root=lake_root),
        "landing": LocalVendorLanding(root=str(home.landing), quarantine_root=str(home.quarantine)),
        "outbox": OutboxResource(root=str(home.outbox)),
        "model_registry": ModelRegistry(
            tracking_uri=f"sqlite:///{home.mlflow / 'mlflow.db'}",
            artifact_root=str(home.mlflow / "artifacts"),
            cache_dir=str(home.models / "registry_cache"),
        ),
        "sentiment": SentimentResource(
            model_dir=os.environ.get("ALPHA_SENTIMENT_MODEL_DIR", ""),
            cache_dir=str(home.models / "sentiment"),
        ),
        # The demo vendor site: `alpha demo` serves it and sets the URL; `alpha world serve-site` for the UI.
        "web_vendor": WebVendorResource(
            base_url=os.environ.get("ALPHA_WEB_VENDOR_URL", ""),
            raw_dir=str(home.root / "web_raw"),
            requests_per_second=float(os.environ.get("ALPHA_WEB_RPS", "50")),
        ),  # fmt: skip
        "ground_truth": GroundTruthResource(root=str(home.ground_truth)),
    }


def prod_resources() -> dict:
    # Nothing is read from the environment at import time: EnvVar resolves when a run starts.
    lake_root = EnvVar("ALPHA_LAKE_ROOT")  # e.g. s3://fund-lake/lake
    storage = EnvVar(
        "ALPHA_LAKE_STORAGE_OPTIONS"
    )  # JSON, e.g. {"AWS_REGION": "us-east-1"}; "{}" for IAM roles
    return {
        "io_manager": DeltaIOManager(lake_root=lake_root, storage_options_json=storage),
        "lake_store": DeltaLakeResource(lake_root=lake_root, storage_options_json=storage),
        "landing": S3VendorLanding(bucket=EnvVar("ALPHA_LANDING_BUCKET"), endpoint_url=None),
        "outbox": OutboxResource(root=EnvVar("ALPHA_OUTBOX_DIR")),
        "model_registry": ModelRegistry(
            tracking_uri=EnvVar("MLFLOW_TRACKING_URI"),
            artifact_root=EnvVar("ALPHA_MLFLOW_ARTIFACT_ROOT"),
            cache_dir=EnvVar("ALPHA_MODELS_DIR"),
        ),
        "sentiment": SentimentResource(
            model_dir=EnvVar("ALPHA_SENTIMENT_MODEL_DIR"), cache_dir=EnvVar("ALPHA_MODELS_DIR")
        ),
        "web_vendor": WebVendorResource(
            base_url=EnvVar("ALPHA_WEB_VENDOR_URL"),
            raw_dir=EnvVar("ALPHA_WEB_RAW_DIR"),
            requests_per_second=1.0,
        ),  # fmt: skip
        "ground_truth": GroundTruthResource(root=""),
    }


ALT_ASSETS = [parking_lot_counts, oil_tank_levels, *TEXT_ASSETS, *WEB_ASSETS, alt_features]
DATA_ASSETS = [universe, prices, price_features, labels, *ALT_ASSETS, feature_matrix]
MODEL_DAILY_ASSETS = [fused_embeddings, predictions, promotions, alpha_scores]
BOOK_ASSETS = [target_weights, risk_report, orders]
MONITORING_ASSETS = [model_health, feature_drift]
EXPLAIN_ASSETS = [shap_values, lime_explanations]
BLOCK_ASSETS = [fusion_encoder, alpha_models]
DAILY_ASSETS = [*DATA_ASSETS, *MODEL_DAILY_ASSETS, *BOOK_ASSETS, *MONITORING_ASSETS]
ALL_ASSETS = [*DAILY_ASSETS, *EXPLAIN_ASSETS, *BLOCK_ASSETS, car_detector, backtest, model_report, registry]
BACKTEST = AssetSelection.assets(backtest)
MODELS = AssetSelection.assets(car_detector)
REPORTS = AssetSelection.assets(backtest, model_report, registry)
EXPLAIN = AssetSelection.assets(*EXPLAIN_ASSETS)
BLOCKS = AssetSelection.assets(*BLOCK_ASSETS)

# Daily feeds must have yesterday's session by 10:00 UTC on the next weekday (WARN: the book still trades on
# the last published values, and alt_features reports their age).
DAILY_FEEDS = [
    ["raw", "prices"],
    ["raw", "parking_lot_counts"],
    ["raw", "oil_tank_levels"],
    ["raw", "web_signals"],
]
freshness_checks = build_time_partition_freshness_checks(
    assets=[AssetKey(k) for k in DAILY_FEEDS], deadline_cron="0 10 * * 2-6", timezone="UTC"
)
freshness_sensor = build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    minimum_interval_seconds=600,
    default_status=DefaultSensorStatus.RUNNING,
)

FRESHNESS = AssetSelection.checks(*freshness_checks)  # run by their sensor, not inside the daily runs


def _daily_job(name: str, assets: list, description: str):
    return define_asset_job(name, selection=AssetSelection.assets(*assets).without_checks()
                            | AssetSelection.checks_for_assets(*assets) - FRESHNESS,
                            partitions_def=trading_days, description=description)  # fmt: skip


main_job = _daily_job("main", DAILY_ASSETS, "Every daily asset for a window of trading days: vendor data, features, "
                      "model scores, books, risk, orders, monitoring (backfills run this).")  # fmt: skip
data_job = _daily_job("daily_data", DATA_ASSETS, "Vendor files to the feature matrix (no models needed).")
book_job = _daily_job("daily_book", [*MODEL_DAILY_ASSETS, *BOOK_ASSETS, *MONITORING_ASSETS],
                      "Model scores, ensemble, books, risk, orders and monitoring over trained blocks.")  # fmt: skip
explain_job = _daily_job("explain", EXPLAIN_ASSETS, "SHAP and LIME for the days' books.")

train_alpha_job = define_asset_job(
    "train_alpha", selection=BLOCKS, partitions_def=training_blocks,
    description="Train a retraining block (a quarter): the fusion encoder, then the four learners per recipe; "
    "each model an MLflow run and a registered version.",
)  # fmt: skip

backtest_job = define_asset_job(
    "backtest_report", selection=BACKTEST, description="Simulate the executed books with costs."
)
reports_job = define_asset_job(
    "model_report", selection=AssetSelection.assets(model_report, registry),
    description="The out-of-sample model report and the registry mirror.",
)  # fmt: skip

train_models_job = define_asset_job(
    "train_models", selection=MODELS,
    description="Train (or reuse, when its inputs are unchanged) the car detector and log it to MLflow.",
)  # fmt: skip

automation_sensor = AutomationConditionSensorDefinition(
    "downstream_automation", target=AssetSelection.all() - REPORTS - BLOCKS - EXPLAIN,
    default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
)  # fmt: skip


def build_definitions(resources: dict | None = None) -> Definitions:
    if resources is None:
        resources = local_resources() if deployment() == "local" else prod_resources()
    return Definitions(
        assets=ALL_ASSETS,
        jobs=[
            main_job,
            data_job,
            book_job,
            explain_job,
            train_alpha_job,
            backtest_job,
            reports_job,
            train_models_job,
        ],
        asset_checks=freshness_checks,
        sensors=[*vendor_sensors, *WEB_SENSORS, automation_sensor, freshness_sensor, retraining_sensor],
        resources=resources,
        # One process per run: on 2 cores, spawning a process per step costs more than the steps themselves.
        executor=in_process_executor,
    )


defs = build_definitions()
