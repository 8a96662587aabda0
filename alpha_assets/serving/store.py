"""The serving store: the day's marts and book in a relational database the API and the dashboard read.

PostgreSQL when ``ALPHA_SERVING_URL`` is set (prod), else an embedded SQLite file under ``ALPHA_HOME/serving``
(WAL mode, so readers never wait for the publisher). ``publish_day`` writes one trading day of every table in one
transaction (delete the day, insert its rows, upsert its ``publications`` row): a re-run replaces the day, a
failure mid-way rolls back and the previous rows stay. Readers never write. The schema is ``SERVING_TABLES``
(the serving contract); types are portable between SQLite and PostgreSQL through SQLAlchemy Core.

Beyond the contract's tables, ``payloads`` holds read-heavy responses rendered once at publication, in the same
transaction as the rows they are made of (the serving-store pattern): today the day's book in the exact shape of
``GET /api/portfolio`` (``render_portfolio``, floats to 12 significant digits), so the API serves stored bytes instead of building a 5,000-name
JSON per request, and its gzip form (``body_gzip``, for clients that accept it: a fifth of the bytes to send). The
API falls back to building from rows when a day has no payload (stores published before).

``plots`` holds the latest picture of each of the pipeline's plots (the HRP tree, the model report's and the
backtest's charts, the SHAP plots) for the dashboard's Reports page, one row per plot name: the asset that draws a
picture stores it (``write_plot``, through ``alpha_assets.metadata.plot_metadata``) so the dashboard, which reads
only this store, shows it without reaching the lake.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import sqlalchemy as sa

if TYPE_CHECKING:
    from alpha_assets.home import AlphaHome

SERVING_URL_ENV = "ALPHA_SERVING_URL"

# table -> [(column, SQL type)]; every table has trade_date. Required columns of the contract first.
SERVING_TABLES: dict[str, list[tuple[str, str]]] = {
    "book_positions": [
        ("trade_date", "DATE"),
        ("ticker", "TEXT"),
        ("side", "TEXT"),
        ("weight", "DOUBLE PRECISION"),
        ("sector", "TEXT"),
        ("country", "TEXT"),
        ("alpha_score", "DOUBLE PRECISION"),
        ("top_features", "TEXT"),
        ("hrp_weight", "DOUBLE PRECISION"),
        ("binding_limit", "TEXT"),
    ],
    "fund_performance": [
        ("trade_date", "DATE"),
        ("nav", "DOUBLE PRECISION"),
        ("gross_pnl", "DOUBLE PRECISION"),
        ("costs", "DOUBLE PRECISION"),
        ("net_pnl", "DOUBLE PRECISION"),
        ("gross_return", "DOUBLE PRECISION"),
        ("net_return", "DOUBLE PRECISION"),
        ("drawdown", "DOUBLE PRECISION"),
        ("turnover", "DOUBLE PRECISION"),
        ("gross_exposure", "DOUBLE PRECISION"),
        ("net_exposure", "DOUBLE PRECISION"),
    ],
    "pnl_attribution": [
        ("trade_date", "DATE"),
        ("side", "TEXT"),
        ("sector", "TEXT"),
        ("model", "TEXT"),
        ("ticker", "TEXT"),
        ("gross_pnl", "DOUBLE PRECISION"),
        ("costs", "DOUBLE PRECISION"),
        ("net_pnl", "DOUBLE PRECISION"),
    ],
    "exposures": [
        ("trade_date", "DATE"),
        ("dimension", "TEXT"),
        ("bucket", "TEXT"),
        ("long", "DOUBLE PRECISION"),
        ("short", "DOUBLE PRECISION"),
        ("gross", "DOUBLE PRECISION"),
        ("net", "DOUBLE PRECISION"),
    ],
    "risk_summary": [
        ("trade_date", "DATE"),
        ("var_1d", "DOUBLE PRECISION"),
        ("es_1d", "DOUBLE PRECISION"),
        ("var_5d", "DOUBLE PRECISION"),
        ("var_limit", "DOUBLE PRECISION"),
        ("var_limit_usage", "DOUBLE PRECISION"),
        ("gross_exposure", "DOUBLE PRECISION"),
        ("gross_limit", "DOUBLE PRECISION"),
        ("gross_limit_usage", "DOUBLE PRECISION"),
        ("drawdown", "DOUBLE PRECISION"),
        ("drawdown_state", "TEXT"),
        ("breaches", "TEXT"),
    ],
    "model_kpis": [
        ("trade_date", "DATE"),
        ("model", "TEXT"),
        ("recipe", "TEXT"),
        ("champion", "BOOLEAN"),
        ("ic_1", "DOUBLE PRECISION"),
        ("ic_20", "DOUBLE PRECISION"),
        ("ensemble_weight", "DOUBLE PRECISION"),
        ("status", "TEXT"),
        ("drifted_features", "BIGINT"),
    ],
    "pipeline_kpis": [
        ("trade_date", "DATE"),
        ("asset", "TEXT"),
        ("run_seconds", "DOUBLE PRECISION"),
        ("rows_written", "BIGINT"),
        ("materialized_at", "TIMESTAMP"),
        ("freshness_hours", "DOUBLE PRECISION"),
        ("failovers", "BIGINT"),
        ("quarantined_files", "BIGINT"),
    ],
    "publications": [
        ("trade_date", "DATE"),
        ("published_at", "TIMESTAMP"),
        ("row_counts", "TEXT"),
    ],
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "book_positions": ("trade_date", "ticker"),
    "fund_performance": ("trade_date",),
    "pnl_attribution": ("trade_date", "side", "sector", "model", "ticker"),
    "exposures": ("trade_date", "dimension", "bucket"),
    "risk_summary": ("trade_date",),
    "model_kpis": ("trade_date", "model", "recipe"),
    "pipeline_kpis": ("trade_date", "asset"),
    "publications": ("trade_date",),
}

# Secondary indexes for the readers' lookups by name (the primary keys already lead with trade_date).
INDEXES: dict[str, tuple[str, ...]] = {
    "book_positions": ("ticker",),
    "pnl_attribution": ("ticker",),
    "pipeline_kpis": ("asset",),
}

_SA_TYPES = {
    "DATE": sa.Date,
    "TEXT": sa.Text,
    "DOUBLE PRECISION": sa.Double,
    "BIGINT": sa.BigInteger,
    "BOOLEAN": sa.Boolean,
    "TIMESTAMP": sa.DateTime,  # naive, UTC by convention
}


def _build_metadata() -> sa.MetaData:
    md = sa.MetaData()
    for name, cols in SERVING_TABLES.items():
        pk = PRIMARY_KEYS[name]
        columns = [sa.Column(c, _SA_TYPES[t](), primary_key=c in pk, nullable=c not in pk) for c, t in cols]
        indexes = [sa.Index(f"ix_{name}_{c}", c) for c in INDEXES.get(name, ())]
        sa.Table(name, md, *columns, *indexes)
    return md


METADATA = _build_metadata()

# Rendered responses (not part of the contract's tables: readers may ignore it). name: the endpoint ('portfolio');
# body: its JSON bytes as the API returns them; body_gzip: the same gzip-compressed (sent with Content-Encoding).
PAYLOADS = sa.Table(
    "payloads",
    METADATA,
    sa.Column("trade_date", sa.Date(), primary_key=True),
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("body_gzip", sa.LargeBinary()),
    sa.Column("rendered_at", sa.DateTime()),
)
PORTFOLIO_COLUMNS = ("ticker", "side", "weight", "sector", "country", "alpha_score", "top_features")

# The pipeline's pictures for the dashboard's Reports page (not part of the contract's tables): the latest picture
# of each plot, keyed by its name. Written by the asset that draws it (``write_plot``), not by the publisher: a
# picture is not a trading day's data. asset_key: the asset that drew it ('portfolio/target_weights');
# partition_key: that run's partition key or range; trade_date: the day the picture shows (the last one it covers);
# written_at: when it was stored (UTC; PostgreSQL keeps the zone, SQLite the UTC wall time); png: the bytes.
PLOTS = sa.Table(
    "plots",
    METADATA,
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("asset_key", sa.Text(), nullable=False),
    sa.Column("partition_key", sa.Text()),
    sa.Column("trade_date", sa.Date()),
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("png", sa.LargeBinary(), nullable=False),
)
PLOT_NAME = re.compile(r"^[a-z0-9_]{1,64}$")  # what a plot may be called (its key, its anchor, its image URL)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def serving_table(name: str) -> sa.Table:
    """The SQLAlchemy Core table of a serving table (for readers building queries)."""
    return METADATA.tables[name]


def serving_url(home: AlphaHome | None = None) -> str:
    """ALPHA_SERVING_URL if set (prod PostgreSQL), else the embedded SQLite file under ALPHA_HOME/serving."""
    url = os.environ.get(SERVING_URL_ENV, "").strip()
    if url:
        return url
    if home is None:
        from alpha_assets.home import AlphaHome

        home = AlphaHome.from_env()
    return f"sqlite:///{Path(home.root) / 'serving' / 'serving.db'}"


def redacted_url(url: str) -> str:
    """The URL without its password (for metadata and logs)."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@functools.lru_cache(maxsize=16)
