"""The REST API over a serving store filled through the real write path: every endpoint's values equal the store's
rows (floats to 12 significant digits); bad input, unknown days and an empty store give clear 4xx messages; the token; nothing writes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from alpha_assets.serving.api import ServingReader, create_app
from alpha_assets.serving.store import render_portfolio, tidy_float
from alpha_assets_tests.serving.conftest import free_port


def _rows(path, sql: str, *params) -> list[dict]:
    """The store's rows, read with sqlite3 directly (independently of the API's read layer)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


@pytest.fixture(scope="module")
def client(filled_store):
    return TestClient(create_app(filled_store["url"], token=""))


def test_health_names_the_newest_day_and_its_row_counts(client, filled_store):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["store"] == "sqlite"
    assert body["newest_day"] == filled_store["days"][-1].isoformat()
    assert body["days_published"] == 25
    assert body["tables"]["book_positions"] == 30 and body["tables"]["fund_performance"] == 1


def test_portfolio_positions_equal_the_store_rows(client, filled_store):
    day = filled_store["days"][4]  # a day where some names have no SHAP rows
    body = client.get("/api/portfolio", params={"date": day.isoformat()}).json()
    rows = {
        r["ticker"]: r
        for r in _rows(
            filled_store["path"], "SELECT * FROM book_positions WHERE trade_date = ?", day.isoformat()
        )
    }
    assert body["trade_date"] == day.isoformat() and len(body["positions"]) == len(rows) == 30
    for p in body["positions"]:
        r = rows[p["ticker"]]
        assert (p["side"], p["weight"], p["sector"], p["country"], p["alpha_score"]) == (
            r["side"],
            tidy_float(r["weight"]),
            r["sector"],
            r["country"],
            tidy_float(r["alpha_score"]),
        )
        assert p["top_features"] == (json.loads(r["top_features"]) if r["top_features"] else [])
    assert any(p["top_features"] == [] for p in body["positions"])
    assert any(len(p["top_features"]) == 3 for p in body["positions"])
    assert body["n_long"] == sum(r["side"] == "long" for r in rows.values()) == 15
    assert body["gross_exposure"] == pytest.approx(2.0) and body["net_exposure"] == pytest.approx(
        0.0, abs=1e-12
    )


def test_portfolio_defaults_to_the_newest_day(client, filled_store):
    assert client.get("/api/portfolio").json()["trade_date"] == filled_store["days"][-1].isoformat()


def test_exposures_equal_the_store_rows(client, filled_store):
    day = filled_store["days"][-1].isoformat()
    body = client.get("/api/exposures", params={"date": day}).json()
    rows = _rows(filled_store["path"], "SELECT * FROM exposures WHERE trade_date = ?", day)
    got = {(e["dimension"], e["bucket"]): e["gross"] for e in body["exposures"]}
    assert got == {(r["dimension"], r["bucket"]): tidy_float(r["gross"]) for r in rows}
    assert sum(1 for d, _ in got if d == "name") == 10


def test_performance_range_equals_the_store_rows(client, filled_store):
    days = filled_store["days"]
    body = client.get(
        "/api/performance", params={"from": days[3].isoformat(), "to": days[9].isoformat()}
    ).json()
    rows = _rows(
        filled_store["path"],
        "SELECT * FROM fund_performance WHERE trade_date BETWEEN ? AND ? ORDER BY trade_date",
        days[3].isoformat(),
        days[9].isoformat(),
    )
    assert [d["trade_date"] for d in body["days"]] == [d.isoformat() for d in days[3:10]]
    for got, want in zip(body["days"], rows, strict=True):
        for col in ("nav", "gross_pnl", "costs", "net_pnl", "net_return", "drawdown", "turnover"):
            assert got[col] == tidy_float(want[col]), col


