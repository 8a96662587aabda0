"""GET /metrics: request latency per route template, and the gauges read from the serving store, the lake and the
Dagster instance (synthetic store of conftest.filled_store; a temp lake; an ephemeral instance)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from alpha_assets_tests.serving.synthetic import business_days

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "alpha-assets-dashboard.json"


def parse(text: str) -> tuple[dict[str, str], list[tuple[str, dict, float]]]:
    """Exposition text -> ({family: type}, [(sample name, labels, value)]); fails on a line it cannot read."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"not an exposition line: {line!r}"
            samples.append((m["name"], dict(LABEL.findall(m["labels"] or "")), float(m["value"])))
    return types, samples


def values(samples, name: str, **labels) -> list[float]:
    return [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())]


def _has_metrics_route(app) -> bool:
    return any(getattr(r, "path", None) == "/metrics" for r in app.routes)


def test_create_app_serves_metrics(filled_store):
    """The API itself exposes /metrics: ``create_app`` calls ``install_metrics`` (one hook at its end)."""
    from alpha_assets.serving.api import create_app

    assert _has_metrics_route(create_app(filled_store["url"], token="")), (
        "create_app does not call alpha_assets.serving.metrics.install_metrics(app, reader)"
    )


@pytest.fixture
def client(filled_store, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from alpha_assets.serving.api import create_app
    from alpha_assets.serving.metrics import MetricsSource, install_metrics

    # no lake, no instance unless a test gives one
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path / "no_home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("ALPHA_LAKE_ROOT", raising=False)
    app = create_app(filled_store["url"], token="")
    if not _has_metrics_route(app):  # create_app's hook (see test_create_app_serves_metrics) not in this tree
        install_metrics(app, app.state.reader)
    app.state.metrics = MetricsSource(app.state.reader, lake=None, instance=None, ttl=0)
    with TestClient(app) as c:
        yield c


def test_latency_histogram_counts_requests_per_route_template(client, filled_store):
    days = filled_store["days"]
    for d in days[:3]:
        assert client.get(f"/api/portfolio?date={d}").status_code == 200
    assert client.get("/api/portfolio").status_code == 200
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/portfolio?date=2024-01-06").status_code == 404  # a Saturday
    assert client.get("/no/such/path/123").status_code == 404
    types, samples = parse(client.get("/metrics").text)

    assert types["alpha_http_request_duration_seconds"] == "histogram"
    name = "alpha_http_request_duration_seconds_count"
    assert values(samples, name, route="/api/portfolio", method="GET", status="200") == [4.0]
    assert values(samples, name, route="/api/portfolio", status="404") == [1.0]
    assert values(samples, name, route="/api/health", status="200") == [1.0]
    assert values(samples, name, route="<unmatched>", status="404") == [1.0]
    routes = {lab["route"] for n, lab, _ in samples if n == name}
    # templates, never raw paths
    assert not any("?" in r or "2024" in r or "123" in r for r in routes), routes
    # buckets are cumulative and end at the count
    buckets = [
        (lab["le"], v)
        for n, lab, v in samples
        if n == "alpha_http_request_duration_seconds_bucket"
        and lab["route"] == "/api/portfolio"
        and lab["status"] == "200"
    ]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1] == ("+Inf", 4.0)
    assert (
        values(samples, "alpha_http_request_duration_seconds_sum", route="/api/portfolio", status="200")[0]
        > 0
    )


