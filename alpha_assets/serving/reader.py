"""The serving store's read layer: ``ServingReader`` (SQLite opened read-only with ``mode=ro``, PostgreSQL in
read-only transactions; every query fetches only the day or the range asked for, on the ``trade_date`` indexes the
store creates) and the errors it raises. The REST API (``api.py``), the dashboard (``dashboard.py``), the metrics and
the alert sensors all read through it; it lives apart from the HTTP app so that none of them imports another's web
layer (the dashboard used to import it from ``api``, which imports the dashboard: a cycle hidden by a local import).

Not imported by the Dagster code location at start-up: sqlalchemy loads when a reader is built.
"""

import json
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

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
                raise OutOfRange(
                    f"date={day.isoformat()}: out of range: published days run from {first} to {newest}"
                )
            raise NoBook(
                f"date={day.isoformat()}: nothing published for that day "
                f"(published days run from {first} to {newest}; weekends and holidays have no book)"
            )
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
        return {
            "newest_day": newest,
            "published_at": pub.get("published_at"),
            "days_published": int(n),
            "tables": _json_loads(counts) if counts else {},
        }

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
        cols = (
            "trade_date, asset, run_seconds, rows_written, materialized_at, freshness_hours, failovers, "
            "quarantined_files"
        )
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
