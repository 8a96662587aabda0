"""The fund's read-only REST API over the serving store (`store.serving_url()`): the day's book, the fund's daily
line, risk, model and pipeline KPIs, as typed JSON with OpenAPI docs at ``/docs``.

``reader.ServingReader`` is the one read layer (the dashboard uses it too): SQLite opened read-only (``mode=ro``),
PostgreSQL in read-only transactions; every query fetches only the day or the range asked for, on the
``trade_date`` indexes the store creates. ``create_app`` builds the FastAPI app: GET and HEAD only (other methods get 405),
API keys and roles on every surface but ``/api/health`` when any key is configured (``security.py``), an access
log, and one-line 4xx messages naming the bad parameter (an unknown one too, and a day outside the published
range). Floats are written to 12 significant digits, timestamps in UTC with a ``Z``, and ``/docs`` is a
self-contained page (no CDN). JSON is written by pydantic's Rust serializer (FastAPI's fast path when a
response model is declared; FastAPI 0.165 deprecates its orjson response class in its favour).

Not imported by the Dagster code location: fastapi and sqlalchemy load only when the API or dashboard starts.
"""

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from alpha_assets.serving.reader import (  # the read layer; re-exported for the API's callers
    EARLIEST_DAY,
    GZIP_MIN_BYTES,
    LATEST_DAY,
    PIPELINE_MAX_PAGE,
    PIPELINE_PAGE,
    EmptyStore,
    NoBook,
    OutOfRange,
    ServingReader,
    _as_date,
    orjson,
)

# ------------------------------------------------------------------------------------------ response models


class TopFeature(BaseModel):
    feature: str
    shap_value: float


class Position(BaseModel):
    ticker: str
    side: Literal["long", "short"]
    weight: float = Field(description="signed fraction of NAV")
    sector: str | None
    country: str | None
    alpha_score: float | None
    top_features: list[TopFeature] = Field(description="largest |SHAP| features that day (empty: none)")


class Stamped(BaseModel):
    """What every response is built from (also in the X-Alpha-As-Of / X-Alpha-Published-At headers)."""

    as_of: date = Field(description="the newest published trading day the response is built from")
    published_at: datetime | None = Field(description="when that day was published: UTC, ISO 8601 with Z")


class Portfolio(Stamped):
    trade_date: date
    positions: list[Position]
    n_long: int
    n_short: int
    gross_exposure: float
    net_exposure: float


class Exposure(BaseModel):
    dimension: str = Field(description="total, sector, country, beta or name (top 10 by |weight|)")
    bucket: str
    long: float
    short: float
    gross: float
    net: float


class Exposures(Stamped):
    trade_date: date
    exposures: list[Exposure]


class PerformanceDay(BaseModel):
    trade_date: date
    nav: float
    gross_pnl: float
    costs: float
    net_pnl: float
    gross_return: float
    net_return: float
    drawdown: float = Field(description="<= 0, fraction below the running NAV peak")
    turnover: float
    gross_exposure: float
    net_exposure: float


class Performance(Stamped):
    from_: date = Field(alias="from")
    to: date
    days: list[PerformanceDay]


class RiskSummary(BaseModel):
    var_1d: float | None = Field(description="1-day historical VaR, fraction of NAV (null: not computed yet)")
    es_1d: float | None
    var_5d: float | None
    var_limit: float
    var_limit_usage: float | None
    gross_exposure: float
    gross_limit: float
    gross_limit_usage: float
    drawdown: float
    drawdown_state: str
    breaches: list[str] = Field(description="limits breached that day (empty: none)")


class VarPoint(BaseModel):
    trade_date: date
    var_1d: float | None = Field(description="null on the first days, before the risk model has history")
    es_1d: float | None
    var_5d: float | None
    var_limit: float
    var_limit_usage: float | None
    gross_limit_usage: float
    drawdown: float


