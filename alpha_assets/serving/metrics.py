"""Prometheus metrics for the serving API: ``install_metrics(app, reader)`` adds a request-latency middleware and
``GET /metrics`` (Prometheus text exposition format 0.0.4, written here: no client library needed).

Not imported by the Dagster code location (FastAPI loads only when the API starts).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, date, datetime, timedelta

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request latency buckets (seconds): the API's stored book answers in ~1 ms, a cold PostgreSQL range in ~100 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"  # 404s on paths no route knows: one label, not one per scanned path
log = logging.getLogger(__name__)


class LatencyHistogram:
    """``alpha_http_request_duration_seconds`` per (route, method, status): cumulative bucket counts, sum, count.
    Thread-safe (the API runs sync endpoints on worker threads)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.buckets = tuple(sorted(buckets))
        self._series: dict[tuple[str, str, str], list] = {}  # labels -> [bucket counts..., sum, count]
        self._lock = threading.Lock()

    def observe(self, route: str, method: str, status: str, seconds: float) -> None:
        key = (route, method, status)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0] * len(self.buckets) + [0.0, 0]
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    series[i] += 1
            series[-2] += seconds
            series[-1] += 1

    def render(self, name: str = "alpha_http_request_duration_seconds") -> list[str]:
        lines = [f"# HELP {name} {FAMILIES[name][1]}", f"# TYPE {name} histogram"]
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for (route, method, status), series in items:
            labels = f'route="{_escape(route)}",method="{_escape(method)}",status="{_escape(status)}"'
            for bound, count in zip(self.buckets, series, strict=False):
                lines.append(f'{name}_bucket{{{labels},le="{_fmt(bound)}"}} {count}')
            lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {series[-1]}')
            lines.append(f"{name}_sum{{{labels}}} {_fmt(series[-2])}")
            lines.append(f"{name}_count{{{labels}}} {series[-1]}")
        return lines


# ------------------------------------------------------------------------------------------ the gauges' sources
def lake_from_env():
    """The lake the platform writes: ``ALPHA_LAKE_ROOT`` (+ ``ALPHA_LAKE_STORAGE_OPTIONS``, JSON) as in prod, else
    ``$ALPHA_HOME/lake`` when that folder exists; None when neither (the lake's gauges are then left out)."""
    import json

    from resources.lake import DeltaLake

    root = os.environ.get("ALPHA_LAKE_ROOT", "").strip()
    if root:
        options = os.environ.get("ALPHA_LAKE_STORAGE_OPTIONS", "").strip()
        return DeltaLake(root, json.loads(options) if options else None)
    from alpha_assets.home import AlphaHome

    lake_dir = AlphaHome.from_env().lake
    return DeltaLake(lake_dir) if lake_dir.is_dir() else None


def instance_from_env():
    """The Dagster instance of ``DAGSTER_HOME`` (read only here), or None when it is not set or cannot load."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    try:
        from dagster import DagsterInstance

        return DagsterInstance.get()
    except Exception:  # noqa: BLE001 - no instance: its gauges are left out, /metrics still answers
        return None


def epoch_seconds(value) -> float | None:
    """A stored TIMESTAMP (naive UTC: SQLite's text or PostgreSQL's datetime) as Unix seconds."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def as_date(value) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def publication_state(reader) -> dict | None:
    """The serving store's newest publication: {'published_at': Unix seconds of the last publication (any day),
    'newest_day': the newest published trading day, 'days': days published}; None when nothing is published."""
    from alpha_assets.serving.reader import EmptyStore

    try:
        row = reader.query(
            "SELECT max(published_at) AS p, max(trade_date) AS d, count(*) AS n FROM publications"
        )[0]
    except EmptyStore:
        return None
    if row["d"] is None:
        return None
    return {"published_at": epoch_seconds(row["p"]), "newest_day": as_date(row["d"]), "days": int(row["n"])}


def published_rows(reader, table: str, columns: str, day: date) -> list[dict]:
    """``table``'s rows of ``day`` in the serving store (model_kpis, pipeline_kpis)."""
    return reader.query(f"SELECT {columns} FROM {table} WHERE trade_date = :d", d=day.isoformat())