def test_publication_and_model_gauges_from_the_serving_store(client, filled_store):
    import sqlalchemy as sa

    from alpha_assets.serving import store
    from alpha_assets.serving.metrics import epoch_seconds

    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    _, samples = parse(r.text)
    engine = store.serving_engine(filled_store["url"])
    with engine.connect() as con:
        last_pub = con.execute(sa.text("SELECT max(published_at) FROM publications")).scalar()
        newest = date.fromisoformat(
            str(con.execute(sa.text("SELECT max(trade_date) FROM publications")).scalar())
        )
        kpis = [
            dict(m)
            for m in con.execute(
                sa.text("SELECT * FROM model_kpis WHERE trade_date = :d"), {"d": newest.isoformat()}
            ).mappings()
        ]
    assert newest == filled_store["days"][-1]
    assert values(samples, "alpha_publication_last_timestamp_seconds") == [
        pytest.approx(epoch_seconds(last_pub))
    ]
    (lag,) = values(samples, "alpha_publication_lag_seconds")
    assert 0 <= lag < 24 * 3600  # the fixture published it during this test session
    assert kpis
    for k in kpis:
        assert values(samples, "alpha_model_ic", model=k["model"], recipe=k["recipe"], horizon="1") == [
            pytest.approx(k["ic_1"])
        ]
        assert values(samples, "alpha_model_drifted_features", model=k["model"], recipe=k["recipe"]) == [
            float(k["drifted_features"])
        ]
        assert values(
            samples, "alpha_model_health_status", model=k["model"], recipe=k["recipe"], status=k["status"]
        ) == [1.0]
    assert values(samples, "alpha_feature_drift_threshold") == [0.2]
    assert values(samples, "alpha_metrics_source_up", source="serving_store") == [1.0]
    assert values(samples, "alpha_metrics_source_up", source="lake") == [0.0]
    assert values(samples, "alpha_metrics_source_up", source="dagster") == [0.0]
    assert len(values(samples, "alpha_asset_last_materialization_timestamp_seconds")) > 0


def test_lake_gauges_ic_tstat_drift_and_sessions_behind(client, filled_store, tmp_path):
    from alpha_assets.serving.metrics import MetricsSource
    from resources.lake import DeltaLake

    days = filled_store["days"]
    newest = days[-1]
    lake = DeltaLake(tmp_path / "lake")
    later = [d for d in business_days(len(days) + 3) if d > newest]  # the lake's book is 3 sessions ahead
    book = pl.DataFrame({"trade_date": [*days[-2:], *later], "ticker": "A", "weight": 0.1})
    lake.write_window("portfolio", "target_weights", book, days[-2], later[-1])
    health = pl.DataFrame(
        {
            "trade_date": [newest, newest, days[-2]],
            "model": ["ensemble", "xgboost", "xgboost"],
            "recipe": ["base", "base", "base"],
            "z_stat": [-3.1, 0.4, 9.9],
            "reference_ic": [0.05, 0.04, 0.0],
        }
    )
    lake.write_window("monitoring", "model_health", health, days[-2], newest)
    drift = pl.DataFrame(
        {
            "trade_date": [newest, newest],
            "feature": ["ret_5", "vol_20"],
            "psi": [0.31, None],
            "drift": [True, False],
        }
    )
    lake.write_window("monitoring", "feature_drift", drift, newest, newest)
    client.app.state.metrics = MetricsSource(client.app.state.reader, lake=lake, instance=None, ttl=0)

    _, samples = parse(client.get("/metrics").text)
    assert values(samples, "alpha_publication_behind_sessions") == [3.0]
    assert values(samples, "alpha_model_ic_tstat", model="ensemble", recipe="base") == [-3.1]
    # the newest day only
    assert values(samples, "alpha_model_ic_tstat", model="xgboost", recipe="base") == [0.4]
    assert values(samples, "alpha_model_ic_reference", model="ensemble", recipe="base") == [0.05]
    assert values(samples, "alpha_feature_drift", feature="ret_5") == [0.31]
    assert values(samples, "alpha_feature_drift", feature="vol_20") == []  # too few values: no PSI, no sample
    assert values(samples, "alpha_metrics_source_up", source="lake") == [1.0]


