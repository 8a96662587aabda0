"""A copied ALPHA_HOME uses its own model artifacts: MLflow records absolute artifact paths, and a copy used to read
and write the original home's files (a new version, a drift reference written into the home it was copied from)."""

from __future__ import annotations

import json
import shutil

from resources.model_registry import ModelRegistry


def registry(home):
    return ModelRegistry(
        tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        artifact_root=str(home / "mlflow" / "artifacts"),
        cache_dir=str(home / "models" / "registry_cache"),
    )


def test_a_copied_home_reads_and_writes_its_own_artifacts(tmp_path):
    original, copy = tmp_path / "original", tmp_path / "copy"
    weights = tmp_path / "model.txt"
    weights.write_text("weights v1")
    mv = registry(original).log_model("alpha_lightgbm", "t", {}, {"ic": 0.05}, weights)
    registry(original).log_run_json(mv.run_id, "monitoring/ref.json", {"kept": "original"})
    assert (registry(original).download(mv) / "model.txt").read_text() == "weights v1"  # cached in the home
    shutil.copytree(original, copy)

    moved = registry(copy)
    moved.log_run_json(mv.run_id, "monitoring/ref.json", {"kept": "copy"})
    weights.write_text("weights v2")
    v2 = moved.log_model("alpha_lightgbm", "t2", {}, {"ic": 0.06}, weights)

    def ref(home, run_id):
        return json.loads(
            next((home / "mlflow" / "artifacts").rglob(f"{run_id}/artifacts/monitoring/ref.json")).read_text()
        )

    assert ref(original, mv.run_id) == {"kept": "original"}  # the original home is untouched
    assert ref(copy, mv.run_id) == {"kept": "copy"}
    assert not list((original / "mlflow" / "artifacts").rglob(v2.run_id))  # the new version is the copy's
    assert v2.source.startswith((copy / "mlflow" / "artifacts").resolve().as_uri())

    shutil.rmtree(original)  # the copy stands alone
    assert moved.run_json(mv.run_id, "monitoring/ref.json") == {"kept": "copy"}
    local = moved.download(moved.get_version("alpha_lightgbm", 1))
    assert (local / "model.txt").read_text() == "weights v1" and local.is_relative_to(copy)
    assert registry(copy).get_version("alpha_lightgbm", 1).source.startswith(copy.resolve().as_uri())


def test_the_home_it_was_made_in_is_left_as_it_is(tmp_path):
    home = tmp_path / "home"
    weights = tmp_path / "model.txt"
    weights.write_text("w")
    from resources.model_registry import relocate_local_store

    mv = registry(home).log_model("alpha_lightgbm", "t", {}, {}, weights)
    assert relocate_local_store(home / "mlflow" / "mlflow.db", home / "mlflow" / "artifacts") == {}
    assert registry(home).get_version("alpha_lightgbm", mv.version).source == mv.source