def newest_partition(lake, layer: str, name: str) -> date | None:
    """The newest ``trade_date`` of a lake table, from its Delta log (no data read); None without the table."""
    import polars as pl
    import pyarrow as pa

    if lake is None or not lake.exists(layer, name):
        return None
    files = pl.from_arrow(pa.table(lake.table(layer, name).get_add_actions(flatten=True)))
    if "partition.trade_date" in files.columns:
        return as_date(files["partition.trade_date"].max())
    return as_date(lake.scan(layer, name).select(pl.col("trade_date").max()).collect().item())


def newest_rows(lake, layer: str, name: str) -> tuple[date | None, list[dict]]:
    """The newest day of a lake table and that day's rows (one partition read)."""
    import polars as pl

    day = newest_partition(lake, layer, name)
    if day is None:
        return None, []
    return day, lake.scan(layer, name).filter(pl.col("trade_date") == day).collect().to_dicts()


def behind_sessions(published: date | None, lake_book: date | None) -> int | None:
    """Trading sessions the lake's book has that the serving store has not published yet (0: up to date)."""
    from partitions.calendar import sessions_between

    if published is None or lake_book is None:
        return None
    if lake_book <= published:
        return 0
    return len(sessions_between(published + timedelta(days=1), lake_book))


def last_successful_runs(instance, limit: int = 500) -> dict[str, float]:
    """job name -> end time (Unix seconds) of its newest successful run, among the ``limit`` newest successful
    runs of the instance (one indexed query; a job with no success among them is left out)."""
    from dagster import DagsterRunStatus, RunsFilter

    out: dict[str, float] = {}
    for rec in instance.get_run_records(filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS]), limit=limit):
        job = rec.dagster_run.job_name
        ts = rec.end_time or (rec.update_timestamp.timestamp() if rec.update_timestamp else None)
        if job not in out and ts is not None:
            out[job] = float(ts)
    return out


# ------------------------------------------------------------------------------------------------ exposition
FAMILIES: dict[str, tuple[str, str]] = {
    "alpha_http_request_duration_seconds": (
        "histogram",
        "Serving API request latency in seconds, per route template, method and status.",
    ),
    "alpha_publication_lag_seconds": ("gauge", "Seconds since the serving store's last publication."),
    "alpha_publication_last_timestamp_seconds": (
        "gauge",
        "Unix time of the serving store's last publication.",
    ),
    "alpha_publication_newest_trade_date_timestamp_seconds": (
        "gauge",
        "The newest published trading day (midnight UTC, Unix seconds).",
    ),
    "alpha_publication_behind_sessions": (
        "gauge",
        "Sessions of the lake's book (portfolio/target_weights) not published to the serving store yet.",
    ),
    "alpha_last_successful_run_timestamp_seconds": (
        "gauge",
        "End time of each Dagster job's newest successful run (Unix seconds); label dagster_job (not job, "
        "which Prometheus gives the scrape job).",
    ),
    "alpha_asset_last_materialization_timestamp_seconds": (
        "gauge",
        "When each asset's newest published day was materialized (pipeline_kpis, Unix seconds).",
    ),
    "alpha_model_ic": (
        "gauge",
        "Live mean daily rank IC of each model and recipe on the newest published day "
        "(horizon 1: the 30-session window model_health tests; 20: the 20-day-return IC).",
    ),
    "alpha_model_ic_reference": (
        "gauge",
        "The out-of-sample IC the live IC is tested against (model_health).",
    ),
    "alpha_model_ic_tstat": (
        "gauge",
        "model_health's test statistic: (live IC - reference IC) / combined "
        "Newey-West standard error (retrain at one-sided p < 1%).",
    ),
    "alpha_model_health_status": (
        "gauge",
        "1 for each model's current model_health status (ok, warn, retrain).",
    ),
    "alpha_model_champion": ("gauge", "1 when the recipe is the champion on the newest published day."),
    "alpha_model_drifted_features": (
        "gauge",
        "Features whose PSI is above the drift threshold (model_kpis).",
    ),
    "alpha_feature_drift": (
        "gauge",
        "PSI of each raw feature over the last 20 sessions against the training "
        "window of the day's model (monitoring.feature_drift, newest day).",
    ),
    "alpha_feature_drift_threshold": ("gauge", "The PSI above which a feature counts as drifted."),
    "alpha_metrics_source_up": (
        "gauge",
        "1 when /metrics could read the source (serving_store, lake, dagster).",
    ),
}
MODEL_CACHE_SECONDS_ENV = "ALPHA_METRICS_CACHE_SECONDS"