def serving_engine(url: str) -> sa.engine.Engine:
    """One engine per URL. SQLite: the folder is created, WAL journal and a busy timeout on every connection."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_con, _record):
        # pysqlite's own transaction handling would begin lazily and mis-order with DDL; SQLAlchemy's documented
        # recipe: autocommit at the driver, explicit BEGIN on each transaction (below).
        dbapi_con.isolation_level = None
        cur = dbapi_con.cursor()
        # 64 KiB pages (takes effect only while the file is still empty, i.e. before WAL below): a 1.7 MB book
        # payload is ~27 pages to chain through instead of ~430, which is most of a cold read's cost.
        cur.execute("PRAGMA page_size=65536")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        # IMMEDIATE: the publisher takes the write lock up front, so two publishers queue instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_schema(engine: sa.engine.Engine) -> None:
    """Create every serving table and index that does not exist yet (idempotent).

    PostgreSQL: the stored JSON bodies are compressed with lz4 instead of the default pglz (PostgreSQL >= 14
    built with lz4, as Debian's and the managed services' are; else kept uncompressed, ``STORAGE EXTERNAL``):
    every read of a cold book inflates it again, and pglz is the slow part of that read. Measured on a year of
    5,000-name books, one reader: 6.4 ms a book uncompressed, 5.4 ms lz4 (1.7 MB stored as 0.59 MB). Only rows
    written after the change are stored that way; it is set once."""
    METADATA.create_all(engine, checkfirst=True)
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        storage, compression = conn.execute(
            sa.text(
                "SELECT attstorage, attcompression FROM pg_attribute WHERE attrelid = 'payloads'::regclass "
                "AND attname = 'body'"
            )
        ).one()
    if compression == "l" and storage == "x":
        return
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "ALTER TABLE payloads ALTER COLUMN body SET STORAGE EXTENDED, "
                    "ALTER COLUMN body SET COMPRESSION lz4"
                )
            )
    except sa.exc.DBAPIError:  # a server without lz4 (or before 14): no compression rather than pglz
        if storage != "e":
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE payloads ALTER COLUMN body SET STORAGE EXTERNAL"))


def _rows(name: str, frame: pl.DataFrame, day: date) -> list[dict]:
    cols = [c for c, _ in SERVING_TABLES[name]]
    unknown = [c for c in frame.columns if c not in cols]
    if unknown:
        raise ValueError(f"serving table {name}: unknown columns {unknown} (schema: {cols})")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"serving table {name}: missing columns {missing}")
    if frame.height and frame["trade_date"].cast(pl.Date).ne(day).any():
        raise ValueError(f"serving table {name}: rows outside {day} (publish_day writes exactly one day)")
    rows = frame.select(cols).to_dicts()
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                r[k] = None  # SQLite would store NaN as NULL anyway; PostgreSQL would keep it: one behaviour
    return rows


def publish_day(engine: sa.engine.Engine, day: date, tables: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace ``day`` in every given table and its ``publications`` row, in ONE transaction.

    Returns rows written per table. A table not in ``tables`` is left untouched. Any error (bad column, rows of
    another day, a duplicate key) rolls the whole day back: the previously published rows stay.
    """
    unknown = [t for t in tables if t not in SERVING_TABLES or t == "publications"]
    if unknown:
        raise ValueError(f"not serving tables: {unknown} (known: {sorted(SERVING_TABLES)})")
    prepared = {name: _rows(name, frame, day) for name, frame in tables.items()}
    counts = {name: len(rows) for name, rows in prepared.items()}
    # Rendered from the very rows inserted below (NaN already NULL), so the stored body equals what the API
    # would build from the table. A publication without the book leaves the day's stored book as it was.
    # The stored book names its publication (as_of, published_at): the time is the publications row's.
    now = datetime.now(UTC).replace(tzinfo=None)
    payloads = {}
    if "book_positions" in prepared:
        payloads["portfolio"] = render_portfolio(day, prepared["book_positions"], iso_utc(now))
    with engine.begin() as conn:
        for name, rows in prepared.items():
            table = METADATA.tables[name]
            conn.execute(table.delete().where(table.c.trade_date == day))
            if rows:
                conn.execute(table.insert(), rows)
        for name, body in payloads.items():
            conn.execute(PAYLOADS.delete().where((PAYLOADS.c.trade_date == day) & (PAYLOADS.c.name == name)))
            row = {
                "trade_date": day,
                "name": name,
                "body": body,
                "body_gzip": gzip_body(body),
                "rendered_at": now,
            }
            conn.execute(PAYLOADS.insert(), [row])
        pubs = METADATA.tables["publications"]
        conn.execute(pubs.delete().where(pubs.c.trade_date == day))
        conn.execute(
            pubs.insert(),
            [
                {
                    "trade_date": day,
                    "published_at": now,
                    "row_counts": json.dumps(counts, sort_keys=True),
                }
            ],
        )
    return counts