class Risk(Stamped):
    trade_date: date
    summary: RiskSummary
    history: list[VarPoint] = Field(description="the year up to trade_date")


class ModelKpi(BaseModel):
    trade_date: date
    model: str
    recipe: str
    champion: bool
    ic_1: float | None
    ic_20: float | None
    ensemble_weight: float | None
    status: str | None
    drifted_features: int | None


class Models(Stamped):
    trade_date: date
    models: list[ModelKpi]
    ic_history: list[ModelKpi] = Field(description="every model's KPIs per day over the last year")


class PipelineKpi(BaseModel):
    trade_date: date
    asset: str
    run_seconds: float | None
    rows_written: int | None
    materialized_at: datetime | None = Field(description="UTC, ISO 8601 with Z")
    freshness_hours: float | None
    failovers: int
    quarantined_files: int


class Pipeline(Stamped):
    trade_date: date
    assets: list[PipelineKpi]
    total_failovers: int
    total_quarantined_files: int
    history: list[PipelineKpi] = Field(
        description="per asset and day over the last year, newest day first, one page (limit/offset)"
    )
    total: int = Field(description="history rows in the year (every page)")
    limit: int
    offset: int
    next_offset: int | None = Field(description="the next page's offset (null: this is the last page)")


class Health(BaseModel):
    status: Literal["ok", "empty"]
    store: Literal["sqlite", "postgresql"]
    newest_day: date | None = None
    published_at: datetime | None = Field(None, description="UTC, ISO 8601 with Z")
    days_published: int = 0
    tables: dict[str, int] = Field(default_factory=dict, description="rows per table on the newest day")
    as_of: date | None = Field(None, description="the newest published trading day (= newest_day)")
    lake_book_day: date | None = Field(
        None, description="the newest day of the lake's book (null: the lake is not readable from the API)"
    )
    behind_sessions: int | None = Field(
        None,
        description="trading sessions of the lake's book not published yet (0: up to date; null: unknown)",
    )
    message: str | None = None


# ---------------------------------------------------------------------------------------------------- app
_FROM_ENV = object()