class MetricsSource:
    """The gauges of ``/metrics``, read from the serving store (``reader``), the lake and the Dagster instance,
    kept ``ttl`` seconds (``ALPHA_METRICS_CACHE_SECONDS``, default 15): scrapes in between cost nothing. The lake
    and the instance default to the environment's (``lake_from_env``, ``instance_from_env``); either missing
    leaves its gauges out (``alpha_metrics_source_up`` says which)."""

    _UNSET = object()

    def __init__(self, reader, lake=_UNSET, instance=_UNSET, ttl: float | None = None):
        self.reader = reader
        self._lake, self._instance = lake, instance
        self.ttl = float(os.environ.get(MODEL_CACHE_SECONDS_ENV, "15")) if ttl is None else ttl
        self._cached: tuple[float, list[tuple[str, dict, float]]] | None = None
        self._lock = threading.Lock()

    @property
    def lake(self):
        if self._lake is self._UNSET:
            self._lake = lake_from_env()
        return self._lake

    @property
    def instance(self):
        if self._instance is self._UNSET:
            self._instance = instance_from_env()
        return self._instance

    def samples(self, now: float | None = None) -> list[tuple[str, dict, float]]:
        """(metric, labels, value) of every gauge; the lag is computed against ``now`` on every call."""
        mono = time.monotonic()
        with self._lock:
            if self._cached is None or mono - self._cached[0] >= self.ttl:
                self._cached = (mono, self._collect())
            cached = self._cached[1]
        now = time.time() if now is None else now
        out = []
        for name, labels, value in cached:
            if name == "alpha_publication_last_timestamp_seconds":
                out.append(("alpha_publication_lag_seconds", {}, max(0.0, now - value)))
            out.append((name, labels, value))
        return out

    def _collect(self) -> list[tuple[str, dict, float]]:
        from alpha_assets.lib.monitoring.drift import PSI_DRIFT

        out: list[tuple[str, dict, float]] = [("alpha_feature_drift_threshold", {}, PSI_DRIFT)]
        up = {"serving_store": 0, "lake": 0, "dagster": 0}
        pub = None
        try:
            pub = publication_state(self.reader)
            up["serving_store"] = 1
        except Exception as e:  # noqa: BLE001 - a store that cannot be read: source_up 0, the rest still answers
            log.warning("metrics: serving store unreadable: %s", e)
        if pub is not None:
            day = pub["newest_day"]
            if pub["published_at"] is not None:
                out.append(("alpha_publication_last_timestamp_seconds", {}, pub["published_at"]))
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            out.append(("alpha_publication_newest_trade_date_timestamp_seconds", {}, midnight))
            try:
                for r in published_rows(
                    self.reader,
                    "model_kpis",
                    "model, recipe, champion, ic_1, ic_20, status, drifted_features",
                    day,
                ):
                    m = {"model": r["model"], "recipe": r["recipe"]}
                    for horizon, col in (("1", "ic_1"), ("20", "ic_20")):
                        if r[col] is not None:
                            out.append(("alpha_model_ic", m | {"horizon": horizon}, float(r[col])))
                    out.append(("alpha_model_champion", m, 1.0 if r["champion"] else 0.0))
                    if r["status"]:
                        out.append(("alpha_model_health_status", m | {"status": r["status"]}, 1.0))
                    if r["drifted_features"] is not None:
                        out.append(("alpha_model_drifted_features", m, float(r["drifted_features"])))
                for r in published_rows(self.reader, "pipeline_kpis", "asset, materialized_at", day):
                    ts = epoch_seconds(r["materialized_at"])
                    if ts is not None:
                        out.append(
                            ("alpha_asset_last_materialization_timestamp_seconds", {"asset": r["asset"]}, ts)
                        )
            except Exception as e:  # noqa: BLE001
                up["serving_store"] = 0
                log.warning("metrics: serving store tables unreadable: %s", e)
        try:
            out.extend(self._lake_samples(pub))
            up["lake"] = int(self.lake is not None)
        except Exception as e:  # noqa: BLE001
            log.warning("metrics: lake unreadable: %s", e)
        if self.instance is not None:
            try:
                for job, ts in sorted(last_successful_runs(self.instance).items()):
                    out.append(("alpha_last_successful_run_timestamp_seconds", {"dagster_job": job}, ts))
                up["dagster"] = 1
            except Exception as e:  # noqa: BLE001
                log.warning("metrics: Dagster instance unreadable: %s", e)
        out.extend(("alpha_metrics_source_up", {"source": s}, float(v)) for s, v in up.items())
        return out

    def _lake_samples(self, pub: dict | None) -> list[tuple[str, dict, float]]:
        lake = self.lake
        if lake is None:
            return []
        out = []
        behind = behind_sessions(
            pub["newest_day"] if pub else None, newest_partition(lake, "portfolio", "target_weights")
        )
        if behind is not None:
            out.append(("alpha_publication_behind_sessions", {}, float(behind)))
        _, health = newest_rows(lake, "monitoring", "model_health")
        for r in health:
            m = {"model": r["model"], "recipe": r["recipe"]}
            if r.get("z_stat") is not None:
                out.append(("alpha_model_ic_tstat", m, float(r["z_stat"])))
            if r.get("reference_ic") is not None:
                out.append(("alpha_model_ic_reference", m, float(r["reference_ic"])))
        _, drift = newest_rows(lake, "monitoring", "feature_drift")
        for r in drift:
            if r.get("psi") is not None:
                out.append(("alpha_feature_drift", {"feature": r["feature"]}, float(r["psi"])))
        return out


