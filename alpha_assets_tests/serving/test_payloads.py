"""Rendered payloads (the serving-store pattern): the publisher stores each day's `/api/portfolio` body in the same
transaction as the day's book, the API serves those bytes, and they are exactly what the API builds from the rows
(old stores without payloads still serve, from the rows)."""

from __future__ import annotations

import gzip
import json
import sqlite3

import polars as pl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from alpha_assets.serving import store
from alpha_assets.serving.api import ServingReader, create_app
from alpha_assets_tests.serving.synthetic import _with_schema, fill_store, serving_days


def _stored(path, day) -> bytes | None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT body FROM payloads WHERE trade_date = ? AND name = 'portfolio'", (day.isoformat(),)
        ).fetchone()
        return None if row is None else bytes(row[0])
    finally:
        con.close()


def _copy_without_payloads(src, dst, drop_table: bool) -> str:
    """A copy of the store as one published before payloads existed (rows only)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
        b.execute("DROP TABLE payloads" if drop_table else "DELETE FROM payloads")
    return f"sqlite:///{dst}"


@pytest.fixture(scope="module")
def stores(filled_store, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("payloads")
    return {
        "stored": TestClient(create_app(filled_store["url"], token="")),
        "rows": TestClient(
            create_app(_copy_without_payloads(filled_store["path"], tmp / "a.db", False), token="")
        ),
        "old": TestClient(
            create_app(_copy_without_payloads(filled_store["path"], tmp / "b.db", True), token="")
        ),
    }


def test_every_day_has_its_portfolio_payload(filled_store):
    for day in filled_store["days"]:
        body = json.loads(_stored(filled_store["path"], day))
        assert body["trade_date"] == day.isoformat() and len(body["positions"]) == 30


@pytest.mark.parametrize("which", [0, 4, 7])  # day 4: names without SHAP rows (top_features NULL)
def test_the_stored_payload_equals_the_payload_built_from_the_rows(filled_store, stores, which):
    day = filled_store["days"][which]
    params = {"date": day.isoformat()}
    served = stores["stored"].get("/api/portfolio", params=params)
    built = stores["rows"].get(
        "/api/portfolio", params=params
    )  # same days, no payload rows: built per request
    old = stores["old"].get("/api/portfolio", params=params)  # no payloads table at all
    assert served.status_code == built.status_code == old.status_code == 200
    assert served.content == _stored(filled_store["path"], day)  # the API sent the stored bytes
    assert served.content == built.content == old.content  # byte for byte what the rows give
    body = served.json()
    assert body["positions"][0]["weight"] == max(p["weight"] for p in body["positions"])
    assert any(p["top_features"] == [] for p in body["positions"]) == (which == 4)


def test_the_newest_day_and_the_errors_are_the_same_with_or_without_payloads(filled_store, stores):
    newest = stores["stored"].get("/api/portfolio")
    assert newest.content == stores["old"].get("/api/portfolio").content
    assert newest.json()["trade_date"] == filled_store["days"][-1].isoformat()
    sunday = "2024-01-07"
    for c in stores.values():
        r = c.get("/api/portfolio", params={"date": sunday})
        assert r.status_code == 404 and r.json()["detail"].startswith(f"date={sunday}: nothing published")


def test_a_republished_day_serves_its_new_payload_and_a_failed_one_keeps_the_old(tmp_path):
    path = tmp_path / "serving.db"
    engine = store.serving_engine(f"sqlite:///{path}")
    days = fill_store(engine, names=12, days=3, seed=3)
    c = TestClient(create_app(f"sqlite:///{path}", token=""))
    first = c.get("/api/portfolio", params={"date": days[1].isoformat()}).json()
    _, tables = list(serving_days(12, 3, seed=4))[1]
    book = _with_schema("book_positions", tables["book_positions"])
    halved = book.with_columns(
        pl.col("weight") * 0.5, pl.col("top_features").fill_null('[{"feature": "ret_5", "shap_value": 0.5}]')
    )
    store.publish_day(engine, days[1], {"book_positions": halved})
    after = c.get("/api/portfolio", params={"date": days[1].isoformat()}).json()
    assert after != first and after["gross_exposure"] == pytest.approx(1.0)
    assert {p["ticker"]: p["weight"] for p in after["positions"]} == {
        t: store.tidy_float(w) for t, w in zip(halved["ticker"], halved["weight"], strict=True)
    }
    assert json.loads(_stored(path, days[1])) == after
    # a publication that fails mid-way rolls the payload back with the rows
    broken = _with_schema("fund_performance", pl.concat([tables["fund_performance"]] * 2))
    with pytest.raises(sa.exc.IntegrityError):
        store.publish_day(engine, days[1], {"book_positions": book, "fund_performance": broken})
    assert json.loads(_stored(path, days[1])) == after
    assert c.get("/api/portfolio", params={"date": days[1].isoformat()}).json() == after
    # a day published without its book keeps the stored book
    store.publish_day(engine, days[1], {"risk_summary": _with_schema("risk_summary", tables["risk_summary"])})
    assert json.loads(_stored(path, days[1])) == after


def test_the_reader_has_no_payload_for_unknown_days_or_old_stores(filled_store, tmp_path):
    reader = ServingReader(filled_store["url"])
    newest, body, zipped, published_at = reader.payload(None, "portfolio")
    assert newest == filled_store["days"][-1] and body == _stored(filled_store["path"], newest) and not zipped
    # the gzip form when asked for and stored (read through SQLite's blob API), the same JSON once inflated
    day, gz, zipped, _ = reader.payload(newest, "portfolio", gzip=True)
    assert day == newest and zipped and gzip.decompress(gz) == body
    # the day's publication time, which the stored body names too
    assert published_at == reader.publication(newest)["published_at"]
    assert json.loads(body)["published_at"] == str(published_at).replace(" ", "T") + "Z"
    assert reader.payload(filled_store["days"][0], "risk") is None
    old = ServingReader(_copy_without_payloads(filled_store["path"], tmp_path / "old.db", True))
    assert old.payload(filled_store["days"][0], "portfolio") is None


def test_large_bodies_go_gzipped_to_clients_that_accept_it(tmp_path):
    # 300 names x 30 days: the book (~100 KB) and the pipeline history pass the gzip threshold; risk does not
    path = tmp_path / "serving.db"
    days = fill_store(store.serving_engine(f"sqlite:///{path}"), names=300, days=30, seed=8)
    c = TestClient(create_app(f"sqlite:///{path}", token=""))
    plain = c.get("/api/portfolio", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    assert plain.content == _stored(path, days[-1])
    for accept in ("gzip, deflate", "br;q=1.0, gzip;q=0.8", "*"):
        with c.stream("GET", "/api/portfolio", headers={"Accept-Encoding": accept}) as r:
            raw = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == "gzip", accept
        assert gzip.decompress(raw) == plain.content and len(raw) < len(plain.content) / 2
    refused = c.get("/api/portfolio", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers and refused.content == plain.content
    # a body built per request (not stored) is compressed too, and decodes to the same JSON
    zipped, ident = c.get("/api/pipeline"), c.get("/api/pipeline", headers={"Accept-Encoding": "identity"})
    assert zipped.headers.get("content-encoding") == "gzip" and "content-encoding" not in ident.headers
    assert zipped.json() == ident.json() and len(ident.json()["history"]) == 30 * 12
    small = c.get("/api/risk")
    assert "content-encoding" not in small.headers and small.json()["trade_date"] == days[-1].isoformat()