def create_app(
    url: str | None = None,
    token: str | None = None,
    dashboard: bool = False,
    keys=None,
    access_log: str | None = None,
    lake=_FROM_ENV,
):
    """The API app over the serving store at ``url`` (default ``store.serving_url()``); ``dashboard=True`` also
    mounts the dashboard pages at ``/``.

    ``keys``: a ``security.KeyRing`` (default: from ALPHA_API_KEYS, ALPHA_API_KEYS_FILE and ``token``, which
    defaults to ALPHA_API_TOKEN; "" for none). ``access_log``: a file, ``-`` for stderr, "" for none (default
    ALPHA_ACCESS_LOG, else none). ``lake``: the lake whose book the store is compared with (``freshness.py``;
    default the environment's, None for none).

    Every JSON response names what it is built from: ``as_of`` (the published trading day) and ``published_at``
    (UTC, Z), as fields of the object and as the headers X-Alpha-As-Of / X-Alpha-Published-At; when the lake is
    readable, X-Alpha-Behind-Sessions and X-Alpha-Lake-Book-Day say how far the store is behind the lake's book."""
    from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from alpha_assets.serving.freshness import PublicationLag, stamp_headers
    from alpha_assets.serving.security import KeyRing
    from alpha_assets.serving.store import gzip_body, render_portfolio, serving_url

    if url is None:
        url = serving_url()
    if keys is None:
        keys = KeyRing.from_env(token=token)
    if access_log is None:
        access_log = os.environ.get("ALPHA_ACCESS_LOG", "")
    reader = ServingReader(url)

    async def only_known_parameters(request: Request) -> None:  # every route's first dependency
        route = request.scope.get("route")
        if route is not None and request.scope.get("query_string"):
            message = _unknown_parameter(route, request.query_params)
            if message:
                raise HTTPException(422, message)

    app = FastAPI(
        title="alpha-assets serving API",
        version="1",
        description="Read-only: the fund's book, performance, risk, model and pipeline KPIs.",
        docs_url=None,  # FastAPI's /docs and /redoc load their scripts from a CDN: /docs is served below
        redoc_url=None,
        dependencies=[Depends(only_known_parameters)],
    )
    app.state.reader = reader
    app.state.keys = keys
    lag = app.state.lag = PublicationLag(reader) if lake is _FROM_ENV else PublicationLag(reader, lake)
    install_middleware(app, keys, access_log)

    @app.exception_handler(RequestValidationError)
    async def _bad_input(request: Request, exc: RequestValidationError):
        # One readable line naming the parameter, plus pydantic's detail for programs.
        parts = []
        for err in exc.errors():
            name = err["loc"][-1] if err.get("loc") else "?"
            got = err.get("input")
            hint = " (YYYY-MM-DD)" if "date" in err.get("type", "") else ""
            parts.append(f"{name}={got!r}: {err.get('msg', 'invalid')}{hint}")
        return JSONResponse(
            status_code=422, content={"detail": "; ".join(parts), "errors": _plain(exc.errors())}
        )

    @app.exception_handler(EmptyStore)
    async def _empty(request: Request, exc: EmptyStore):
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(NoBook)
    async def _no_book(request: Request, exc: NoBook):
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(OutOfRange)
    async def _out_of_range(request: Request, exc: OutOfRange):
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    def day_query(
        day: date | None = Query(
            None, alias="date", description="a published trading day, YYYY-MM-DD (default: the newest)"
        ),
    ) -> date | None:
        return _in_bounds("date", day)

    @app.get("/api/health", response_model=Health, tags=["status"])
    def health() -> Health:
        try:
            h = reader.health()
            h["published_at"] = _iso_timestamp(h["published_at"])
            state = lag.get()
            return Health(
                status="ok",
                store=reader.kind,
                as_of=h["newest_day"],
                lake_book_day=state["lake_book_day"],
                behind_sessions=state["behind_sessions"],
                **h,
            )
        except EmptyStore as e:
            return Health(status="empty", store=reader.kind, message=str(e))

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()))

    api = APIRouter(prefix="/api")
    cache = app.state.cache = ResponseCache()

    async def blocking(fn: Callable, *args):
        """``fn(*args)`` inline when it is a read of the SQLite store's shared connection (tens of microseconds,
        a stored book ~0.2 ms: cheaper than the hop to a worker thread and back, and no second thread of this
        process competes for the GIL while the loop writes a body); on a worker thread when it is a
        PostgreSQL round trip."""
        if reader.kind == "sqlite":
            return fn(*args)
        return await run_in_threadpool(fn, *args)

    async def respond(request: Request, params: tuple, build: Callable[[], dict | bytes]) -> Response:
        """The endpoint's JSON, from the cache while nothing new is published (the store only changes when a
        day is published; the stamp is one indexed query). A miss is built on a worker thread. The payload is
        written with orjson and returned as bytes, so FastAPI does not re-validate thousands of rows (tests
        check every payload against its response model); its floats to 12 significant digits. Bodies over
        GZIP_MIN_BYTES go gzip-compressed to clients that accept it (compressed once, when cached).

        The cache key is the endpoint and its validated ``params``, never the raw query string (another
        spelling of the same date shares one entry; unknown parameters are refused before this)."""
        key = (request.url.path, params, await blocking(reader.stamp))
        entry = cache.get(key)
        if entry is None:

            def build_entry():
                built = build()
                stamp = {}
                if isinstance(built, dict):  # the day it is built from, first in the object
                    as_of = _as_of(built)
                    pub = reader.publication(as_of) if as_of is not None else None
                    stamp = {
                        "as_of": as_of,
                        "published_at": _iso_timestamp(pub["published_at"]) if pub else None,
                    }
                    built = {**stamp, **built}
                body = built if isinstance(built, bytes) else _dumps(_tidy(built))
                headers = stamp_headers(stamp.get("as_of"), stamp.get("published_at"))
                return (body, gzip_body(body, level=1) if len(body) >= GZIP_MIN_BYTES else None, headers)

            entry = await run_in_threadpool(build_entry)
            cache.put(key, entry)
        body, gz, headers = entry
        return _encoded(request, body, gz, {**headers, **await lag_headers()})

    async def lag_headers() -> dict[str, str]:
        """How far the store is behind the lake (fresh for ``lag.ttl`` seconds: the lake is read off the loop)."""
        state = lag.cached()
        if state is None:
            state = await run_in_threadpool(lag.get)
        return stamp_headers(None, None, state)

    def _encoded(request: Request, body: bytes, gz: bytes | None, headers: dict[str, str]) -> Response:
        if gz is None:
            return Response(body, media_type="application/json", headers=headers)
        if _accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(
                gz,
                media_type="application/json",
                headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
            )
        return Response(body, media_type="application/json", headers={**headers, "Vary": "Accept-Encoding"})

    @api.get("/portfolio", response_model=Portfolio, tags=["book"])
    async def portfolio(request: Request, day: date | None = Depends(day_query)):
        # The body the publisher rendered with the day's rows: one blob read, of the one encoding the client
        # gets. Days published before the payloads table existed are built from the rows
        # by the same renderer.
        gz_ok = _accepts_gzip(request.headers.get("accept-encoding", ""))
        key = (request.url.path, (day,), await blocking(reader.stamp), gz_ok)
        entry = cache.get(key)
        if entry is None:
            stored = await blocking(reader.payload, day, "portfolio", gz_ok)
            if stored is None:
                trade_date, rows = await run_in_threadpool(reader.positions, day, False)

                def from_rows() -> bytes:
                    pub = reader.publication(trade_date)
                    return render_portfolio(
                        trade_date, rows, _iso_timestamp(pub["published_at"]) if pub else None
                    )

                response = await respond(request, (day,), from_rows)
                pub = await run_in_threadpool(reader.publication, trade_date)
                response.headers.update(
                    stamp_headers(
                        trade_date, _iso_timestamp(pub["published_at"]) if pub else None, lag.cached()
                    )
                )
                return response
            trade_date, blob, is_gzip, published_at = stored
            headers = stamp_headers(trade_date, _iso_timestamp(published_at))
            entry = (None, blob, headers) if is_gzip else (blob, None, headers)
            if day is None:
                # Only the newest book (the default, what dashboards poll) is kept: other days are read from
                # the store each time (a blob read), since keeping every 1.7 MB book a client walks through
                # only churns memory (measured: a day never asked before p95 ~111-116 ms cached, ~90-95 not).
                cache.put(key, entry)
        body, gz, headers = entry
        headers = {**headers, **await lag_headers()}
        if gz is not None:
            return Response(
                gz,
                media_type="application/json",
                headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
            )
        return Response(body, media_type="application/json", headers={**headers, "Vary": "Accept-Encoding"})

    @api.get("/exposures", response_model=Exposures, tags=["book"])
    async def exposures(request: Request, day: date | None = Depends(day_query)):
        def build() -> dict:
            trade_date, rows = reader.exposures(day)
            return {"trade_date": trade_date, "exposures": rows}

        return await respond(request, (day,), build)

    @api.get("/performance", response_model=Performance, tags=["fund"])
    async def performance(
        request: Request,
        from_: date | None = Query(
            None, alias="from", description="first day, YYYY-MM-DD (default: a year before `to`)"
        ),
        to: date | None = Query(None, description="last day, YYYY-MM-DD (default: the newest published day)"),
    ):
        from_, to = _in_bounds("from", from_), _in_bounds("to", to)
        if from_ and to and from_ > to:
            raise HTTPException(422, f"from={from_} is after to={to}: give from <= to")

        def build() -> dict:
            first, newest = reader.bounds()
            if to is not None and not first <= to <= newest:
                raise HTTPException(
                    422, f"to={to}: out of range: published days run from {first} to {newest}"
                )
            start, end, rows = reader.performance(from_, to)
            if start > end:
                raise HTTPException(
                    422, f"from={start} is after the newest published day {end}: give from <= to"
                )
            return {"from": start, "to": end, "days": rows}

        return await respond(request, (from_, to), build)

    @api.get("/risk", response_model=Risk, tags=["risk"])
    async def risk(request: Request, day: date | None = Depends(day_query)):
        def build() -> dict:
            trade_date, row, history = reader.risk(day)
            row["breaches"] = [b.strip() for b in (row.get("breaches") or "").split(",") if b.strip()]
            return {"trade_date": trade_date, "summary": row, "history": history}

        return await respond(request, (day,), build)

    @api.get("/models", response_model=Models, tags=["models"])
    async def models(request: Request):
        def build() -> dict:
            day, today, history = reader.models()
            for r in history:  # SQLite has no boolean type: 0/1
                r["champion"] = bool(r["champion"])
            return {"trade_date": day, "models": today, "ic_history": history}

        return await respond(request, (), build)

    @api.get(
        "/pipeline",
        response_model=Pipeline,
        tags=["pipeline"],
        description="Operator role: the pipeline's run status per asset, and a page of its year of history.",
    )
    async def pipeline(
        request: Request,
        limit: int = Query(PIPELINE_PAGE, ge=1, le=PIPELINE_MAX_PAGE, description="history rows per page"),
        offset: int = Query(0, ge=0, description="history rows to skip (the previous page's next_offset)"),
    ):
        def build() -> dict:
            day, today, total, history = reader.pipeline_page(limit, offset)
            if offset and offset >= total:
                raise HTTPException(422, f"offset={offset}: out of range: the history has {total} rows")
            for r in (*today, *history):
                r["materialized_at"] = _iso_timestamp(r["materialized_at"])
            return {
                "trade_date": day,
                "assets": today,
                "total_failovers": sum(r["failovers"] or 0 for r in today),
                "total_quarantined_files": sum(r["quarantined_files"] or 0 for r in today),
                "history": history,
                "total": total,
                "limit": limit,
                "offset": offset,
                "next_offset": offset + limit if offset + limit < total else None,
            }

        return await respond(request, (limit, offset), build)

    app.include_router(api)
    if dashboard:
        from alpha_assets.serving.dashboard import mount_dashboard

        mount_dashboard(app, reader)
    # observability: request latency per route and GET /metrics (Prometheus); see serving/metrics.py
    from alpha_assets.serving.metrics import install_metrics

    install_metrics(app, reader)
    return app


