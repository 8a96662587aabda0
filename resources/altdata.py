"""Resources for the alternative-data sources: model tracking, the sentiment model, the vendor web site, and the
demo world's ground truth (used only to report measurement error, never as an input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr


class MlflowTracking(ConfigurableResource):
    """An MLflow tracking server or local SQLite store, with artifacts under ``artifact_root``.

    Local default: ``sqlite:///<ALPHA_HOME>/mlflow/mlflow.db`` with artifacts in ``<ALPHA_HOME>/mlflow/artifacts``.
    Production: ``http://mlflow.internal:5000`` (or a PostgreSQL URI) and an ``s3://`` artifact root.
    """

    tracking_uri: str
    artifact_root: str = ""

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        client = self.client()
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
        if location and "://" not in location:
            location = Path(location).resolve().as_uri()
        return client.create_experiment(name, artifact_location=location)

    def log_model_run(
        self,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        artifacts: dict[str, Path],
        tags: dict[str, str] | None = None,
        registered_model: str | None = None,
        registered_artifact: str | None = None,
    ) -> dict[str, Any]:
        """One finished MLflow run with params, metrics and artifacts; optionally a new registered model version.

        Returns run_id, artifact_uri and (when registered) model_version."""
        client = self.client()
        run = client.create_run(self.experiment_id(experiment), run_name=run_name, tags=tags or {})
        run_id = run.info.run_id
        try:
            for k, v in params.items():
                client.log_param(run_id, k, str(v)[:500])
            for k, v in metrics.items():
                client.log_metric(run_id, k, float(v))
            for sub, path in artifacts.items():
                client.log_artifact(run_id, str(path), artifact_path=sub)
            client.set_terminated(run_id, "FINISHED")
        except Exception:
            client.set_terminated(run_id, "FAILED")
            raise
        out: dict[str, Any] = {"run_id": run_id, "artifact_uri": run.info.artifact_uri}
        if registered_model:
            try:
                client.get_registered_model(registered_model)
            except Exception:
                client.create_registered_model(registered_model)
            source = f"{run.info.artifact_uri}/{registered_artifact or ''}".rstrip("/")
            mv = client.create_model_version(registered_model, source=source, run_id=run_id)
            out["model_version"] = int(mv.version)
        return out


class SentimentResource(ConfigurableResource):
    """The sentence-sentiment model for calls and filings.

    ``model_dir`` is any local Hugging Face sequence-classification directory (a FinBERT copy works unchanged);
    empty means the offline default (all-MiniLM-L6-v2 from its pip package + a head trained on the shipped
    labelled sentences, cached in ``cache_dir`` after the first use)."""

    model_dir: str = ""
    cache_dir: str = ""
    num_threads: int = 2

    _model: Any = PrivateAttr(default=None)

    def model(self):
        if self._model is None:
            from alpha_assets.lib.altdata.nlp import SentimentModel

            kwargs: dict[str, Any] = {"num_threads": self.num_threads}
            if self.model_dir:
                self._model = SentimentModel.from_directory(self.model_dir, **kwargs)
            else:
                if self.cache_dir:
                    kwargs["cache_dir"] = self.cache_dir
                self._model = SentimentModel.default(**kwargs)
        return self._model


class WebVendorResource(ConfigurableResource):
    """The vendor web site the crawler visits, and the crawler's manners.

    ``base_url`` empty means no site is configured: ``raw.web_signals`` then writes nothing and says so.
    ``raw_dir`` keeps every fetched page (content-addressed) plus a fetch log, so a day can be re-parsed
    without re-crawling."""

    base_url: str = ""
    raw_dir: str
    requests_per_second: float = 5.0
    max_concurrency: int = 2
    max_retries: int = 3
    timeout_s: float = 10.0
    user_agent: str = "alpha-assets-crawler/0.1 (+https://github.com/alpha-assets; data@fund.example)"


class GroundTruthResource(ConfigurableResource):
    """The demo world's truth folder. Assets read it only to report their measurement error as metadata; no value
    computed from it flows downstream. Empty ``root`` (production) turns the error reports off."""

    root: str = ""

    def path(self, name: str) -> Path | None:
        if not self.root:
            return None
        p = Path(self.root) / name
        return p if p.exists() else None


class ModelsDir(ConfigurableResource):
    """Where trained model files live (weights the next run reuses). A local folder, or a shared volume in
    production: MLflow keeps the tracked copy, this is the working copy inference loads."""

    root: str

    def path(self, *parts: str) -> Path:
        p = Path(self.root).joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p