# ----------------------------------------------------------------------------------------- rendered payloads
def tidy_float(v: float | None) -> float | None:
    """``v`` to 12 significant digits, and 0.0 when under 1e-12 in size: what a response shows of a float
    (1.0000000000000002 is 1.0, a net exposure of 1.4e-17 is 0.0). Far below what a weight, a return or a dollar
    of P&L means, far above float noise."""
    if v is None or not math.isfinite(v):
        return v
    return 0.0 if abs(v) < 1e-12 else float(f"{v:.12g}")


def iso_utc(v: datetime | str | None) -> str | None:
    """A stored timestamp (naive, UTC by the store's convention; SQLite gives text, PostgreSQL a datetime) as ISO
    8601 in UTC with a Z: every timestamp the API sends carries its zone."""
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    return v.isoformat().replace("+00:00", "Z")


def render_portfolio(day: date, rows: list[dict], published_at: str | None = None) -> bytes:
    """``GET /api/portfolio?date=day`` as JSON bytes, from the day's ``book_positions`` rows (any order; dicts
    with at least ``PORTFOLIO_COLUMNS``; top_features as its stored JSON text or None). The body opens with the
    publication it belongs to: ``as_of`` (the day) and ``published_at`` (UTC, Z).

    The one renderer of the book: the publisher stores its output, the API calls it when a day has none. Rows
    are sorted here (largest long first, ticker breaking ties) so the bytes do not depend on the database's
    row order; sums follow that order, so the exposures are bit-identical however the rows were read.
    """
    positions = sorted(
        ({c: r.get(c) for c in PORTFOLIO_COLUMNS} for r in rows),
        key=lambda r: (r["weight"] is None, -(r["weight"] or 0.0), r["ticker"]),
    )
    longs = sum(r["weight"] for r in positions if r["weight"] is not None and r["weight"] > 0)
    shorts = sum(r["weight"] for r in positions if r["weight"] is not None and r["weight"] < 0)
    for r in positions:  # floats as a response shows them (12 significant digits)
        r["weight"], r["alpha_score"] = tidy_float(r["weight"]), tidy_float(r["alpha_score"])
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson comes with dagster
        orjson = None
    for r in positions:
        text = r["top_features"] or "[]"
        # orjson embeds the stored JSON text as it is (no parse and re-dump of 15,000 small objects)
        r["top_features"] = orjson.Fragment(text) if orjson is not None else json.loads(text)
    payload = {
        "as_of": day.isoformat(),
        "published_at": published_at,
        "trade_date": day.isoformat(),
        "positions": positions,
        "n_long": sum(r["side"] == "long" for r in positions),
        "n_short": sum(r["side"] == "short" for r in positions),
        "gross_exposure": tidy_float(longs - shorts),
        "net_exposure": tidy_float(longs + shorts),
    }
    if orjson is not None:
        return orjson.dumps(payload)
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def gzip_body(body: bytes, level: int = 6) -> bytes:
    """``body`` gzip-compressed, byte-stable (no timestamp in the header): 1.7 MB of book JSON becomes ~0.3 MB."""
    return gzip.compress(body, compresslevel=level, mtime=0)


