"""The code location: the one Definitions object, composed per domain and loaded lazily.

Importing this module has no side effects: it creates no folder, reads no environment variable and imports no
asset module. Dagster finds ``defs`` (a ``@dagster.definitions`` loader) and calls it when it loads the code
location; only then are the domain packages imported (the trading-day partitions read their first session from
``ALPHA_PARTITIONS_START`` / ``$ALPHA_HOME/partitions.json``), the deployment chosen (``ALPHA_DEPLOYMENT=local``,
the default, or ``prod``) and the resources built. Prod resources hold ``EnvVar``s that resolve when a run
starts, so the prod Definitions load with an empty environment. Folders are made by the resources that write
into them, at first use.

Each domain exposes its own ``Definitions`` (``alpha_assets/<domain>/definitions.py``): ingestion, altdata,
features, models, portfolio (with risk and backtest), monitoring; ``alpha_assets.jobs`` holds the cross-domain
jobs and the automation sensor. The demo-only parts (the ``ground_truth`` resource and the checks comparing with
the simulated world's truth, ``alpha_assets/altdata/truth.py``) are merged in the local deployment only.
To add a domain: give it a ``definitions.py`` with ``defs`` and list it in ``DOMAINS``.

The public names of the old module-level layout (``ALL_ASSETS``, ``DAILY_ASSETS``, ``data_job`` ...) are still
importable from here; they come from ``alpha_assets.jobs`` on first access.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from alpha_assets.home import AlphaHome

DEPLOYMENTS = ("local", "prod")
# Every domain's Definitions, merged in this order (each module exposes ``defs``).
DOMAINS = [
    "alpha_assets.ingestion.definitions",
    "alpha_assets.altdata.definitions",
    "alpha_assets.features.definitions",
    "alpha_assets.models.definitions",
    "alpha_assets.portfolio.definitions",
    "alpha_assets.monitoring.definitions",
    "alpha_assets.serving.definitions",
    "alpha_assets.jobs",
]
# Merged only in the local deployment (attribute ``demo_defs`` of the module).
DEMO_DOMAINS = ["alpha_assets.altdata.definitions"]


def deployment() -> str:
    dep = os.environ.get("ALPHA_DEPLOYMENT", "local")
    if dep not in DEPLOYMENTS:
        raise ValueError(f"ALPHA_DEPLOYMENT must be 'local' or 'prod', not {dep!r}")
    return dep


def local_resources(home: AlphaHome | None = None) -> dict:
    """Everything under one ALPHA_HOME folder (nothing is created here: each resource makes its folder when it
    first writes). Includes the demo world's ``ground_truth``."""
    from alpha_assets.home import AlphaHome
    from resources import DeltaIOManager, DeltaLakeResource, LocalVendorLanding
    from resources.altdata import GroundTruthResource, SentimentResource, WebVendorResource
    from resources.model_registry import ModelRegistry
    from resources.outbox import OutboxResource

    home = home or AlphaHome.from_env()
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
            encoder_dir=os.environ.get("ALPHA_NLP_ENCODER_DIR", ""),
        ),
        # The demo vendor site: `alpha demo` serves it and sets the URL; `alpha world serve-site` for the UI.
        "web_vendor": WebVendorResource(
            base_url=os.environ.get("ALPHA_WEB_VENDOR_URL", ""),
            raw_dir=str(home.root / "web_raw"),
            requests_per_second=float(os.environ.get("ALPHA_WEB_RPS", "50")),
        ),
        "ground_truth": GroundTruthResource(root=str(home.ground_truth)),
    }


