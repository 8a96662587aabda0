"""The API's edges (issue 19 #8): a date out of any sensible range is a 422 naming it (was a 500), the response
cache is keyed by the validated parameters and bounded (9,000 distinct ``?x=N`` grew a worker by 445 MB), a store
under a path with a space or a '#' is read, and `alpha serve-api` on a non-loopback host without a token warns."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from alpha_assets.cli import _is_loopback, main
from alpha_assets.serving.api import ResponseCache, create_app


@pytest.fixture(scope="module")
def app(filled_store):
    return create_app(filled_store["url"], token="")


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/performance", {"to": "0001-01-01"}, "to=0001-01-01"),
        ("/api/performance", {"from": "0001-01-01"}, "from=0001-01-01"),
        ("/api/performance", {"from": "9999-12-31"}, "from=9999-12-31"),
        ("/api/portfolio", {"date": "0001-01-01"}, "date=0001-01-01"),
        ("/api/risk", {"date": "0001-01-01"}, "date=0001-01-01"),
        ("/api/exposures", {"date": "9999-12-31"}, "date=9999-12-31"),
    ],
)
def test_a_date_out_of_range_is_a_422_naming_it(client, path, params, name):
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert name in r.json()["detail"] and "out of range" in r.json()["detail"]


def test_a_range_ending_outside_the_published_days_is_a_422_not_an_empty_list(client, filled_store):
    first, newest = filled_store["days"][0], filled_store["days"][-1]
    for to in ("1900-06-01", "2030-01-01"):
        r = client.get("/api/performance", params={"to": to})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == f"to={to}: out of range: published days run from {first} to {newest}"
    for path in ("/api/portfolio", "/api/risk", "/api/exposures"):
        r = client.get(path, params={"date": "2030-01-01"})
        assert r.status_code == 422 and r.json()["detail"].startswith("date=2030-01-01: out of range"), path
    # a range starting before the first day is the days there are (the default is a year before `to`)
    assert len(client.get("/api/performance", params={"from": "2000-01-01"}).json()["days"]) == 25


def test_an_unknown_parameter_is_a_422_naming_it_and_caches_nothing(app, client, filled_store):
    cache = app.state.cache
    first = client.get("/api/performance").json()
    n = len(cache)
    for i in range(200):
        r = client.get("/api/performance", params={"x": str(i)})
        assert r.status_code == 422
    assert r.json()["detail"] == "x: unknown query parameter; /api/performance takes from, to"
    assert len(cache) == n
    r = client.get("/api/performance", params={"form": "2024-01-03"})  # a typo of `from`
    assert r.status_code == 422 and r.json()["detail"].startswith("form: unknown query parameter")
    assert client.get("/api/models", params={"date": "2024-01-03"}).json()["detail"] == (
        "date: unknown query parameter; /api/models takes no parameters"
    )
    assert client.get("/api/performance").json() == first
    # one entry per validated parameters
    day = filled_store["days"][3].isoformat()
    for _ in range(5):
        assert client.get("/api/exposures", params={"date": day}).status_code == 200
    assert len(cache) == n + 1


def test_the_cache_is_bounded_by_entries_and_by_bytes():
    cache = ResponseCache(max_bytes=10_000, max_entries=100)
    for i in range(1000):
        cache.put(("/api/x", (i,), "stamp"), (b"y" * 50, None))
    assert len(cache) == 100 and cache.size == 100 * 50
    assert cache.get(("/api/x", (999,), "stamp")) is not None and cache.get(("/api/x", (0,), "stamp")) is None
    for i in range(1000):
        cache.put(("/api/big", (i,), "stamp"), (b"z" * 1000, None))
    assert cache.size <= 10_000 and len(cache) <= 100


def test_a_store_under_a_path_with_a_space_and_a_hash_is_read(tmp_path):
    from alpha_assets.serving import store
    from alpha_assets_tests.serving.synthetic import fill_store

    folder = tmp_path / "fund data #1"
    folder.mkdir()
    url = f"sqlite:///{folder / 'serving.db'}"
    days = fill_store(store.serving_engine(url), names=8, days=3, seed=5)
    c = TestClient(create_app(url, token=""))
    assert c.get("/api/health").json()["newest_day"] == days[-1].isoformat()
    assert c.get("/api/portfolio").json()["trade_date"] == days[-1].isoformat()  # the stored blob, too
    assert len(c.get("/api/performance").json()["days"]) == len(days)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("fund-box", False),
    ],
)
def test_which_hosts_are_loopback(host, loopback):
    assert _is_loopback(host) is loopback


def _serve_argv(monkeypatch, tmp_path, host: str, token: str | None) -> list[str]:
    import alpha_assets.serving.api as api

    calls = []
    monkeypatch.setattr(api, "serve", lambda app, **kw: calls.append(kw))  # no server: what it would bind
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    monkeypatch.delenv("ALPHA_SERVING_URL", raising=False)
    if token is None:
        monkeypatch.delenv("ALPHA_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("ALPHA_API_TOKEN", token)
    assert main(["serve-api", "--host", host, "--port", "18099"]) == 0
    assert calls and calls[0]["host"] == host
    return calls


def test_serving_the_network_without_a_token_warns_and_says_so_in_the_banner(monkeypatch, tmp_path, capsys):
    _serve_argv(monkeypatch, tmp_path, "0.0.0.0", None)
    out, err = capsys.readouterr()
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "0.0.0.0" in warning[0] and "ALPHA_API_TOKEN" in warning[0]
    assert "OPEN to the network" in out


@pytest.mark.parametrize(("host", "token"), [("127.0.0.1", None), ("0.0.0.0", "s3cret")])
def test_loopback_or_a_token_serves_without_a_warning(monkeypatch, tmp_path, capsys, host, token):
    _serve_argv(monkeypatch, tmp_path, host, token)
    out, err = capsys.readouterr()
    assert "warning" not in err and "OPEN" not in out


# ------------------------------------------------------------------------ issue 20 #7: the serving rough edges
def test_docs_work_offline_and_list_every_route(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert (
        "<script" not in r.text and "cdn" not in r.text.lower() and "http://" not in r.text
    )  # self-contained
    for path in (
        "/api/health",
        "/api/portfolio",
        "/api/performance",
        "/api/risk",
        "/api/models",
        "/api/pipeline",
    ):
        assert f"<code>{path}</code>" in r.text, path
    assert "<code>limit</code>" in r.text and "<code>Portfolio</code>" in r.text
    assert client.get("/redoc").status_code == 404  # it needed a CDN too


def test_pipeline_history_comes_in_pages_newest_first(client, filled_store):
    full = client.get("/api/pipeline", params={"limit": 5000}).json()
    assert full["total"] == len(full["history"]) == 25 * 12 and full["next_offset"] is None
    dates = [h["trade_date"] for h in full["history"]]
    assert dates == sorted(dates, reverse=True) and dates[0] == filled_store["days"][-1].isoformat()
    pages, offset = [], 0
    while offset is not None:
        page = client.get("/api/pipeline", params={"limit": 70, "offset": offset}).json()
        assert len(page["history"]) <= 70 and page["total"] == 300 and page["offset"] == offset
        pages += page["history"]
        offset = page["next_offset"]
    assert pages == full["history"]
    assert client.get("/api/pipeline", params={"limit": 70}).json()["assets"] == full["assets"]
    assert len(client.get("/api/pipeline").json()["history"]) == 300  # the default page: 500 rows
    for params, name in (
        ({"limit": 0}, "limit=0"),
        ({"limit": 5001}, "limit=5001"),
        ({"offset": -1}, "offset=-1"),
    ):
        r = client.get("/api/pipeline", params=params)
        assert r.status_code == 422 and r.json()["detail"].startswith(f"{name.split('=')[0]}="), params
    r = client.get("/api/pipeline", params={"offset": 300})
    assert r.status_code == 422 and r.json()["detail"] == "offset=300: out of range: the history has 300 rows"


def test_every_timestamp_carries_its_zone(client):
    import re

    iso_utc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
    assert iso_utc.match(client.get("/api/health").json()["published_at"])
    body = client.get("/api/pipeline").json()
    stamps = [r["materialized_at"] for r in body["assets"] + body["history"]]
    assert stamps and all(iso_utc.match(s) for s in stamps), stamps[:3]


def _floats(obj):
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _floats(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _floats(v)


def test_floats_are_sent_to_12_significant_digits(client):
    for path in (
        "/api/portfolio",
        "/api/exposures",
        "/api/performance",
        "/api/risk",
        "/api/models",
        "/api/pipeline",
    ):
        body = client.get(path).json()
        if path == "/api/portfolio":  # the SHAP values are the model's own JSON, embedded as stored
            for p in body["positions"]:
                p.pop("top_features")
        values = list(_floats(body))
        assert values, path
        assert all(v == float(f"{v:.12g}") for v in values), path
    book = client.get("/api/portfolio").json()
    assert book["gross_exposure"] == 2.0 and book["net_exposure"] == 0.0  # not 2.0000000000000004, 1e-17


def test_var_is_null_on_the_first_days_before_the_risk_model_has_history(tmp_path):
    from alpha_assets.serving import store
    from alpha_assets_tests.serving.synthetic import _with_schema, serving_days

    engine = store.serving_engine(f"sqlite:///{tmp_path}/serving.db")
    store.create_schema(engine)
    days = []
    for k, (day, tables) in enumerate(serving_days(6, 4, seed=3)):
        if k < 2:  # the first two days: no history yet, the mart writes 0.0
            tables["risk_summary"] = tables["risk_summary"].with_columns(
                var_1d=0.0, es_1d=0.0, var_5d=0.0, var_limit_usage=0.0
            )
        store.publish_day(engine, day, {n: _with_schema(n, f) for n, f in tables.items()})
        days.append(day)
    c = TestClient(create_app(f"sqlite:///{tmp_path}/serving.db", token=""))
    first = c.get("/api/risk", params={"date": days[0].isoformat()}).json()["summary"]
    assert (first["var_1d"], first["es_1d"], first["var_5d"], first["var_limit_usage"]) == (None,) * 4
    assert first["var_limit"] == 0.03 and first["gross_limit_usage"] > 0  # what is known is still there
    history = c.get("/api/risk").json()["history"]
    assert [h["var_1d"] is None for h in history] == [True, True, False, False]
    assert all(h["var_1d"] > 0 for h in history[2:])
