"""The serving domain's Definitions: the pipeline log, the dbt marts, their publication, and the `serving` job
(run after the books and the backtest: `alpha demo` does; in production schedule it after `daily_book`)."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from alpha_assets.serving.assets import pipeline_runs, published
from alpha_assets.serving.marts import marts

ASSETS = [pipeline_runs, marts, published]

serving_job = define_asset_job(
    "serving",
    selection=AssetSelection.assets(*ASSETS),
    description="The days' pipeline log, dbt marts (built and tested) and their publication to the serving store.",
)

defs = Definitions(assets=ASSETS, jobs=[serving_job])
