"""The serving store: one trading day published per transaction, idempotent, rolled back on failure — on the
embedded SQLite file and on PostgreSQL (its own database per test)."""

from __future__ import annotations

import os
import uuid
from datetime import date

import polars as pl
import pytest
import sqlalchemy as sa

from alpha_assets.serving.store import (
    SERVING_TABLES,
    create_schema,
    publish_day,
    redacted_url,
    serving_engine,
    serving_url,
)

PG_URL = os.environ.get("ALPHA_TEST_PG_URL")
D1, D2 = date(2026, 1, 5), date(2026, 1, 6)


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "embedded":
        yield serving_engine(f"sqlite:///{tmp_path / 'serving' / 'serving.db'}")
        return
    if not PG_URL:
        pytest.skip("ALPHA_TEST_PG_URL not set (.ci/run starts PostgreSQL and sets it)")
    name = f"alpha_serving_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg2://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL).set(drivername="postgresql+psycopg2", database=name)
    eng = serving_engine(url.render_as_string(hide_password=False))
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def book(day: date, tickers=("AAA", "BBB", "CCC")) -> pl.DataFrame:
    n = len(tickers)
    return pl.DataFrame(
        {
            "trade_date": [day] * n,
            "ticker": list(tickers),
            "side": ["long", "short", "long"][:n],
            "weight": [0.4, -0.3, 0.3][:n],
            "sector": ["Tech", "Energy", "Tech"][:n],
            "country": ["US"] * n,
            "alpha_score": [0.2, -0.1, 0.15][:n],
            "top_features": ['[{"feature": "mom_60", "shap_value": 0.01}]', None, None][:n],
            "hrp_weight": [0.3, 0.3, 0.4][:n],
            "binding_limit": [None] * n,
        },
        schema_overrides={"binding_limit": pl.Utf8},
    )


def performance(day: date, nav: float) -> pl.DataFrame:
    cols = [c for c, _ in SERVING_TABLES["fund_performance"] if c not in ("trade_date", "nav")]
    return pl.DataFrame({"trade_date": [day], "nav": [nav], **{c: [0.01] for c in cols}})


def rows(engine, table: str, day: date | None = None) -> list[tuple]:
    sql = f"SELECT * FROM {table}" + (" WHERE trade_date = :d" if day else "") + " ORDER BY 1, 2"
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text(sql), {"d": day} if day else {})]


def test_publishing_a_day_twice_gives_its_rows_once(engine):
    create_schema(engine)
    create_schema(engine)  # idempotent
    first = publish_day(engine, D1, {"book_positions": book(D1), "fund_performance": performance(D1, 1e7)})
    again = publish_day(engine, D1, {"book_positions": book(D1), "fund_performance": performance(D1, 1e7)})
    assert first == again == {"book_positions": 3, "fund_performance": 1}
    assert len(rows(engine, "book_positions")) == 3
    assert len(rows(engine, "fund_performance")) == 1
    pubs = rows(engine, "publications")
    assert len(pubs) == 1 and '"book_positions": 3' in pubs[0][2]


def test_a_rerun_replaces_only_its_day(engine):
    create_schema(engine)
    publish_day(engine, D1, {"book_positions": book(D1), "fund_performance": performance(D1, 1e7)})
    publish_day(engine, D2, {"book_positions": book(D2), "fund_performance": performance(D2, 1.01e7)})
    publish_day(
        engine, D2, {"book_positions": book(D2, ("AAA",)), "fund_performance": performance(D2, 1.02e7)}
    )
    assert len(rows(engine, "book_positions", D1)) == 3
    assert [r[1] for r in rows(engine, "book_positions", D2)] == ["AAA"]
    navs = {str(r[0])[:10]: r[1] for r in rows(engine, "fund_performance")}
    assert navs == {"2026-01-05": 1e7, "2026-01-06": 1.02e7}
    with engine.connect() as c:
        assert (
            str(c.execute(sa.text("SELECT max(trade_date) FROM publications")).scalar())[:10] == "2026-01-06"
        )


def test_a_failure_mid_publish_keeps_the_previous_rows(engine):
    create_schema(engine)
    publish_day(engine, D1, {"book_positions": book(D1), "fund_performance": performance(D1, 1e7)})
    before = {t: rows(engine, t) for t in ("book_positions", "fund_performance", "publications")}
    # The book is written first, then the duplicate key in fund_performance fails inside the same transaction.
    broken = pl.concat([performance(D1, 2e7), performance(D1, 3e7)])
    with pytest.raises(sa.exc.IntegrityError):
        publish_day(engine, D1, {"book_positions": book(D1, ("ZZZ",)), "fund_performance": broken})
    assert {t: rows(engine, t) for t in before} == before


def test_bad_frames_are_refused_before_anything_is_written(engine):
    create_schema(engine)
    with pytest.raises(ValueError, match="rows outside 2026-01-05"):
        publish_day(engine, D1, {"book_positions": book(D2)})
    with pytest.raises(ValueError, match="missing columns"):
        publish_day(engine, D1, {"book_positions": book(D1).drop("sector")})
    with pytest.raises(ValueError, match="not serving tables"):
        publish_day(engine, D1, {"positions": book(D1)})
    assert rows(engine, "book_positions") == [] and rows(engine, "publications") == []


def test_the_url_is_embedded_under_alpha_home_unless_set(tmp_path, monkeypatch):
    from alpha_assets.home import AlphaHome

    monkeypatch.delenv("ALPHA_SERVING_URL", raising=False)
    assert serving_url(AlphaHome(tmp_path)) == f"sqlite:///{tmp_path}/serving/serving.db"
    monkeypatch.setenv("ALPHA_SERVING_URL", "postgresql+psycopg2://fund:secret@db:5432/serving")
    assert serving_url(AlphaHome(tmp_path)) == "postgresql+psycopg2://fund:secret@db:5432/serving"
    assert "secret" not in redacted_url(serving_url())
