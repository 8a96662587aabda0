"""The dashboard's Reports page: the pipeline's pictures reach it through the serving store's ``plots`` table (the
latest picture per plot name, written by the asset that draws it), are shown inline with what drew them, and are
served by name behind the same keys as every page; each picture's Dagster metadata links to its anchor there."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from fastapi.testclient import TestClient

from alpha_assets.serving import store
from alpha_assets.serving.api import ServingReader, create_app
from alpha_assets.serving.dashboard import NO_PLOTS, PAGES
from alpha_assets.serving.security import KeyRing, key_line
from alpha_assets_tests.serving.synthetic import fill_store

PM = "ak_pm-secret-key"
DAY = date(2024, 3, 1)


def png(label: str) -> bytes:
    """A real PNG (matplotlib) that differs by ``label``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.set_title(label)
    ax.plot([0, 1, 2], [0, len(label), 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    plt.close(fig)
    return buf.getvalue()


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """An empty serving store's URL: the embedded SQLite file, and PostgreSQL (skipped without ALPHA_TEST_PG_URL)."""
    if request.param == "embedded":
        return f"sqlite:///{tmp_path / 'serving' / 'serving.db'}"
    return request.getfixturevalue("pg_serving_url")


def stored(url: str) -> dict[str, dict]:
    eng = store.serving_engine(url)
    with eng.connect() as c:
        return {r["name"]: dict(r) for r in c.execute(store.PLOTS.select()).mappings()}


def test_a_plot_is_stored_and_its_latest_picture_replaces_the_previous_one_only(store_url):
    eng = store.serving_engine(store_url)
    first, tree, second = png("ic v1"), png("tree"), png("ic v2")
    store.write_plot(eng, "ic_over_time", "IC over time", "reports/model_report", first, trade_date=DAY)
    store.write_plot(
        eng,
        "hrp_dendrogram",
        "HRP tree",
        "portfolio/target_weights",
        tree,
        partition="2024-02-26...2024-03-01",
        trade_date=DAY,
    )
    later = datetime(2024, 3, 4, 22, 15, 0, tzinfo=UTC)
    store.write_plot(
        eng,
        "ic_over_time",
        "IC over time (rerun)",
        "reports/model_report",
        second,
        trade_date=DAY + timedelta(days=3),
        written_at=later,
    )
    rows = stored(store_url)
    assert sorted(rows) == ["hrp_dendrogram", "ic_over_time"]  # one row per name; the other plot stays
    assert (
        bytes(rows["ic_over_time"]["png"]) == second
        and rows["ic_over_time"]["title"] == "IC over time (rerun)"
    )
    assert rows["ic_over_time"]["trade_date"] == DAY + timedelta(days=3)
    assert bytes(rows["hrp_dendrogram"]["png"]) == tree
    assert rows["hrp_dendrogram"]["partition_key"] == "2024-02-26...2024-03-01"
    # written_at is UTC: the same instant whichever backend (PostgreSQL keeps the zone, SQLite the UTC wall time)
    assert store.iso_utc(rows["ic_over_time"]["written_at"]) == "2024-03-04T22:15:00Z"
    # the schema the publisher creates holds the table too, and leaves the plots alone
    store.create_schema(eng)
    assert sorted(stored(store_url)) == ["hrp_dendrogram", "ic_over_time"]


def test_a_plot_that_is_not_a_png_or_has_a_bad_name_is_refused(tmp_path):
    eng = store.serving_engine(f"sqlite:///{tmp_path / 'serving.db'}")
    with pytest.raises(ValueError, match="not a PNG"):
        store.write_plot(eng, "ic_over_time", "IC", "reports/model_report", b"<svg/>")
    for bad in ("../etc/passwd", "IC", "a b", ""):
        with pytest.raises(ValueError, match="lowercase letters, digits or _"):
            store.write_plot(eng, bad, "IC", "reports/model_report", png("x"))
    with pytest.raises(ValueError, match="time zone"):
        store.write_plot(eng, "ic", "IC", "reports/model_report", png("x"), written_at=datetime(2024, 1, 1))


@pytest.fixture
def plots_store(store_url) -> dict:
    """A store with published days (the API's fixtures' write path) and three plots."""
    eng = store.serving_engine(store_url)
    fill_store(eng, names=6, days=3, seed=2)
    pictures = {
        "hrp_dendrogram": ("HRP cluster tree, long book 2024-01-04", "portfolio/target_weights"),
        "ic_over_time": ("IC over time", "reports/model_report"),
        "summary_plot": ("mean |SHAP| on 2024-01-04", "models/shap_values"),
    }
    out = {}
    for name, (title, asset) in pictures.items():
        out[name] = png(name)
        store.write_plot(
            eng, name, title, asset, out[name], partition="2024-01-04", trade_date=date(2024, 1, 4)
        )
    return {"url": store_url, "pictures": pictures, "png": out}


def test_reports_page_shows_every_stored_plot_inline_and_serves_its_bytes(plots_store):
    c = TestClient(create_app(plots_store["url"], token="", dashboard=True, lake=None))
    page = c.get("/reports")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert ("/reports", "Reports") in PAGES and '<a href="/reports" class=on>Reports</a>' in page.text
    for name, (title, asset) in plots_store["pictures"].items():
        section = re.search(rf'<section class="card plot" id="{name}">(.*?)</section>', page.text).group(1)
        assert f"<h2>{title}</h2>" in section and f"<code>{asset}</code>" in section
        assert "partition 2024-01-04" in section and "day 2024-01-04" in section
        assert re.search(
            r"written <span class=\"written\">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</span>", section
        )
        src = re.search(r'<img src="([^"]+)" alt="([^"]+)"', section)
        assert src.group(2) == title
        img = c.get(src.group(1))
        assert img.status_code == 200 and img.headers["content-type"] == "image/png"
        assert img.content == plots_store["png"][name]
        # a browser that has it already is told so (the ETag changes when a new picture is written)
        assert c.get(src.group(1), headers={"If-None-Match": img.headers["etag"]}).status_code == 304


def test_an_unknown_plot_is_a_404_that_says_so_and_no_path_is_ever_read(plots_store):
    c = TestClient(create_app(plots_store["url"], token="", dashboard=True, lake=None))
    r = c.get("/reports/no_such_plot.png")
    assert r.status_code == 404
    assert r.text == (
        "no plot named 'no_such_plot' in the serving store (the Reports page, /reports, lists the "
        "plots there are)"
    )
    for path in (
        "/reports/..%2F..%2Fetc%2Fpasswd.png",
        "/reports/%2Fetc%2Fpasswd.png",
        "/reports/../serving.db.png",
        "/reports/HRP_Dendrogram.png",
        "/reports/hrp_dendrogram.PNG",
    ):
        r = c.get(path)
        assert r.status_code == 404 and r.content != plots_store["png"]["hrp_dendrogram"], path
        assert not r.headers["content-type"].startswith("image/"), path


def test_the_reports_page_and_images_refuse_a_request_without_credentials_like_the_book(plots_store):
    keys = KeyRing(KeyRing.parse(key_line("pm1", "reader", PM), "keys.txt"), ["keys.txt"])
    c = TestClient(
        create_app(plots_store["url"], dashboard=True, keys=keys, lake=None), follow_redirects=False
    )
    book = c.get("/book")
    assert book.status_code == 401
    for path in ("/reports", "/reports/hrp_dendrogram.png", "/reports/no_such_plot.png"):
        r = c.get(path)
        assert r.status_code == book.status_code and "no credentials" in r.text, path
        assert r.headers["www-authenticate"] == book.headers["www-authenticate"], path
        assert r.headers["content-type"] == book.headers["content-type"], path
        assert r.text.replace(path, "/book") == book.text, path  # the same sign-in page, back to this path
        assert c.get(path, headers={"Authorization": "Bearer ak_guess"}).status_code == 401, path
    auth = {"Authorization": f"Bearer {PM}"}
    assert c.get("/reports", headers=auth).status_code == 200
    img = c.get("/reports/hrp_dendrogram.png", headers=auth)
    assert img.status_code == 200 and img.content == plots_store["png"]["hrp_dendrogram"]


def test_a_store_without_plots_shows_a_one_line_hint(tmp_path):
    published = f"sqlite:///{tmp_path / 'published' / 'serving.db'}"
    fill_store(store.serving_engine(published), names=6, days=2, seed=1)  # days published, no picture yet
    missing = f"sqlite:///{tmp_path / 'none' / 'serving.db'}"  # no store at all
    for url in (published, missing):
        r = TestClient(create_app(url, token="", dashboard=True, lake=None)).get("/reports")
        assert r.status_code == 200 and f'<div class="empty">{NO_PLOTS}</div>' in r.text, url
        assert "<img" not in r.text and "Traceback" not in r.text and "\n" not in NO_PLOTS
    assert ServingReader(missing).plots() == [] and ServingReader(missing).plot_png("ic_over_time") is None


def _small_book(n_long: int = 5):
    """A day's long/short book and 70 sessions of prices for its names (what target_weights hands hrp_picture)."""
    import numpy as np

    rng = np.random.default_rng(4)
    tickers = [f"T{i:02d}" for i in range(2 * n_long)]
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(70)]
    factor = rng.normal(0, 0.01, len(days))
    rows = []
    for k, t in enumerate(tickers):
        rets = factor * (1 + k % 3) + rng.normal(0, 0.01, len(days))
        close = 100 * np.cumprod(1 + rets)
        rows += [{"trade_date": d, "ticker": t, "close": float(c)} for d, c in zip(days, close, strict=True)]
    prices = pl.DataFrame(rows)
    book = pl.DataFrame(
        {
            "trade_date": [days[-1]] * len(tickers),
            "ticker": tickers,
            "side": ["long"] * n_long + ["short"] * n_long,
        }
    )
    return book, prices, days[-1]


def test_the_hrp_picture_gives_its_dashboard_link_and_stores_the_same_png(tmp_path, monkeypatch):
    from dagster import MarkdownMetadataValue, UrlMetadataValue

    from alpha_assets.lib.portfolio import PortfolioLimits
    from alpha_assets.portfolio.assets import hrp_picture

    url = f"sqlite:///{tmp_path / 'serving' / 'serving.db'}"
    monkeypatch.setenv("ALPHA_SERVING_URL", url)
    monkeypatch.setenv("ALPHA_DASHBOARD_URL", "https://dash.fund.example/")
    book, prices, day = _small_book()
    meta = hrp_picture(book, prices, 60, PortfolioLimits(), partition=f"{day}")
    assert set(meta) == {"hrp_dendrogram", "hrp_dendrogram_dashboard"}
    assert isinstance(meta["hrp_dendrogram"], MarkdownMetadataValue)  # the picture stays on the asset page
    link = meta["hrp_dendrogram_dashboard"]
    assert (
        isinstance(link, UrlMetadataValue) and link.url == "https://dash.fund.example/reports#hrp_dendrogram"
    )
    row = stored(url)["hrp_dendrogram"]
    drawn = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", meta["hrp_dendrogram"].value).group(1))
    assert bytes(row["png"]) == drawn and drawn.startswith(store.PNG_SIGNATURE)
    assert (row["title"], row["asset_key"], row["partition_key"], row["trade_date"]) == (
        f"HRP cluster tree, long book {day}",
        "portfolio/target_weights",
        str(day),
        day,
    )
    # and the dashboard serves it under the anchor the link names
    c = TestClient(create_app(url, token="", dashboard=True, lake=None))
    assert 'id="hrp_dendrogram"' in c.get("/reports").text
    assert c.get("/reports/hrp_dendrogram.png").content == drawn


def test_the_model_reports_plots_link_to_the_local_dashboard_by_default(tmp_path, monkeypatch):
    from alpha_assets.models.report import _plots

    url = f"sqlite:///{tmp_path / 'serving.db'}"
    monkeypatch.setenv("ALPHA_SERVING_URL", url)
    monkeypatch.delenv("ALPHA_DASHBOARD_URL", raising=False)
    days = [date(2024, 1, 2) + timedelta(days=i) for i in range(30)]
    ic = pl.DataFrame(
        {
            "trade_date": days * 2,
            "ic": [0.05 * ((i % 7) - 3) for i in range(60)],
            "name": ["ensemble/base"] * 30 + ["alpha_score (traded)"] * 30,
        }
    )
    quantiles = pl.DataFrame(
        {"quantile": [1, 2, 3, 4, 5], "mean_label": [-2e-4, -1e-4, 0.0, 1e-4, 3e-4], "n": [10] * 5}
    )
    weights = pl.DataFrame(
        {
            "trade_date": days[:3] * 2,
            "model": ["ridge"] * 3 + ["lightgbm"] * 3,
            "weight": [1.0, 0.6, 0.5, 0.0, 0.4, 0.5],
        }
    )
    (tmp_path / "draw").mkdir()
    meta = _plots({"daily_ic": ic, "quantiles": quantiles}, weights, tmp_path / "draw", days[-1])
    names = ["ensemble_weights", "ic_over_time", "quantile_returns"]
    assert sorted(meta) == sorted(names + [f"{n}_dashboard" for n in names])
    for n in names:
        assert meta[f"{n}_dashboard"].url == f"http://127.0.0.1:8050/reports#{n}"
    rows = stored(url)
    assert sorted(rows) == names
    assert all(
        r["asset_key"] == "reports/model_report" and r["trade_date"] == days[-1] for r in rows.values()
    )
    assert all(bytes(r["png"]).startswith(store.PNG_SIGNATURE) for r in rows.values())


def test_a_store_that_cannot_be_written_never_fails_the_picture(tmp_path, monkeypatch):
    from alpha_assets.metadata import plot_metadata

    picture = tmp_path / "p.png"
    picture.write_bytes(png("x"))
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("ALPHA_SERVING_URL", f"sqlite:///{tmp_path / 'file' / 'serving.db'}")
    meta = plot_metadata("ic_over_time", picture, "IC over time", "reports/model_report")
    assert set(meta) == {"ic_over_time", "ic_over_time_dashboard"}
