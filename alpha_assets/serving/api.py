"""The fund's read-only REST API over the serving store (`store.serving_url()`): the day's book, the fund's daily
line, risk, model and pipeline KPIs, as typed JSON with OpenAPI docs at ``/docs``.

``ServingReader`` is the one read layer (the dashboard uses it too): SQLite opened read-only (``mode=ro``),
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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

try:  # orjson (installed with dagster) writes the big responses and embeds top_features' JSON text unparsed
    import orjson

    _json_loads = orjson.loads
except ImportError:  # pragma: no cover - the default json module, parsing top_features
    orjson = None
    _json_loads = json.loads

NOTHING_PUBLISHED = "nothing published yet: run `make demo` to fill the serving store"
HISTORY_DAYS = 365  # calendar days of history the list endpoints return by default (a year of sessions)
# Smaller bodies go uncompressed: below this gzip saves less on loopback/LAN than it costs both ends.
GZIP_MIN_BYTES = 64 * 1024
SQLITE_MMAP_BYTES = 4 * 2**30  # how much of a SQLite store the read connections map (virtual address space)
# The dates a parameter may name: a fund's history, with room for the year of history computed before a day
# (``to=0001-01-01`` used to overflow that computation: a 500).
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)
PIPELINE_PAGE, PIPELINE_MAX_PAGE = 500, 5000  # /api/pipeline's history rows per page: default and most


class EmptyStore(Exception):
    """The serving store has no published day yet (no file, no tables, or no publications row)."""


class NoBook(Exception):
    """A valid date for which nothing was published."""


class OutOfRange(NoBook):
    """A date before the first or after the newest published day (the API: 422; the dashboard: as NoBook)."""


# --------------------------------------------------------------------------------------------- read layer
class ServingReader:
    """Read-only access to the serving store. Thread-safe (one SQLAlchemy engine with a connection pool)."""

    def __init__(self, url: str):
        self.url = url
        self.kind = "postgresql" if url.startswith("postgresql") else "sqlite"
        self._engine = None
        self._lock = threading.Lock()
        self._blob_con = None  # SQLite: one read-only connection for the stored payloads, shared under a lock
        self._blob_lock = threading.Lock()
        where = self.sqlite_path if self.kind == "sqlite" else self.url.rsplit("@", 1)[-1]  # no password
        self.nothing_published = f"{NOTHING_PUBLISHED} (serving store: {where})"

    @property
    def sqlite_path(self) -> Path | None:
        if self.kind != "sqlite":
            return None
        return Path(self.url.split("///", 1)[1].split("?", 1)[0])

    def _engine_or_empty(self):
        import sqlite3

        import sqlalchemy as sa

        if self._engine is not None:
            return self._engine
        with self._lock:
            if self._engine is None:
                if self.kind == "sqlite":
                    path = self.sqlite_path
                    if not path.exists():  # not created yet: empty, and try again next request
                        raise EmptyStore(self.nothing_published)
                    # mode=ro: this process can never write, whatever the query; WAL lets it read while the
                    # publisher writes. Enough pooled connections for the server's worker threads. The file is
                    # opened by its percent-encoded URI (a home with a space, '#' or '?' in its path).
                    self._engine = sa.create_engine(
                        "sqlite://",
                        creator=lambda: sqlite3.connect(_sqlite_uri(path), uri=True, check_same_thread=False),
                        poolclass=sa.pool.QueuePool,
                        pool_size=20,
                        max_overflow=20,
                    )

                    @sa.event.listens_for(self._engine, "connect")
                    def _map_file(dbapi_con, _record):
                        # Memory-mapped reads: a stored book (megabytes of blob) is copied out of the OS page
                        # cache instead of read page by page through SQLite's own cache (about half the cost
                        # of a cold book). Address space only; the pages are the kernel's shared page cache.
                        dbapi_con.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
                else:
                    # Every statement its own read-only transaction (AUTOCOMMIT: no BEGIN, and no ROLLBACK round
                    # trip when a connection goes back to the pool). 20 kept connections: under 20 concurrent
                    # clients a pool of 10 opened and closed its overflow connections on every request, and each
                    # connect forks a PostgreSQL backend (measured: the cold book p95 377 ms with, 1xx without).
                    self._engine = sa.create_engine(
                        self.url,
                        pool_size=20,
                        max_overflow=20,
                        pool_pre_ping=True,
                        isolation_level="AUTOCOMMIT",
                        connect_args={"options": "-c default_transaction_read_only=on"},
                    )
        return self._engine

    def query(self, sql: str, **params) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        engine = self._engine_or_empty()
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(sql), params)
                keys = list(result.keys())
                return [dict(zip(keys, row, strict=True)) for row in result.fetchall()]
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as e:  # PostgreSQL: ProgrammingError
            if _missing_table(e):
                raise EmptyStore(self.nothing_published) from None
            raise

    # -- days
    def stamp(self) -> tuple:
        """Changes whenever a day is published or republished: the API's response cache key."""
        sql = "SELECT max(published_at) AS p, count(*) AS n, max(trade_date) AS d FROM publications"
        if self.kind == "sqlite":  # every request asks: the raw connection, not a pool checkout
            import sqlite3

            try:
                p, n, d = self._sqlite_read(lambda con: con.execute(sql).fetchone())
            except sqlite3.OperationalError as e:
                if _missing_table(e):
                    raise EmptyStore(self.nothing_published) from None
                raise
            return (str(p), int(n), str(d))
        row = self.query(sql)[0]
        return (str(row["p"]), int(row["n"]), str(row["d"]))

    def newest_day(self) -> date:
        rows = self.query("SELECT max(trade_date) AS d FROM publications")
        if not rows or rows[0]["d"] is None:
            raise EmptyStore(self.nothing_published)
        return _as_date(rows[0]["d"])

    def bounds(self) -> tuple[date, date]:
        """The first and the newest published day."""
        rows = self.query("SELECT min(trade_date) AS a, max(trade_date) AS b FROM publications")
        if not rows or rows[0]["b"] is None:
            raise EmptyStore(self.nothing_published)
        return _as_date(rows[0]["a"]), _as_date(rows[0]["b"])

    def published_days(self) -> list[date]:
        return [
            _as_date(r["trade_date"]) for r in self.query("SELECT trade_date FROM publications ORDER BY 1")
        ]

    def publication(self, day: date) -> dict | None:
        rows = self.query("SELECT * FROM publications WHERE trade_date = :d", d=day.isoformat())
        return rows[0] if rows else None

    def _require_day(self, day: date | None) -> date:
        if day is None:
            return self.newest_day()
        if self.publication(day) is None:
            first, newest = self.bounds()  # raises EmptyStore first when nothing at all is published
            if not first <= day <= newest:
                raise OutOfRange(f"date={day.isoformat()}: out of range: published days run from {first} to "
                                 f"{newest}")  # fmt: skip
            raise NoBook(f"date={day.isoformat()}: nothing published for that day "
                         f"(published days run from {first} to {newest}; weekends and holidays have no book)")  # fmt: skip
        return day

    def _range(self, start: date | None, end: date | None) -> tuple[date, date]:
        end = end or self.newest_day()
        start = start or end - timedelta(days=HISTORY_DAYS)
        return start, end

    # -- tables
    def health(self) -> dict:
        newest = self.newest_day()
        pub = self.publication(newest) or {}
        counts = pub.get("row_counts")
        n = self.query("SELECT count(*) AS n FROM publications")[0]["n"]
        return {"newest_day": newest, "published_at": pub.get("published_at"), "days_published": int(n),
                "tables": _json_loads(counts) if counts else {}}  # fmt: skip

    def positions(self, day: date | None, parse_features: bool = True) -> tuple[date, list[dict]]:
        """The day's book, largest long first. ``parse_features=False`` leaves top_features as its JSON text."""
        day = self._require_day(day)
        rows = self.query(
            "SELECT ticker, side, weight, sector, country, alpha_score, top_features FROM book_positions "
            "WHERE trade_date = :d ORDER BY weight DESC",
            d=day.isoformat(),
        )
        if parse_features:
            for r in rows:
                r["top_features"] = _json_loads(r["top_features"]) if r["top_features"] else []
        return day, rows

    def payload(
        self, day: date | None, name: str, gzip: bool = False
    ) -> tuple[date, bytes, bool, Any] | None:
        """The response the publisher rendered for ``day`` (default the newest): the day, its gzip form when
        ``gzip`` and the store has one (else the plain body), whether it is the gzip form, and the day's
        ``published_at`` (as stored). None when that day has none
        (published before payloads existed, or a store without the ``payloads`` table).

        Only the one blob the client will get is read (a cold book is mostly the blob's read)."""
        import sqlalchemy as sa

        if self.kind == "sqlite":
            return self._sqlite_payload(day, name, gzip)
        engine = self._engine_or_empty()
        import psycopg2.extensions

        # PostgreSQL sends bytea as hex text (3.4 MB for a 1.7 MB book, then decoded): the plain body is asked for
        # as text (convert_from: the stored JSON is UTF-8) and taken as bytes as it arrives (psycopg2's BYTES
        # caster, on this one cursor): a book's read 3.5 ms instead of 15 ms. The gzip body is binary: bytea.
        column = (
            "coalesce(body_gzip, body), body_gzip IS NOT NULL"
            if gzip
            else "convert_from(body, 'UTF8'), false"
        )
        try:
            with engine.connect() as conn:
                if day is None:
                    day = conn.execute(sa.text("SELECT max(trade_date) FROM publications")).scalar()
                    if day is None:
                        return None
                    day = _as_date(day)
                cur = conn.connection.dbapi_connection.cursor()
                try:
                    psycopg2.extensions.register_type(psycopg2.extensions.BYTES, cur)
                    cur.execute(
                        f"SELECT {column}, (SELECT published_at FROM publications WHERE trade_date = %(d)s) "
                        "FROM payloads WHERE trade_date = %(d)s AND name = %(n)s",
                        {"d": day.isoformat(), "n": name},
                    )
                    row = cur.fetchone()
                finally:
                    cur.close()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, psycopg2.Error) as e:
            if _missing_table(e):  # an older store, or nothing published: the row path says which
                return None
            raise
        if row is None:
            return None
        return day, bytes(row[0]), bool(row[1]), row[2]

    def _sqlite_read(self, read: Callable[[Any], Any]) -> Any:
        """``read(con)`` on this process's one raw read-only sqlite3 connection, under its lock, inside one read
        transaction (so what it reads is one published state). One connection serves every thread, so the file
        is memory-mapped once per process rather than once per thread; a read here is tens of microseconds
        (a stored book's blob ~0.2 ms), against ~0.3 ms for a pool checkout and a SQLAlchemy query. A store
        that does not exist yet raises EmptyStore."""
        import sqlite3

        with self._blob_lock:
            if self._blob_con is None:
                if not self.sqlite_path.exists():  # not created yet: empty, and try again next request
                    raise EmptyStore(self.nothing_published)
                self._blob_con = sqlite3.connect(
                    _sqlite_uri(self.sqlite_path),
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._blob_con.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            con = self._blob_con
            con.execute("BEGIN")
            try:
                return read(con)
            finally:
                con.execute("COMMIT")

    def _sqlite_payload(self, day: date | None, name: str, gzip: bool) -> tuple[date, bytes, bool] | None:
        """``payload`` on SQLite through the incremental-blob API: sqlite3_blob_read copies the stored bytes
        straight into the response's buffer (about 0.2 ms for a 1.7 MB book, against ~1.1 ms through a SELECT
        of the column, which assembles the overflow pages in a buffer of its own first). The row lookup and the
        blob read share one read transaction, so a day republished meanwhile is read whole, old or new."""
        import sqlite3

        def read(con):
            if day is None:
                newest = con.execute("SELECT max(trade_date) FROM publications").fetchone()[0]
                if newest is None:
                    return None
                the_day = _as_date(newest)
            else:
                the_day = day
            row = con.execute(
                "SELECT rowid, body_gzip IS NOT NULL, (SELECT published_at FROM publications WHERE trade_date = ?) "
                "FROM payloads WHERE trade_date = ? AND name = ?",
                (the_day.isoformat(), the_day.isoformat(), name),
            ).fetchone()
            if row is None:
                return None
            use_gzip = gzip and bool(row[1])
            with con.blobopen("payloads", "body_gzip" if use_gzip else "body", row[0], readonly=True) as b:
                return the_day, b.read(), use_gzip, row[2]

        try:
            return self._sqlite_read(read)
        except sqlite3.OperationalError as e:
            if _missing_table(e):  # an older store, or nothing published: the row path says which
                return None
            raise

    def exposures(self, day: date | None) -> tuple[date, list[dict]]:
        day = self._require_day(day)
        return day, self.query(
            "SELECT dimension, bucket, long, short, gross, net FROM exposures WHERE trade_date = :d "
            "ORDER BY dimension, gross DESC",
            d=day.isoformat(),
        )

    def performance(self, start: date | None, end: date | None) -> tuple[date, date, list[dict]]:
        start, end = self._range(start, end)
        rows = self.query(
            "SELECT trade_date, nav, gross_pnl, costs, net_pnl, gross_return, net_return, drawdown, turnover, "
            "gross_exposure, net_exposure FROM fund_performance WHERE trade_date BETWEEN :a AND :b "
            "ORDER BY trade_date",
            a=start.isoformat(),
            b=end.isoformat(),
        )
        return start, end, rows

    def risk(self, day: date | None) -> tuple[date, dict, list[dict]]:
        day = self._require_day(day)
        rows = self.query(
            "SELECT var_1d, es_1d, var_5d, var_limit, var_limit_usage, gross_exposure, gross_limit, "
            "gross_limit_usage, drawdown, drawdown_state, breaches FROM risk_summary WHERE trade_date = :d",
            d=day.isoformat(),
        )
        if not rows:
            raise NoBook(f"date={day.isoformat()}: no risk summary published for that day")
        history = self.query(
            "SELECT trade_date, var_1d, es_1d, var_5d, var_limit, var_limit_usage, gross_limit_usage, drawdown "
            "FROM risk_summary WHERE trade_date BETWEEN :a AND :b ORDER BY trade_date",
            a=(day - timedelta(days=HISTORY_DAYS)).isoformat(),
            b=day.isoformat(),
        )
        # The risk model needs history: on the first days (before any VaR was computed) the store holds 0.0,
        # which reads as "no risk". Those days' VaR, ES and VaR usage are null (not computed), not zero.
        first = self.query("SELECT min(trade_date) AS d FROM risk_summary WHERE var_1d > 0")[0]["d"]
        first = _as_date(first) if first is not None else None
        for r, d in [(rows[0], day)] + [(h, _as_date(h["trade_date"])) for h in history]:
            if not r["var_1d"] and (first is None or d < first):
                r.update(var_1d=None, es_1d=None, var_5d=None, var_limit_usage=None)
        return day, rows[0], history

    def models(self) -> tuple[date, list[dict], list[dict]]:
        day = self.newest_day()
        cols = "trade_date, model, recipe, champion, ic_1, ic_20, ensemble_weight, status, drifted_features"
        history = self.query(
            f"SELECT {cols} FROM model_kpis WHERE trade_date BETWEEN :a AND :b ORDER BY trade_date, model, recipe",
            a=(day - timedelta(days=HISTORY_DAYS)).isoformat(),
            b=day.isoformat(),
        )
        today = [r for r in history if _as_date(r["trade_date"]) == day]
        return day, today, history

    def pipeline(self) -> tuple[date, list[dict], list[dict]]:
        day = self.newest_day()
        history = self.query(
            "SELECT trade_date, asset, run_seconds, rows_written, materialized_at, freshness_hours, failovers, "
            "quarantined_files FROM pipeline_kpis WHERE trade_date BETWEEN :a AND :b ORDER BY trade_date, asset",
            a=(day - timedelta(days=HISTORY_DAYS)).isoformat(),
            b=day.isoformat(),
        )
        today = [r for r in history if _as_date(r["trade_date"]) == day]
        return day, today, history

    def pipeline_page(self, limit: int, offset: int) -> tuple[date, list[dict], int, list[dict]]:
        """The newest day's pipeline KPIs, and one page of the year's history, newest day first:
        (day, today, rows in the year, the page)."""
        day = self.newest_day()
        cols = ("trade_date, asset, run_seconds, rows_written, materialized_at, freshness_hours, failovers, "
                "quarantined_files")  # fmt: skip
        window = {"a": (day - timedelta(days=HISTORY_DAYS)).isoformat(), "b": day.isoformat()}
        today = self.query(
            f"SELECT {cols} FROM pipeline_kpis WHERE trade_date = :d ORDER BY asset", d=day.isoformat()
        )
        total = self.query(
            "SELECT count(*) AS n FROM pipeline_kpis WHERE trade_date BETWEEN :a AND :b", **window
        )
        page = self.query(
            f"SELECT {cols} FROM pipeline_kpis WHERE trade_date BETWEEN :a AND :b "
            "ORDER BY trade_date DESC, asset LIMIT :lim OFFSET :off",
            lim=limit,
            off=offset,
            **window,
        )
        return day, today, int(total[0]["n"]), page

    # -- plots (the dashboard's Reports page)
    def plots(self) -> list[dict]:
        """Every stored plot without its bytes (name, title, asset_key, partition_key, trade_date, written_at), by
        asset then name; [] when the store holds none (no store, or no ``plots`` table yet)."""
        try:
            return self.query(
                "SELECT name, title, asset_key, partition_key, trade_date, written_at FROM plots "
                "ORDER BY asset_key, name"
            )
        except EmptyStore:
            return []

    def plot_png(self, name: str) -> tuple[bytes, Any] | None:
        """The PNG bytes of the plot ``name`` and when they were written (as stored); None when there is none."""
        try:
            rows = self.query("SELECT png, written_at FROM plots WHERE name = :n", n=name)
        except EmptyStore:
            return None
        return (bytes(rows[0]["png"]), rows[0]["written_at"]) if rows else None


def _sqlite_uri(path: Path) -> str:
    """The read-only SQLite URI of ``path``, percent-encoded (a space, '#' or '?' in a path breaks a raw URI)."""
    from urllib.parse import quote

    return f"file:{quote(str(path))}?mode=ro"


def _missing_table(e: Exception) -> bool:
    msg = str(getattr(e, "orig", e)).lower()
    return "no such table" in msg or "does not exist" in msg


def _as_date(v) -> date:
    """SQLite returns DATE columns as ISO text, PostgreSQL as dates."""
    if isinstance(v, datetime):
        return v.date()
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


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
    lake_book_day: date | None = Field(None, description="the newest day of the lake's book (null: the lake is "
                                       "not readable from the API)")  # fmt: skip
    behind_sessions: int | None = Field(None, description="trading sessions of the lake's book not published yet "
                                        "(0: up to date; null: unknown)")  # fmt: skip
    message: str | None = None


# ---------------------------------------------------------------------------------------------------- app
_FROM_ENV = object()


def create_app(url: str | None = None, token: str | None = None, dashboard: bool = False, keys=None,
               access_log: str | None = None, lake=_FROM_ENV):  # fmt: skip
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
            return Health(status="ok", store=reader.kind, as_of=h["newest_day"], lake_book_day=state["lake_book_day"],
                          behind_sessions=state["behind_sessions"], **h)  # fmt: skip
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
            return Response(gz, media_type="application/json",
                            headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})  # fmt: skip
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
                response.headers.update(stamp_headers(trade_date, _iso_timestamp(pub["published_at"]) if pub else None,
                                                      lag.cached()))  # fmt: skip
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
            return Response(gz, media_type="application/json",
                            headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})  # fmt: skip
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
        ),  # fmt: skip
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

    @api.get("/pipeline", response_model=Pipeline, tags=["pipeline"],
             description="Operator role: the pipeline's run status per asset, and a page of its year of history.")  # fmt: skip
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
            return {"trade_date": day, "assets": today,
                    "total_failovers": sum(r["failovers"] or 0 for r in today),
                    "total_quarantined_files": sum(r["quarantined_files"] or 0 for r in today),
                    "history": history, "total": total, "limit": limit, "offset": offset,
                    "next_offset": offset + limit if offset + limit < total else None}  # fmt: skip

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
            rows.append(f'<section id="{escape(method)}-{escape(path)}"><h2><span class=m>{method.upper()}</span> '
                        f"<code>{escape(path)}</code></h2><p>{escape(op.get('summary', ''))}"
                        f"{' — ' + escape(op['description']) if op.get('description') else ''}</p>"
                        + (f"<ul>{params}</ul>" if params else "")
                        + (f"<p>returns <code>{escape(model)}</code></p>" if model else "") + "</section>")  # fmt: skip
    info = spec.get("info", {})
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{escape(info.get('title', 'API'))} · docs</title><link rel=icon href=\"data:,\"><style>"
            "body{font-family:system-ui,sans-serif;margin:24px 48px;color:#222;max-width:1000px}"
            "section{border-top:1px solid #ddd;padding:4px 0} .m{background:#14213d;color:#fca311;padding:2px 6px;"
            "border-radius:4px;font-size:14px} h2{font-size:18px}</style></head><body>"
            f"<h1>{escape(info.get('title', 'API'))} {escape(str(info.get('version', '')))}</h1>"
            f"<p>{escape(info.get('description', ''))}</p><p>The schema: <a href=\"/openapi.json\">/openapi.json</a>. "
            "Send the API key as <code>Authorization: Bearer &lt;key&gt;</code>; every GET route answers HEAD; dates "
            "are YYYY-MM-DD, timestamps UTC (ISO 8601, Z).</p><p>Every response names what it is built from: "
            "<code>as_of</code> (the published trading day) and <code>published_at</code>, as fields and as the "
            "headers <code>X-Alpha-As-Of</code> / <code>X-Alpha-Published-At</code>; when the lake is readable, "
            "<code>X-Alpha-Behind-Sessions</code> counts the sessions of the lake's book not published yet "
            "(also in <code>/api/health</code>).</p>" + "".join(rows) + "</body></html>")  # fmt: skip


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

        raise HTTPException(422, f"{name}={day.isoformat()}: out of range; give a day between {EARLIEST_DAY} "
                                 f"and {LATEST_DAY} (YYYY-MM-DD)")  # fmt: skip
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
    return [{k: (v if isinstance(v, str | int | float | list | tuple | None) else str(v)) for k, v in e.items()}
            for e in errors]  # fmt: skip


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


def serve(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning", workers: int = 1,
          dashboard: bool = False, ssl_certfile: str | None = None, ssl_keyfile: str | None = None) -> None:  # fmt: skip
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
    uvicorn.run(f"alpha_assets.serving.api:{factory}", factory=True, host=host, port=port, log_level=log_level,
                workers=workers, **tls)  # fmt: skip