def prod_resources() -> dict:
    """Production: nothing is read from the environment here; each ``EnvVar`` resolves when a run starts.
    Credentials never appear in config: boto3, delta-rs and MLflow take them (and ``AWS_ENDPOINT_URL`` for an
    S3-compatible server) from the standard AWS variables or the task's IAM role."""
    from resources import DeltaIOManager, DeltaLakeResource, S3VendorLanding
    from resources.altdata import SentimentResource, WebVendorResource
    from resources.model_registry import ModelRegistry
    from resources.outbox import OutboxResource

    lake_root = dg.EnvVar("ALPHA_LAKE_ROOT")  # e.g. s3://fund-lake/lake
    # delta-rs storage options as JSON ("{}" on AWS with an IAM role). Concurrent commits are safe on S3 without
    # a lock: delta-rs 1.x commits with S3 conditional writes (If-None-Match); no DynamoDB lock table.
    storage = dg.EnvVar("ALPHA_LAKE_STORAGE_OPTIONS")
    return {
        "io_manager": DeltaIOManager(lake_root=lake_root, storage_options_json=storage),
        "lake_store": DeltaLakeResource(lake_root=lake_root, storage_options_json=storage),
        "landing": S3VendorLanding(bucket=dg.EnvVar("ALPHA_LANDING_BUCKET")),
        "outbox": OutboxResource(root=dg.EnvVar("ALPHA_OUTBOX_DIR")),
        "model_registry": ModelRegistry(
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
            artifact_root=dg.EnvVar("ALPHA_MLFLOW_ARTIFACT_ROOT"),
            cache_dir=dg.EnvVar("ALPHA_MODELS_DIR"),
        ),
        # the default encoder comes from its pip package in the image (a fund's own model: ALPHA_SENTIMENT_MODEL_DIR)
        "sentiment": SentimentResource(
            model_dir=dg.EnvVar("ALPHA_SENTIMENT_MODEL_DIR"), cache_dir=dg.EnvVar("ALPHA_MODELS_DIR")
        ),
        "web_vendor": WebVendorResource(
            base_url=dg.EnvVar("ALPHA_WEB_VENDOR_URL"),
            raw_dir=dg.EnvVar("ALPHA_WEB_RAW_DIR"),
            requests_per_second=1.0,
        ),
    }


def domain_definitions(demo: bool) -> list[dg.Definitions]:
    """Each domain's Definitions (plus the demo-only ones when ``demo``), imported now."""
    out = [importlib.import_module(m).defs for m in DOMAINS]
    if demo:
        out += [importlib.import_module(m).demo_defs for m in DEMO_DOMAINS]
    return out


def build_definitions(
    resources: dict | None = None,
    executor: dg.ExecutorDefinition | None = None,
    deployment_name: str | None = None,
) -> dg.Definitions:
    """The code location's Definitions for a deployment (default: ``ALPHA_DEPLOYMENT``).

    ``resources`` replaces the deployment's resources (tests, the CLI over a given home); in the local deployment
    a missing ``ground_truth`` is added empty (the truth checks then report that there is no truth).
    ``executor`` defaults to the in-process executor (one process per run: on 2 cores, spawning a process per
    step costs more than the steps); ``dagster_dask.dask_executor`` goes through here."""
    from alpha_assets.dagster_patches import install

    install()  # a planned check's event serialized once per range run, not once per partition (see the module)
    dep = deployment_name or deployment()
    if dep not in DEPLOYMENTS:
        raise ValueError(f"deployment must be one of {DEPLOYMENTS}, not {dep!r}")
    demo = dep == "local"
    if resources is None:
        resources = local_resources() if demo else prod_resources()
    elif demo and "ground_truth" not in resources:
        from resources.altdata import GroundTruthResource

        resources = {**resources, "ground_truth": GroundTruthResource(root="")}
    return dg.Definitions.merge(
        *domain_definitions(demo),
        dg.Definitions(resources=resources, executor=executor or dg.in_process_executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads (``workspace.yaml``, ``dagster dev -m alpha_assets.definitions``); the executor from
    ``ALPHA_EXECUTOR`` (``alpha_assets.executors``: in-process by default, k8s_job or dask in a cluster)."""
    from alpha_assets.executors import executor_from_env

    return build_definitions(executor=executor_from_env())


_FROM_JOBS = {
    "ALL_ASSETS",
    "DAILY_ASSETS",
    "DATA_ASSETS",
    "MODEL_DAILY_ASSETS",
    "BOOK_ASSETS",
    "MONITORING_ASSETS",
    "EXPLAIN_ASSETS",
    "BLOCK_ASSETS",
    "BACKTEST",
    "MODELS",
    "REPORTS",
    "EXPLAIN",
    "BLOCKS",
    "JOBS",
    "MAIN_PARTS",
    "data_job",
    "book_job",
    "explain_job",
    "train_alpha_job",
    "backtest_job",
    "reports_job",
    "train_models_job",
    "automation_sensor",
}
_FROM_MONITORING = {"freshness_checks", "freshness_sensor", "FRESHNESS", "DAILY_FEEDS"}
_FROM_ALTDATA = {"ALT_ASSETS"}


def __getattr__(name: str) -> Any:
    # The old module-level names, importing their domain only when asked for (PEP 562).
    for module, names in (
        ("alpha_assets.jobs", _FROM_JOBS),
        ("alpha_assets.monitoring.definitions", _FROM_MONITORING),
        ("alpha_assets.altdata.definitions", _FROM_ALTDATA),
    ):
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