def test_performance_defaults_to_the_year_up_to_the_newest_day(client, filled_store):
    body = client.get("/api/performance").json()
    newest = filled_store["days"][-1]
    assert body["to"] == newest.isoformat() and body["from"] == (newest - timedelta(days=365)).isoformat()
    assert len(body["days"]) == 25
    assert all(d["drawdown"] <= 0 for d in body["days"])


def test_risk_summary_and_var_history_equal_the_store_rows(client, filled_store):
    day = filled_store["days"][10].isoformat()
    body = client.get("/api/risk", params={"date": day}).json()
    (row,) = _rows(filled_store["path"], "SELECT * FROM risk_summary WHERE trade_date = ?", day)
    for col in ("var_1d", "es_1d", "var_5d", "var_limit", "var_limit_usage", "gross_limit_usage", "drawdown"):
        assert body["summary"][col] == tidy_float(row[col]), col
    assert body["summary"]["drawdown_state"] == row["drawdown_state"]
    assert body["summary"]["breaches"] == ([row["breaches"]] if row["breaches"] else [])
    assert [h["trade_date"] for h in body["history"]] == [d.isoformat() for d in filled_store["days"][:11]]


def test_models_show_the_newest_day_and_the_ic_history(client, filled_store):
    body = client.get("/api/models").json()
    newest = filled_store["days"][-1].isoformat()
    rows = _rows(filled_store["path"], "SELECT * FROM model_kpis WHERE trade_date = ?", newest)
    assert {(m["model"], m["recipe"]): m["ic_1"] for m in body["models"]} == {
        (r["model"], r["recipe"]): tidy_float(r["ic_1"]) for r in rows
    }
    assert {m["champion"] for m in body["models"]} == {True, False}
    assert len(body["ic_history"]) == 25 * 8
    assert any(h["ic_20"] is None for h in body["ic_history"])  # the first days have no 20-day IC yet


def test_pipeline_kpis_equal_the_store_rows(client, filled_store):
    body = client.get("/api/pipeline").json()
    newest = filled_store["days"][-1].isoformat()
    rows = {
        r["asset"]: r
        for r in _rows(filled_store["path"], "SELECT * FROM pipeline_kpis WHERE trade_date = ?", newest)
    }
    assert {a["asset"] for a in body["assets"]} == set(rows)
    for a in body["assets"]:
        r = rows[a["asset"]]
        assert (a["run_seconds"], a["freshness_hours"], a["failovers"], a["quarantined_files"]) == (
            tidy_float(r["run_seconds"]),
            tidy_float(r["freshness_hours"]),
            r["failovers"],
            r["quarantined_files"],
        )
        assert a["materialized_at"] == r["materialized_at"].replace(" ", "T") + "Z"  # UTC, with its zone
    assert body["total_failovers"] == sum(r["failovers"] for r in rows.values())
    assert len(body["history"]) == 25 * len(rows)


@pytest.mark.parametrize(
    ("path", "params", "names"),
    [
        ("/api/portfolio", {"date": "2024-13-01"}, "date="),
        ("/api/risk", {"date": "yesterday"}, "date="),
        ("/api/performance", {"from": "2024-01-xx"}, "from="),
        ("/api/performance", {"to": "20240105"}, "to="),
    ],
)
def test_a_bad_date_is_a_422_naming_the_parameter(client, path, params, names):
    r = client.get(path, params=params)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(names) and "YYYY-MM-DD" in r.json()["detail"]


def test_from_after_to_is_a_422(client, filled_store):
    days = filled_store["days"]
    r = client.get("/api/performance", params={"from": days[5].isoformat(), "to": days[1].isoformat()})
    assert (
        r.status_code == 422
        and r.json()["detail"] == f"from={days[5]} is after to={days[1]}: give from <= to"
    )


def test_a_day_without_a_book_is_a_404_saying_which_days_exist(client, filled_store):
    saturday = filled_store["days"][0] + timedelta(days=(5 - filled_store["days"][0].weekday()) % 7)
    for path in ("/api/portfolio", "/api/risk", "/api/exposures"):
        r = client.get(path, params={"date": saturday.isoformat()})
        assert r.status_code == 404, path
        assert r.json()["detail"].startswith(f"date={saturday}: nothing published for that day")
        assert filled_store["days"][-1].isoformat() in r.json()["detail"]