def test_last_successful_run_per_job_from_the_dagster_instance(client):
    from dagster import DagsterInstance, asset, materialize

    from alpha_assets.serving.metrics import MetricsSource

    @asset
    def one() -> int:
        return 1

    @asset
    def broken() -> int:
        raise RuntimeError("boom")

    instance = DagsterInstance.ephemeral()
    ok = materialize([one], instance=instance)
    materialize([broken], instance=instance, raise_on_error=False)
    client.app.state.metrics = MetricsSource(client.app.state.reader, lake=None, instance=instance, ttl=0)

    _, samples = parse(client.get("/metrics").text)
    runs = [
        (lab["dagster_job"], v) for n, lab, v in samples if n == "alpha_last_successful_run_timestamp_seconds"
    ]
    end = instance.get_run_record_by_id(ok.run_id).end_time
    # the failed run is not a success
    assert runs == [(ok.dagster_run.job_name, pytest.approx(end, abs=1e-3))]
    assert values(samples, "alpha_metrics_source_up", source="dagster") == [1.0]


def test_gauges_are_cached_for_ttl(filled_store):
    from alpha_assets.serving.api import ServingReader
    from alpha_assets.serving.metrics import MetricsSource

    class Counting(ServingReader):
        calls = 0

        def query(self, sql, **params):
            Counting.calls += 1
            return super().query(sql, **params)

    reader = Counting(filled_store["url"])
    cached = MetricsSource(reader, lake=None, instance=None, ttl=3600)
    first = cached.samples(now=2e9)
    n = Counting.calls
    assert cached.samples(now=2e9 + 60) and Counting.calls == n  # the store is not read again
    lag = dict(((name, tuple(lab.items())), v) for name, lab, v in cached.samples(now=2e9 + 60))
    assert lag[("alpha_publication_lag_seconds", ())] == pytest.approx(
        dict(((name, tuple(lab.items())), v) for name, lab, v in first)[("alpha_publication_lag_seconds", ())]
        + 60
    )  # the lag still moves with the clock
    MetricsSource(reader, lake=None, instance=None, ttl=0).samples()
    assert Counting.calls > n


def test_grafana_dashboard_parses_and_uses_only_exposed_metrics(client):
    board = json.loads(DASHBOARD.read_text())
    assert board["title"] and board["panels"] and board.get("uid")
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 6
    types, _ = parse(client.get("/metrics").text)
    used = set()
    for expr in exprs:
        for name in re.findall(r"\balpha_[a-z0-9_]+", expr):
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            if family != name:
                assert types.get(family) == "histogram", f"{name}: not a histogram's series"
            assert family in types, f"the dashboard queries {name}, which /metrics does not expose"
            used.add(family)
    for needed in (
        "alpha_http_request_duration_seconds",
        "alpha_publication_lag_seconds",
        "alpha_last_successful_run_timestamp_seconds",
        "alpha_model_ic",
        "alpha_feature_drift",
    ):
        assert needed in used
    assert any("histogram_quantile(0.95" in e for e in exprs) and any(
        "histogram_quantile(0.5" in e for e in exprs
    )


def test_rejected_requests_are_counted_under_their_route(filled_store, monkeypatch, tmp_path):
    """A 401 is answered by the authentication middleware before routing: still labelled with the route template;
    /metrics itself takes the API's credentials (Prometheus: ``authorization: {credentials: <key>}``)."""
    from fastapi.testclient import TestClient

    from alpha_assets.serving.api import create_app
    from alpha_assets.serving.metrics import MetricsSource, install_metrics

    monkeypatch.setenv("ALPHA_HOME", str(tmp_path / "no_home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    app = create_app(filled_store["url"], token="s3cret-token-for-metrics-test")
    if not _has_metrics_route(app):
        install_metrics(app, app.state.reader)
    app.state.metrics = MetricsSource(app.state.reader, lake=None, instance=None, ttl=0)
    with TestClient(app) as c:
        assert c.get(f"/api/portfolio?date={filled_store['days'][0]}").status_code == 401
        assert c.get("/metrics").status_code == 401
        r = c.get("/metrics", headers={"Authorization": "Bearer s3cret-token-for-metrics-test"})
    assert r.status_code == 200
    _, samples = parse(r.text)
    name = "alpha_http_request_duration_seconds_count"
    assert values(samples, name, route="/api/portfolio", status="401") == [1.0]
    assert values(samples, name, route="/metrics", status="401") == [1.0]
    assert values(samples, name, route="<unmatched>") == []