def install_middleware(app, keys, access_log: str) -> None:
    """The one place middleware is added to the app. Starlette runs the last added outermost, so a request
    goes: access log -> authentication -> HEAD as GET -> the routes. A new middleware (e.g. metrics) is added
    here: after ``Authenticate`` to see only authenticated requests, after ``AccessLog`` to see them all."""
    from alpha_assets.serving.security import AccessLog, Authenticate, HeadAsGet

    app.add_middleware(HeadAsGet)
    app.add_middleware(Authenticate, keys=keys)
    if access_log:
        app.add_middleware(AccessLog, sink=access_log)


_KNOWN_PARAMETERS: dict[int, frozenset[str]] = {}


def _query_names(dependant) -> frozenset[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def _unknown_parameter(route, query_params) -> str | None:
    """The 422 message for the first query parameter ``route`` does not take (a typo such as ``?form=`` used to be
    ignored silently, and answered with the default range), or None."""
    known = _KNOWN_PARAMETERS.get(id(route))
    if known is None:
        known = _KNOWN_PARAMETERS[id(route)] = _query_names(route.dependant)
    unknown = [k for k in dict.fromkeys(query_params.keys()) if k not in known]
    if not unknown:
        return None
    takes = ", ".join(sorted(known)) if known else "no parameters"
    return f"{unknown[0]}: unknown query parameter; {route.path} takes {takes}"


def _docs_page(spec: dict) -> str:
    """``/docs``: every route of the OpenAPI schema with its parameters and response model, as one self-contained
    HTML page (FastAPI's Swagger UI loads its scripts from a CDN, which a fund's network may not reach)."""
    from html import escape

    rows = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = "".join(
                f"<li><code>{escape(p['name'])}</code> ({escape(p.get('in', ''))}"
                f"{', required' if p.get('required') else ''}): {escape(p.get('description') or '')}</li>"
                for p in op.get("parameters", [])
            )
            ok = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
            model = ok.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            rows.append(
                f'<section id="{escape(method)}-{escape(path)}"><h2><span class=m>{method.upper()}</span> '
                f"<code>{escape(path)}</code></h2><p>{escape(op.get('summary', ''))}"
                f"{' — ' + escape(op['description']) if op.get('description') else ''}</p>"
                + (f"<ul>{params}</ul>" if params else "")
                + (f"<p>returns <code>{escape(model)}</code></p>" if model else "")
                + "</section>"
            )
    info = spec.get("info", {})
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<title>{escape(info.get("title", "API"))} · docs</title><link rel=icon href="data:,"><style>'
        "body{font-family:system-ui,sans-serif;margin:24px 48px;color:#222;max-width:1000px}"
        "section{border-top:1px solid #ddd;padding:4px 0} .m{background:#14213d;color:#fca311;padding:2px 6px;"
        "border-radius:4px;font-size:14px} h2{font-size:18px}</style></head><body>"
        f"<h1>{escape(info.get('title', 'API'))} {escape(str(info.get('version', '')))}</h1>"
        f'<p>{escape(info.get("description", ""))}</p><p>The schema: <a href="/openapi.json">/openapi.json</a>. '
        "Send the API key as <code>Authorization: Bearer &lt;key&gt;</code>; every GET route answers HEAD; dates "
        "are YYYY-MM-DD, timestamps UTC (ISO 8601, Z).</p><p>Every response names what it is built from: "
        "<code>as_of</code> (the published trading day) and <code>published_at</code>, as fields and as the "
        "headers <code>X-Alpha-As-Of</code> / <code>X-Alpha-Published-At</code>; when the lake is readable, "
        "<code>X-Alpha-Behind-Sessions</code> counts the sessions of the lake's book not published yet "
        "(also in <code>/api/health</code>).</p>" + "".join(rows) + "</body></html>"
    )


