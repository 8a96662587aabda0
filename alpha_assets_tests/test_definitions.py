"""The code location loads, fast, with every asset, job and sensor resolvable; import contracts hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_definitions_load_and_every_job_and_sensor_resolves(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    from dagster import Definitions

    from alpha_assets.definitions import build_definitions

    defs = build_definitions()
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    repo.get_all_jobs()  # resolves each sensor's implicit asset job
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "raw/universe",
        "raw/prices",
        "raw/price_reconciliation",
        "features/price_features",
        "features/labels",
    } <= keys
    assert {s.name for s in repo.sensor_defs} >= {
        "prices_a_landing_sensor",
        "prices_b_landing_sensor",
        "reference_landing_sensor",
        "retraining_sensor",
    }
    assert {
        "features/feature_matrix",
        "features/fused_embeddings",
        "models/fusion_encoder",
        "models/alpha_models",
        "models/predictions",
        "models/alpha_scores",
        "models/promotions",
        "models/shap_values",
        "models/lime_explanations",
        "monitoring/model_health",
        "monitoring/feature_drift",
        "reports/model_report",
        "models/registry",
    } <= keys
    assert {j.name for j in repo.get_all_jobs()} >= {
        "daily_data",
        "daily_book",
        "explain",
        "train_alpha",
        "model_report",
        "backtest_report",
        "train_models",
    }


def test_the_code_location_does_not_import_heavy_libraries():
    code = (
        "import sys, alpha_assets.definitions as d; d.defs(); heavy = [m for m in ('torch', 'transformers', 'ultralytics', "
        "'shap', 'lime', 'catboost', 'xgboost', 'lightgbm', 'mlflow', 'alphalens', 'riskfolio', 'cv2', "
        "'matplotlib') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_import_contracts_hold():
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_build_definitions_takes_an_executor(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    from dagster import in_process_executor, multiprocess_executor

    from alpha_assets.definitions import build_definitions

    assert build_definitions().resolve_job_def("daily_data").executor_def == in_process_executor
    custom = build_definitions(executor=multiprocess_executor)
    assert custom.resolve_job_def("daily_data").executor_def == multiprocess_executor