def test_token_is_required_when_set_except_for_health(filled_store):
    c = TestClient(create_app(filled_store["url"], token="s3cret-token"))
    for path in (
        "/api/portfolio",
        "/api/exposures",
        "/api/performance",
        "/api/risk",
        "/api/models",
        "/api/pipeline",
    ):
        assert c.get(path).status_code == 401, path
        assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        assert c.get(path, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200, path
    r = c.get("/api/portfolio", headers={"Authorization": "Basic s3cret-token"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert c.get("/api/health").status_code == 200


def test_token_comes_from_the_environment(filled_store, monkeypatch):
    monkeypatch.setenv("ALPHA_API_TOKEN", "from-env")
    c = TestClient(create_app(filled_store["url"]))
    assert c.get("/api/models").status_code == 401
    assert c.get("/api/models", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_no_endpoint_writes(client, filled_store):
    for method in ("post", "put", "delete", "patch"):
        for path in ("/api/portfolio", "/api/performance", "/api/health"):
            assert getattr(client, method)(path).status_code == 405, (method, path)
    # and the read layer cannot write even if asked to: the SQLite file is opened read-only
    reader = ServingReader(filled_store["url"])
    with pytest.raises(Exception, match="readonly"):
        reader.query("DELETE FROM book_positions")
    assert len(_rows(filled_store["path"], "SELECT ticker FROM book_positions")) == 30 * 25


def test_an_empty_store_says_nothing_is_published(tmp_path):
    from alpha_assets.serving import store

    missing = TestClient(create_app(f"sqlite:///{tmp_path}/none/serving.db", token=""))
    url = f"sqlite:///{tmp_path}/serving.db"
    store.create_schema(store.serving_engine(url))  # tables but no publication yet
    schema_only = TestClient(create_app(url, token=""))
    for c in (missing, schema_only):
        health = c.get("/api/health").json()
        assert health["status"] == "empty" and health["message"].startswith(
            "nothing published yet: run `make demo`"
        )
        for path in ("/api/portfolio", "/api/performance", "/api/risk", "/api/models", "/api/pipeline"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["detail"].startswith("nothing published yet"), path


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/api/portfolio", "Portfolio"),
        ("/api/exposures", "Exposures"),
        ("/api/performance", "Performance"),
        ("/api/risk", "Risk"),
        ("/api/models", "Models"),
        ("/api/pipeline", "Pipeline"),
        ("/api/health", "Health"),
    ],
)
def test_every_payload_matches_its_documented_response_model(client, path, model):
    """The big payloads are written with orjson (no per-row validation): they must still be what /docs says."""
    from alpha_assets.serving import api

    body = client.get(path).json()
    parsed = getattr(api, model).model_validate(body, strict=False)
    assert json.loads(parsed.model_dump_json(by_alias=True)) == body


def test_a_republished_day_is_served_fresh(tmp_path):
    """Responses are cached per publication stamp: republishing a day must show its new rows at once."""
    from alpha_assets.serving import store
    from alpha_assets_tests.serving.synthetic import _with_schema, fill_store, serving_days

    url = f"sqlite:///{tmp_path}/serving.db"
    engine = store.serving_engine(url)
    days = fill_store(engine, names=10, days=3, seed=1)
    c = TestClient(create_app(url, token=""))
    before = c.get("/api/portfolio").json()
    assert c.get("/api/portfolio").json() == before  # served from the cache
    _, tables = list(serving_days(10, 3, seed=2))[-1]
    book = tables["book_positions"].with_columns(weight=tables["book_positions"]["weight"] * 0.5)
    store.publish_day(engine, days[-1], {"book_positions": _with_schema("book_positions", book)})
    after = c.get("/api/portfolio").json()
    assert after["gross_exposure"] == pytest.approx(1.0)
    assert {p["ticker"]: p["weight"] for p in after["positions"]} == {
        r["ticker"]: tidy_float(r["weight"]) for r in book.to_dicts()
    }


def test_openapi_documents_typed_responses(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) >= {
        "/api/health",
        "/api/portfolio",
        "/api/performance",
        "/api/risk",
        "/api/models",
        "/api/pipeline",
    }
    assert list(spec["paths"]["/api/portfolio"]) == ["get"]
    position = spec["components"]["schemas"]["Position"]["properties"]
    assert position["weight"]["type"] == "number" and position["top_features"]["type"] == "array"
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/performance"]["get"]["parameters"]}
    assert any(s.get("format") == "date" for s in params["from"]["anyOf"])
    assert client.get("/docs").status_code == 200


@pytest.mark.postgres
def test_postgresql_store_reads_in_read_only_transactions(pg_serving_url):
    from alpha_assets.serving import store
    from alpha_assets_tests.serving.synthetic import fill_store

    days = fill_store(store.serving_engine(pg_serving_url), names=20, days=6, seed=5)
    c = TestClient(create_app(pg_serving_url, token=""))
    assert c.get("/api/health").json()["store"] == "postgresql"
    r = c.get("/api/portfolio", params={"date": days[2].isoformat()}, headers={"Accept-Encoding": "identity"})
    body = r.json()
    assert body["trade_date"] == days[2].isoformat() and len(body["positions"]) == 20
    # the stored body, read as text and taken as bytes, is byte for byte what the publisher rendered from the rows
    reader = ServingReader(pg_serving_url)
    _, rows = reader.positions(days[2], parse_features=False)
    published_at = reader.publication(days[2])["published_at"]
    assert r.content == render_portfolio(days[2], rows, published_at.isoformat() + "Z")
    assert reader.payload(days[2], "portfolio", gzip=True)[2] is True  # the gzip form, when asked for
    gz = c.get("/api/portfolio", params={"date": days[2].isoformat()}, headers={"Accept-Encoding": "gzip"})
    assert gz.json() == body
    # bodies stored lz4-compressed, not pglz (slow to inflate on every read)
    with reader._engine_or_empty().connect() as conn:
        sql = "SELECT DISTINCT pg_column_compression(body) FROM payloads"
        methods = conn.exec_driver_sql(sql).scalars().all()
    assert methods == ["lz4"]
    perf = c.get("/api/performance").json()["days"]
    assert [d["trade_date"] for d in perf] == [d.isoformat() for d in days]
    with pytest.raises(Exception, match="read-only transaction"):
        reader.query("DELETE FROM book_positions")
    reader._engine.dispose()


@pytest.mark.service
def test_alpha_serve_api_serves_over_http(filled_store, monkeypatch):
    port = free_port()
    env = {"ALPHA_SERVING_URL": filled_store["url"], "ALPHA_API_TOKEN": "t0k"}
    cmd = [sys.executable, "-m", "alpha_assets.cli", "serve-api", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        body = None
        for _ in range(120):
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
                break
            except httpx.TransportError:
                time.sleep(0.25)
        assert body and body["newest_day"] == filled_store["days"][-1].isoformat()
        url = f"http://127.0.0.1:{port}/api/portfolio"
        assert httpx.get(url).status_code == 401
        assert len(httpx.get(url, headers={"Authorization": "Bearer t0k"}).json()["positions"]) == 30
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_commands_refuse_a_missing_home_and_a_bad_port(tmp_path, monkeypatch, capsys):
    from alpha_assets.cli import main

    monkeypatch.delenv("ALPHA_SERVING_URL", raising=False)
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))  # main() sets it from --home: restored after the test
    assert main(["--home", str(tmp_path / "missing"), "serve-api"]) == 2
    assert "does not exist: set ALPHA_HOME or --home" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "dashboard", "--port", "70000"]) == 2
    assert "--port 70000 is not a TCP port" in capsys.readouterr().err
