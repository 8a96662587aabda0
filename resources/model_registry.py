"""The one model registry: MLflow holds every model the platform trains or is given.

Local default: a SQLite tracking store under ``ALPHA_HOME/mlflow`` with artifacts beside it; production: a tracking
server (``MLFLOW_TRACKING_URI``) with an object-store artifact root. Registered models are ``car_detector``,
``alpha_fusion`` and ``alpha_<kind>`` for each learner; aliases ``champion`` and ``challenger`` say which version is
current. Nothing else (no Delta rows, no models folder) decides which model is current: a Delta table
``models.registry`` only mirrors this registry for SQL. ``cache_dir`` holds downloaded copies of artifacts so
inference does not re-download a version it already has; it is a cache, never a source of truth.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

# A run loads a handful of models per day: MLflow's per-download progress bars would fill the CLI's and the run
# log's output with hundreds of lines (seen in `alpha demo`). A user who wants them sets the variable to true.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

CHAMPION, CHALLENGER = "champion", "challenger"
log = logging.getLogger(__name__)

# (tables, columns) of a local MLflow store that hold absolute artifact URIs
_URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)
_relocated: set[tuple[str, str]] = set()
_relocate_lock = threading.Lock()


def relocate_local_store(db_path: Path, artifact_root: Path) -> dict[str, str]:
    """Point a local MLflow store's artifact URIs at ``artifact_root`` when they name another folder's copy.

    MLflow records absolute artifact locations. A copied ALPHA_HOME (``cp -a .alpha /tmp/try``) kept the original
    home's: its runs read, and worse wrote (a model version, a drift reference), the original's files. An
    experiment is moved only when its folder exists under ``artifact_root`` (the copy carries its artifacts), by
    rewriting the prefix in one transaction. Returns {old root: new root} of what moved (empty: nothing to do)."""
    if not db_path.exists():
        return {}
    new_root = artifact_root.resolve().as_uri()
    moved: dict[str, str] = {}
    with sqlite3.connect(db_path, timeout=60) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
        if "experiments" not in tables:
            return {}
        for name, location in db.execute("select name, artifact_location from experiments").fetchall():
            if not (location or "").startswith("file://") or not location.endswith(f"/{name}"):
                continue
            old_root = location[: -len(name) - 1]
            if old_root != new_root and (artifact_root / name).is_dir():
                moved[old_root] = new_root
        for old_root in moved:
            for table, column in _URI_COLUMNS:
                if table not in tables:
                    continue
                if column not in {r[1] for r in db.execute(f"pragma table_info({table})")}:
                    continue
                db.execute(
                    f"update {table} set {column} = ? || substr({column}, ?) "
                    f"where substr({column}, 1, ?) = ?",
                    (new_root, len(old_root) + 1, len(old_root) + 1, old_root + "/"),
                )
    return moved


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()


class ModelNotFoundError(LookupError):
    """No registered version matches what was asked for."""


class ModelRegistry(ConfigurableResource):
    """MLflow tracking + model registry (one URI for both)."""

    tracking_uri: str
    artifact_root: str = ""
    cache_dir: str = ""

    # ------------------------------------------------------------------ plumbing
    def client(self):
        from mlflow.tracking import MlflowClient

        if self.tracking_uri.startswith("sqlite:///"):  # a local store's folder is made at first use
            db = Path(self.tracking_uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            self._relocate_once(db)

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _relocate_once(self, db: Path) -> None:
        if not self.artifact_root or "://" in self.artifact_root:
            return
        key = (str(db), self.artifact_root)
        with _relocate_lock:
            if key in _relocated:
                return
            moved = relocate_local_store(db, Path(self.artifact_root))
            _relocated.add(key)
        for old, new in moved.items():
            log.warning(f"MLflow store {db} named artifacts under {old} (a copied home?): moved to {new}")
        if moved:  # MLflow keeps each run's artifact repository in a process-wide cache, by run id
            from mlflow.tracking._tracking_service import utils

            getattr(utils, "_artifact_repos_cache", {}).clear()

    def experiment_id(self, name: str) -> str:
        client = self.client()
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
        if location and "://" not in location:
            location = Path(location).resolve().as_uri()
        return client.create_experiment(name, artifact_location=location)

    @staticmethod
    def _version(mv) -> ModelVersion:
        return ModelVersion(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id or "",
            source=mv.source or "",
            tags=dict(mv.tags or {}),
            aliases=tuple(getattr(mv, "aliases", None) or ()),
        )

    # ------------------------------------------------------------------ writes
    def log_model(
        self,
        name: str,
        run_name: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        model_path: Path,
        *,
        experiment: str | None = None,
        artifacts: dict[str, Path] | None = None,
        run_tags: dict[str, str] | None = None,
        version_tags: dict[str, str] | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        """One finished MLflow run (params, metrics, the model file or folder under ``model/``, extra artifacts)
        and a new version of registered model ``name`` pointing at it; ``alias`` moves to it when given."""
        import math

        client = self.client()
        run = client.create_run(
            self.experiment_id(experiment or name), run_name=run_name, tags=run_tags or {}
        )
        run_id = run.info.run_id
        try:
            for k, v in params.items():
                client.log_param(run_id, k, str(v)[:500])
            for k, v in metrics.items():
                if v is not None and math.isfinite(float(v)):
                    client.log_metric(run_id, k, float(v))
            model_path = Path(model_path)
            if model_path.is_dir():
                client.log_artifacts(run_id, str(model_path), artifact_path="model")
            else:
                client.log_artifact(run_id, str(model_path), artifact_path="model")
            for sub, path in (artifacts or {}).items():
                client.log_artifact(run_id, str(path), artifact_path=sub)
            client.set_terminated(run_id, "FINISHED")
        except Exception:
            client.set_terminated(run_id, "FAILED")
            raise
        try:
            client.get_registered_model(name)
        except Exception:
            client.create_registered_model(name)
        mv = client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=version_tags or {}
        )
        if alias:
            client.set_registered_model_alias(name, alias, mv.version)
        return self.get_version(name, int(mv.version))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client().set_registered_model_alias(name, alias, str(version))

    # ------------------------------------------------------------------ reads
    def get_version(self, name: str, version: int) -> ModelVersion:
        return self._version(self.client().get_model_version(name, str(version)))

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        try:
            return self._version(self.client().get_model_version_by_alias(name, alias))
        except Exception:
            return None

    def versions(self, name: str) -> list[ModelVersion]:
        client = self.client()
        try:
            found = client.search_model_versions(f"name = '{name}'")
            # search results do not carry aliases: the registered model does (alias -> version)
            aliases = dict(client.get_registered_model(name).aliases or {})
        except Exception:
            return []
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(int(version), []).append(alias)
        out = []
        for mv in found:
            v = self._version(mv)
            out.append(
                ModelVersion(
                    v.name,
                    v.version,
                    v.run_id,
                    v.source,
                    v.tags,
                    tuple(sorted(by_version.get(v.version, []))),
                )
            )
        return sorted(out, key=lambda v: v.version)

    def find(self, name: str, **tags: str) -> ModelVersion | None:
        """The newest version of ``name`` whose tags include all of ``tags``."""
        hits = [v for v in self.versions(name) if all(v.tags.get(k) == str(t) for k, t in tags.items())]
        return hits[-1] if hits else None

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client().get_run(run_id).data.metrics)

    def run_json(self, run_id: str, path: str) -> Any:
        """A JSON artifact of a run (what ``log_run_json`` wrote), or None when the run has none at ``path``."""
        import json
        import tempfile

        client = self.client()
        folder = str(Path(path).parent)
        if path not in {f.path for f in client.list_artifacts(run_id, None if folder == "." else folder)}:
            return None
        with tempfile.TemporaryDirectory(prefix="alpha_artifact_") as tmp:
            return json.loads(Path(client.download_artifacts(run_id, path, tmp)).read_text())

    def log_run_json(self, run_id: str, path: str, obj: Any) -> None:
        """Write ``obj`` as a JSON artifact of a run (replacing one at ``path``): derived facts kept with the model."""
        self.client().log_dict(run_id, obj, path)

    def download(self, mv: ModelVersion) -> Path:
        """The version's ``model/`` artifact as a local path (cached by name and version)."""
        import mlflow

        if self.cache_dir:
            dest = Path(self.cache_dir) / mv.name / str(mv.version)
            done = dest / ".complete"
            if done.exists():
                # relative to the cache entry (older entries: absolute, and only trusted inside it, so a
                # copied home never reads the original home's cache)
                kept = dest / done.read_text()
                if kept.resolve().is_relative_to(dest.resolve()) and kept.exists():
                    return kept
            dest.mkdir(parents=True, exist_ok=True)
            local = mlflow.artifacts.download_artifacts(
                run_id=mv.run_id, artifact_path="model", dst_path=str(dest), tracking_uri=self.tracking_uri
            )
            done.write_text(str(Path(local).resolve().relative_to(dest.resolve())))
            return Path(local)
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=mv.run_id, artifact_path="model", tracking_uri=self.tracking_uri
            )
        )

    def mirror_rows(self, names: list[str]) -> list[dict[str, Any]]:
        """Every version of ``names`` with its aliases, tags and run metrics: the rows of the read-only
        ``models.registry`` mirror."""
        import json

        rows = []
        for name in names:
            for v in self.versions(name):
                metrics = self.run_metrics(v.run_id) if v.run_id else {}
                rows.append(
                    {
                        "model": name,
                        "version": v.version,
                        "aliases": ",".join(sorted(v.aliases)),
                        "block": v.tags.get("block", ""),
                        "recipe": v.tags.get("recipe", ""),
                        "fingerprint": v.tags.get("fingerprint", ""),
                        "run_id": v.run_id,
                        "source": v.source,
                        "tags": json.dumps(v.tags, sort_keys=True),
                        "metrics": json.dumps(metrics, sort_keys=True),
                    }
                )
        return rows
