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
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("10.1.2.3", False), ("fund-box", False)],
)  # fmt: skip
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