class ResponseCache:
    """Response bodies by (path, validated parameters, publication stamp), least recently used out past
    ``max_bytes`` of bodies or ``max_entries`` entries (each entry also costs its key and Python's bookkeeping). A
    new publication changes the stamp, so stale bodies are never served (they age out)."""

    def __init__(self, max_bytes: int = 256 * 2**20, max_entries: int = 1024):
        self.max_bytes, self.max_entries, self.size = max_bytes, max_entries, 0
        self._bodies: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, key: tuple) -> tuple | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: tuple, entry: tuple) -> None:
        """``entry``: the body and its gzip form (either None: not kept, e.g. a stored book kept only in the
        encoding its clients asked for), then the response's headers (not counted in the size)."""
        size = sum(len(b) for b in entry if isinstance(b, bytes))
        with self._lock:
            if key in self._bodies or size > self.max_bytes:
                return
            self._bodies[key] = entry
            self.size += size
            while self.size > self.max_bytes or len(self._bodies) > self.max_entries:
                _, old = self._bodies.popitem(last=False)
                self.size -= sum(len(b) for b in old if isinstance(b, bytes))


def _as_of(payload: dict) -> date | None:
    """The newest published day a response is built from: its ``trade_date``, else its newest row's (a range)."""
    if payload.get("trade_date") is not None:
        return _as_date(payload["trade_date"])
    days = [r["trade_date"] for r in payload.get("days") or [] if r.get("trade_date") is not None]
    if days:
        return max(_as_date(d) for d in days)
    return _as_date(payload["to"]) if payload.get("to") is not None else None