def render(histogram: LatencyHistogram, samples: list[tuple[str, dict, float]]) -> str:
    """The exposition text: every family's HELP and TYPE (also when it has no sample now), then its samples."""
    by_name: dict[str, list[tuple[dict, float]]] = {}
    for name, labels, value in samples:
        by_name.setdefault(name, []).append((labels, value))
    lines = histogram.render()
    for name, (kind, help_text) in FAMILIES.items():
        if kind == "histogram":
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in sorted(by_name.get(name, []), key=lambda lv: sorted(lv[0].items())):
            lines.append(f"{name}{_labels(labels)} {_fmt(value)}")
    return "\n".join(lines) + "\n"


def install_metrics(app, reader=None, source: MetricsSource | None = None) -> None:
    """Add the latency middleware and ``GET /metrics`` to the FastAPI ``app`` (``reader``: its ServingReader), and
    apply ``ALPHA_LOG_FORMAT`` once uvicorn has configured its loggers (at the app's startup)."""
    from contextlib import asynccontextmanager

    from starlette.responses import Response

    from alpha_assets.logging_setup import configure_logging

    histogram = app.state.latency = LatencyHistogram()
    app.state.metrics = source or MetricsSource(reader if reader is not None else app.state.reader)

    @app.middleware("http")
    async def _record_latency(request, call_next):
        start = time.perf_counter()
        status = "500"
        try:
            response = await call_next(request)
            status = str(response.status_code)
            return response
        finally:
            histogram.observe(route_template(request), request.method, status, time.perf_counter() - start)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:  # a plain def: the store, lake and instance reads run on a worker thread
        return Response(render(histogram, app.state.metrics.samples()), media_type=CONTENT_TYPE)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def _lifespan(a):
        configure_logging()  # after uvicorn's dictConfig, so its access/error loggers are switched too
        async with inner(a) as state:
            yield state

    app.router.lifespan_context = _lifespan


def route_template(request) -> str:
    """The matched route's path template (``/api/portfolio``, ``/ticker/{ticker}``), never the raw path. A request
    answered before routing (a 401 from the authentication middleware) is matched against the app's templates here;
    a path no route knows is ``UNMATCHED_ROUTE``."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if path:
        return path
    for template, pattern in _templates(request.scope["app"]):
        if pattern.match(request.url.path):
            return template
    return UNMATCHED_ROUTE


def _templates(app) -> list:
    """(template, compiled pattern) of every route of ``app``: the routes it holds directly and those its
    routers add (from the OpenAPI schema: FastAPI includes routers lazily, without a path of their own). Built once."""
    cached = getattr(app.state, "route_templates", None)
    if cached is None:
        from starlette.routing import compile_path

        paths = {getattr(r, "path", None) for r in app.routes} | set(app.openapi().get("paths", {}))
        cached = [(p, compile_path(p)[0]) for p in sorted(p for p in paths if p)]
        app.state.route_templates = cached
    return cached


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(float(value))
