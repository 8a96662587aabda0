"""The dbt marts as Dagster assets (``marts/<name>``), daily-partitioned on the trading days.

The dbt project in ``dbt/`` reads the Delta tables read-only (``resources/dbt_lake.py``) and writes the marts to one
DuckDB file, ``$ALPHA_HOME/marts/marts.duckdb`` (``ALPHA_MARTS_DB`` overrides it). A run for a window passes the
window to dbt as vars, and every mart replaces exactly that window's rows. The manifest is parsed once and cached in
``dbt/target/`` (re-parsed only when a file of the project is newer), so loading the code location stays fast;
dbt itself is imported only by the subprocess that runs it. A run's artifacts and log go under the marts file's
folder (``$ALPHA_HOME/marts/dbt_runs/``), never into the checkout.
"""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from alpha_assets.keys import (
    MARTS_BOOK_POSITIONS,
    MARTS_EXPOSURES,
    MARTS_FUND_PERFORMANCE,
    MARTS_MODEL_KPIS,
    MARTS_PIPELINE_KPIS,
    MARTS_PNL_ATTRIBUTION,
    MARTS_PREFIX,
    MARTS_RISK_SUMMARY,
)
from alpha_assets.serving import marts_db_path
from partitions import model_days, window_dates

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"
MART_KEYS = [
    MARTS_BOOK_POSITIONS,
    MARTS_FUND_PERFORMANCE,
    MARTS_PNL_ATTRIBUTION,
    MARTS_EXPOSURES,
    MARTS_RISK_SUMMARY,
    MARTS_MODEL_KPIS,
    MARTS_PIPELINE_KPIS,
]
MARTS = tuple(k.path[-1] for k in MART_KEYS)  # the dbt model names


def dbt_executable() -> str:
    """The venv's dbt (next to this interpreter), so the code location never picks up another install."""
    exe = Path(sys.executable).with_name("dbt")
    return str(exe) if exe.exists() else "dbt"


def dbt_env(lake_root: str | None = None, marts_db: str | Path | None = None) -> dict[str, str]:
    """The environment the in-repo profile reads (dbt/profiles.yml)."""
    if lake_root is None:
        from alpha_assets.home import AlphaHome

        lake_root = os.environ.get("ALPHA_LAKE_ROOT") or str(AlphaHome.from_env().lake)
    marts_db = Path(marts_db or marts_db_path())
    marts_db.parent.mkdir(parents=True, exist_ok=True)
    repo = str(DBT_DIR.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {
        "ALPHA_LAKE_ROOT": str(lake_root),
        "ALPHA_MARTS_DB": str(marts_db),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # the profile's plugin is resources.dbt_lake: importable from the repository root
        "PYTHONPATH": repo if not path else f"{repo}{os.pathsep}{path}",
    }


def ensure_manifest() -> Path:
    """dbt/target/manifest.json, parsed again only when a project file is newer than it (a ~5 s `dbt parse`)."""
    manifest = DBT_DIR / "target" / "manifest.json"
    sources = [DBT_DIR / "dbt_project.yml", DBT_DIR / "profiles.yml"]
    for sub in ("models", "macros", "tests"):
        sources += [p for p in (DBT_DIR / sub).rglob("*") if p.is_file()]
    newest = max(p.stat().st_mtime for p in sources)
    if manifest.exists() and manifest.stat().st_mtime >= newest:
        return manifest
    env = {
        **os.environ,
        **dbt_env(
            lake_root=os.environ.get("ALPHA_LAKE_ROOT", "/nonexistent"),
            marts_db=os.environ.get("ALPHA_MARTS_DB", "/tmp/alpha-marts-parse.duckdb"),
        ),
    }
    env.pop("DBT_TARGET_PATH", None)  # the manifest is the project's build cache: dbt/target
    with tempfile.TemporaryDirectory(prefix="alpha-dbt-parse-") as logs:  # no dbt/logs in the checkout
        subprocess.run(
            [
                dbt_executable(),
                "parse",
                "--quiet",
                "--project-dir",
                str(DBT_DIR),
                "--profiles-dir",
                str(DBT_DIR),
            ],
            check=True,
            env={**env, "DBT_LOG_PATH": logs},
            cwd=DBT_DIR,
            capture_output=True,
        )
    manifest.touch()
    return manifest


class MartsTranslator(DagsterDbtTranslator):
    """Marts are ``marts/<name>``; a source is the Python asset ``<layer>/<asset>`` that writes its Delta table."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([MARTS_PREFIX, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "serving"


DBT_PROJECT = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def window_vars(context: AssetExecutionContext) -> dict[str, str]:
    start, end = window_dates(*context.partition_time_window)
    return {"start_date": start.isoformat(), "end_date": end.isoformat()}


@dbt_assets(
    manifest=ensure_manifest(),
    project=DBT_PROJECT,
    dagster_dbt_translator=MartsTranslator(),
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    name="marts",
    required_resource_keys={"lake_store"},
)
def marts(context: AssetExecutionContext):
    """Build the window's marts and run their key tests (dbt build: a failing test fails the run)."""
    lake = context.resources.lake_store
    os.environ.update(dbt_env(lake_root=lake.lake_root))
    os.environ["ALPHA_LAKE_STORAGE_OPTIONS"] = (
        lake.storage_options_json or "{}"
    )  # the dbt subprocess inherits the run's environment
    dbt = DbtCliResource(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable())
    target = run_target_path(context.run.run_id)
    yield from dbt.cli(
        ["build", "--vars", json.dumps(window_vars(context))], context=context, target_path=target
    ).stream()


# the newest dbt run folders kept (run_results.json, dbt.log, compiled SQL) for debugging
KEEP_RUN_TARGETS = 10


def run_target_path(run_id: str) -> Path:
    """A dbt run's target and log folder, next to the marts file (``$ALPHA_HOME/marts/dbt_runs/<run>-<n>``), never
    in the checkout; only the newest KEEP_RUN_TARGETS folders are kept."""
    import shutil
    import uuid

    root = marts_db_path().parent / "dbt_runs"
    root.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for p in old[: max(0, len(old) - KEEP_RUN_TARGETS + 1)]:
        shutil.rmtree(p, ignore_errors=True)
    return root / f"{run_id[:8]}-{uuid.uuid4().hex[:6]}"