def _in_bounds(name: str, day: date | None) -> date | None:
    """``day`` when it is None or within the dates the API serves; else a 422 naming the parameter."""
    if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
        from fastapi import HTTPException

        raise HTTPException(
            422,
            f"{name}={day.isoformat()}: out of range; give a day between {EARLIEST_DAY} "
            f"and {LATEST_DAY} (YYYY-MM-DD)",
        )
    return day


def _dumps(payload: dict) -> bytes:
    if orjson is not None:
        return orjson.dumps(payload, default=_plain_value)
    return json.dumps(payload, default=_plain_value, separators=(",", ":")).encode()


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip`` or ``*``, unless given q=0)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() not in ("gzip", "*"):
            continue
        q = params.strip().removeprefix("q=")
        try:
            return not params.strip() or float(q) > 0
        except ValueError:
            return False
    return False


def _plain_value(v):
    if isinstance(v, date | datetime):
        return v.isoformat()
    raise TypeError(f"cannot serialise {type(v).__name__}")


def _iso_timestamp(v) -> str | None:
    """A stored timestamp (naive, UTC by the store's convention; SQLite returns 'YYYY-MM-DD HH:MM:SS.ffffff',
    PostgreSQL a datetime) as ISO 8601 in UTC with a Z: every timestamp the API sends carries its zone."""
    from alpha_assets.serving.store import iso_utc

    return iso_utc(v)


