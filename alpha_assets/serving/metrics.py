"""Prometheus metrics for the serving API: ``install_metrics(app, reader)`` adds a request-latency middleware and
``GET /metrics`` (Prometheus text exposition format 0.0.4, written here: no client library needed).

Not imported by the Dagster code location (FastAPI loads only when the API starts).
"""

from __future__ import annotations

import threading
import time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request latency buckets (seconds): the API's stored book answers in ~1 ms, a cold PostgreSQL range in ~100 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"  # 404s on paths no route knows: one label, not one per scanned path


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
        lines = [
            f"# HELP {name} Serving API request latency in seconds, per route template, method and status.",
            f"# TYPE {name} histogram",
        ]
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


def install_metrics(app, reader=None) -> None:
    """Add the latency middleware and ``GET /metrics`` to the FastAPI ``app`` (``reader``: its ServingReader)."""
    from starlette.responses import Response

    histogram = app.state.latency = LatencyHistogram()

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
    def metrics() -> Response:
        return Response("\n".join(histogram.render()) + "\n", media_type=CONTENT_TYPE)


def route_template(request) -> str:
    """The matched route's path template (``/api/portfolio``, ``/ticker/{ticker}``), never the raw path."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path or UNMATCHED_ROUTE


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(float(value))
