"""Deployment configuration, checked mechanically: the heavy steps declare their pools and resources; every YAML
and JSON file under deploy/ parses; the Dagster instance files pass Dagster's own instance schema; the Helm values,
ECS task definitions and Dockerfiles agree with each other and with pyproject (no Helm, ECS or Docker engine here:
what can be checked without them is)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"

HEAVY_ASSETS = {
    "imagery": ["models/car_detector", "raw/parking_lot_images", "raw/parking_lot_counts", "raw/oil_tanks",
                "raw/oil_tank_levels"],
    "nlp": ["raw/call_sentiment", "raw/filing_features"],
    "training": ["models/fusion_encoder", "models/alpha_models"],
}  # fmt: skip


@pytest.fixture(scope="module")
def asset_graph(tmp_path_factory):
    from alpha_assets.definitions import build_definitions, local_resources
    from alpha_assets.home import AlphaHome

    home = AlphaHome(tmp_path_factory.mktemp("home"))
    return build_definitions(local_resources(home), deployment_name="local").resolve_asset_graph()


def test_heavy_steps_declare_their_pool_and_kubernetes_and_dask_resources(asset_graph):
    from dagster import AssetKey

    from alpha_assets.compute import HEAVY

    for pool, keys in HEAVY_ASSETS.items():
        for key in keys:
            node = asset_graph.get(AssetKey.from_user_string(key))
            tags = node.assets_def.op.tags
            assert node.pools == {pool}, key
            k8s = json.loads(tags["dagster-k8s/config"])["container_config"]["resources"]
            assert k8s["requests"]["memory"] == f"{HEAVY[pool].memory_gib}Gi", key
            assert k8s["requests"]["cpu"] and k8s["limits"]["memory"] == k8s["requests"]["memory"], key
            dask = json.loads(tags["dagster-dask/resource_requirements"])
            assert dask == {"MEMORY": HEAVY[pool].memory_gib * 2.0**30}, key


def test_light_steps_declare_nothing(asset_graph):
    heavy = {k for keys in HEAVY_ASSETS.values() for k in keys}
    for key in asset_graph.get_all_asset_keys():
        node = asset_graph.get(key)
        if not node.is_executable or key.to_user_string() in heavy:
            continue
        assert not node.pools, key  # a new heavy asset belongs in HEAVY_ASSETS (and alpha_assets/compute.py)
        assert "dagster-dask/resource_requirements" not in node.assets_def.op.tags, key


def test_the_dask_executor_sees_the_heaviest_requirement_of_a_job(tmp_path):
    from alpha_assets.compute import TRAINING
    from alpha_assets.executors import dask_job, step_requirements

    assert step_requirements(dask_job("train_alpha", str(tmp_path))) == {
        "MEMORY": TRAINING.memory_gib * 2.0**30
    }
    assert step_requirements(dask_job("daily_data", str(tmp_path), ["raw/universe"])) == {}


# ------------------------------------------------------------------------------------------ files under deploy/
def _files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in suffixes)


@pytest.mark.parametrize("path", _files(".yaml", ".yml"), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


@pytest.mark.parametrize("path", _files(".json"), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_json_file_parses(path):
    assert isinstance(json.loads(path.read_text()), dict)


def _instance_files() -> list[Path]:
    return [p for p in _files(".yaml") if p.name == "dagster.yaml" or p.name.startswith("dagster-instance")]


@pytest.mark.parametrize("path", _instance_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_dagster_instance_files_pass_dagsters_instance_schema(path, tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text(path.read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] >= 1
    assert any(limit["key"] == "dagster/backfill" for limit in runs["tag_concurrency_limits"])
    assert config["concurrency"]["pools"]["default_limit"] >= 1


def test_the_local_instance_loads_with_its_run_queue_and_pools(tmp_path):
    from dagster import DagsterInstance

    (tmp_path / "dagster.yaml").write_text((DEPLOY / "local" / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        cfg = instance.get_concurrency_config()
        assert cfg.run_queue_config.max_concurrent_runs == 2
        assert cfg.pool_config.default_pool_limit == 1
        assert cfg.pool_config.pool_granularity.value == "run"