def _tidy(obj):
    """``obj`` with every float to 12 significant digits (``store.tidy_float``): no 1.0000000000000002."""
    from alpha_assets.serving.store import tidy_float

    def tidy(o):
        if isinstance(o, float):
            return tidy_float(o)
        if isinstance(o, dict):
            return {k: tidy(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [tidy(v) for v in o]
        return o

    return tidy(obj)


def _plain(errors: list[dict]) -> list[dict]:
    """pydantic's error dicts may hold exceptions (ctx): keep what JSON can carry."""
    return [
        {k: (v if isinstance(v, str | int | float | list | tuple | None) else str(v)) for k, v in e.items()}
        for e in errors
    ]


def api_app_from_env():
    """The API over ``store.serving_url()`` with the keys and the access log of the environment: what each uvicorn
    worker process builds."""
    return _frozen(create_app())


def dashboard_app_from_env():
    """The dashboard and the API, as ``api_app_from_env`` (``alpha dashboard --workers N``)."""
    return _frozen(create_app(dashboard=True))


def _frozen(app):
    """``app``, with everything the server process holds so far moved out of the cyclic garbage collector's
    reach (``gc.freeze``): the ~90,000 objects of fastapi, pydantic and sqlalchemy are never freed anyway, and
    each full collection walked them all, stalling every request in flight by ~26 ms on this machine."""
    import gc

    gc.collect()
    gc.freeze()
    return app


def serve(
    app,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    workers: int = 1,
    dashboard: bool = False,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Run ``app`` in uvicorn, over HTTPS when ``ssl_certfile`` and ``ssl_keyfile`` (PEM) are given. ``workers > 1``:
    that many processes share the socket, each building its own app from the environment (the caller sets
    ALPHA_SERVING_URL, the keys and ALPHA_ACCESS_LOG), so requests are not serialised by one process's GIL; each
    worker keeps its own response cache."""
    import uvicorn

    tls = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile} if ssl_certfile else {}
    if workers <= 1:
        uvicorn.run(_frozen(app), host=host, port=port, log_level=log_level, **tls)
        return
    factory = "dashboard_app_from_env" if dashboard else "api_app_from_env"
    uvicorn.run(
        f"alpha_assets.serving.api:{factory}",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
        **tls,
    )
