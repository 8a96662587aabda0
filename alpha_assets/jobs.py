"""The jobs and the automation sensor: they cut across domains, so they are built here from each domain's asset
lists (``alpha_assets/<domain>/definitions.py``). The asset lists below are the public names other code uses."""

from __future__ import annotations

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus, Definitions
from dagster import define_asset_job as _job

from alpha_assets.altdata.definitions import ALT_ASSETS
from alpha_assets.altdata.vision_assets import car_detector
from alpha_assets.backtest.assets import backtest
from alpha_assets.features.assets import labels, price_features
from alpha_assets.features.matrix import feature_matrix
from alpha_assets.ingestion.assets import prices, universe
from alpha_assets.models.definitions import BLOCK_ASSETS, EXPLAIN_ASSETS, REPORT_ASSETS
from alpha_assets.models.definitions import DAILY_ASSETS as MODEL_DAILY_ASSETS
from alpha_assets.monitoring.definitions import ASSETS as MONITORING_ASSETS
from alpha_assets.monitoring.definitions import FRESHNESS
from alpha_assets.portfolio.definitions import BOOK_ASSETS

DATA_ASSETS = [universe, prices, price_features, labels, *ALT_ASSETS, feature_matrix]
DAILY_ASSETS = [*DATA_ASSETS, *MODEL_DAILY_ASSETS, *BOOK_ASSETS, *MONITORING_ASSETS]
ALL_ASSETS = [*DAILY_ASSETS, *EXPLAIN_ASSETS, *BLOCK_ASSETS, car_detector, backtest, *REPORT_ASSETS]
BACKTEST = AssetSelection.assets(backtest)
MODELS = AssetSelection.assets(car_detector)
REPORTS = AssetSelection.assets(backtest, *REPORT_ASSETS)
EXPLAIN = AssetSelection.assets(*EXPLAIN_ASSETS)
BLOCKS = AssetSelection.assets(*BLOCK_ASSETS)


def _daily_job(name: str, assets: list, description: str):
    """A job over one partitioning's daily assets and their checks (Dagster infers the job's partitions from the
    assets; unit/test_partitions_start.py pins which partitioning each job has)."""
    return _job(
        name,
        selection=AssetSelection.assets(*assets).without_checks()
        | AssetSelection.checks_for_assets(*assets) - FRESHNESS,
        description=description,
    )


# A Dagster job has one partitions definition, and the data layer's days start at the lake's first session while the
# model layer's start where a model can exist (partitions.model_days), so no Dagster job holds every daily asset.
# `alpha materialize --job main` runs daily_data, then daily_book over the part of the range a model can score; in
# the UI, select the assets (or the whole graph) and Materialize: an asset backfill spans both partitionings.
data_job = _daily_job("daily_data", DATA_ASSETS, "Vendor files to the feature matrix (no models needed).")
book_job = _daily_job(
    "daily_book",
    [*MODEL_DAILY_ASSETS, *BOOK_ASSETS, *MONITORING_ASSETS],
    "Model scores, ensemble, books, risk, orders and monitoring over trained blocks (its partitions "
    "start at the first session a trained model can exist).",
)
explain_job = _daily_job("explain", EXPLAIN_ASSETS, "SHAP and LIME for the days' books.")
# The CLI's `main`: these jobs in order over one range (alpha_assets.app.runs.materialize).
MAIN_PARTS = ("daily_data", "daily_book")

train_alpha_job = _job(
    "train_alpha",
    selection=BLOCKS,
    description="Train a retraining block (a quarter): every model kind per recipe (the base recipe by default; "
    "the fusion encoder first when the recipes include fusion); "
    "each model an MLflow run and a registered version.",
)
backtest_job = _job(
    "backtest_report", selection=BACKTEST, description="Simulate the executed books with costs."
)
reports_job = _job(
    "model_report",
    selection=AssetSelection.assets(*REPORT_ASSETS),
    description="The out-of-sample model report and the registry mirror.",
)
train_models_job = _job(
    "train_models",
    selection=MODELS,
    description="Train (or reuse, when its inputs are unchanged) the car detector and log it to MLflow.",
)

# Evaluated in the code location (not the daemon): `downstream` holds a Python condition (DayDelivered).
# Starts STOPPED: on a home built by the CLI or the demo it would otherwise launch runs as soon as the UI opens (its
# conditions judge partitions the instance has no automation history for). Turn it on in the UI (Automation ->
# downstream_automation -> Start) or with `dagster sensor start downstream_automation` once the history is built.
automation_sensor = AutomationConditionSensorDefinition(
    "downstream_automation",
    target=AssetSelection.all() - REPORTS - BLOCKS - EXPLAIN,
    default_status=DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=30,
    use_user_code_server=True,
)

JOBS = [
    data_job,
    book_job,
    explain_job,
    train_alpha_job,
    backtest_job,
    reports_job,
    train_models_job,
]
defs = Definitions(jobs=JOBS, sensors=[automation_sensor])