# ------------------------------------------------------------------------------------------------------ plots
def write_plot(
    engine: sa.engine.Engine,
    name: str,
    title: str,
    asset_key: str,
    png: bytes,
    partition: str | None = None,
    trade_date: date | None = None,
    written_at: datetime | None = None,
) -> datetime:
    """Store ``png`` as the latest picture of the plot ``name`` (replacing that name's previous picture, in one
    transaction; every other plot stays). Creates the ``plots`` table when the store has none yet. Returns
    ``written_at`` (default now, UTC)."""
    if not PLOT_NAME.match(name):
        raise ValueError(f"plot name {name!r}: 1-64 lowercase letters, digits or _")
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError(f"plot {name}: not a PNG (the bytes do not start with the PNG signature)")
    written_at = written_at or datetime.now(UTC)
    if written_at.tzinfo is None:
        raise ValueError(f"plot {name}: written_at must carry its time zone")
    row = {
        "name": name,
        "title": title,
        "asset_key": asset_key,
        "partition_key": partition,
        "trade_date": trade_date,
        "written_at": written_at.astimezone(UTC),
        "png": png,
    }
    with engine.begin() as conn:
        conn.execute(sa.schema.CreateTable(PLOTS, if_not_exists=True))
        conn.execute(PLOTS.delete().where(PLOTS.c.name == name))
        conn.execute(PLOTS.insert(), [row])
    return written_at
