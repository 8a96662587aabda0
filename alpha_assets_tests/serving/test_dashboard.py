"""The dashboard's pages over a filled serving store (server side): every page renders its charts with the store's
data, the book follows the date picker, and an empty store shows how to fill it. The browser tests
(test_browser.py) check the same pages render in Chromium."""

from __future__ import annotations

import re
from datetime import date, timedelta

import polars as pl
import pytest
from fastapi.testclient import TestClient

from alpha_assets.serving.api import create_app
from alpha_assets.serving.dashboard import NO_PLOTS, PAGES, monthly_returns

CHARTS = {
    "/": ["fund-nav", "fund-drawdown", "fund-pnl", "fund-exposures"],
    "/book": ["book-weights", "book-exposures"],
    "/risk": ["risk-var", "risk-usage"],
    "/models": ["models-ic", "models-drift"],
    "/pipeline": ["pipeline-freshness", "pipeline-faults", "pipeline-runs"],
    "/reports": [],  # pictures, not charts (test_reports.py)
}


@pytest.fixture(scope="module")
def client(filled_store):
    return TestClient(create_app(filled_store["url"], token="", dashboard=True))


@pytest.mark.parametrize("path", [p for p, _ in PAGES])
def test_every_page_renders_its_charts_and_the_nav_bar(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/static/plotly.min.js">' in r.text and "cdn" not in r.text.lower()
    for div in CHARTS[path]:
        assert f'id="{div}"' in r.text, div
    assert all(f'href="{p}"' in r.text for p, _ in PAGES)


def test_plotly_js_is_served_from_the_python_package(client):
    r = client.get("/static/plotly.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/javascript")
    assert len(r.content) > 1_000_000 and b"plotly" in r.content[:2000].lower()


def test_charts_format_percentages_and_nav_without_offsets(client):
    fund = client.get("/").text
    assert '"tickformat":",.0f"' in fund and '"tickformat":".1%"' in fund
    assert '"tickformat":".1%"' in client.get("/risk").text


def test_book_page_follows_the_date_picker(client, filled_store):
    day = filled_store["days"][3]
    page = client.get("/book", params={"date": day.isoformat()}).text
    assert f"Book on {day}" in page and f'<option value="{day}" selected>' in page
    assert len(re.findall(r"<option value=", page)) == len(filled_store["days"])
    assert page.count("<tr>") >= 30  # one row per position (plus the KPI-free header)


def test_book_page_for_a_day_without_a_book_says_so(client, filled_store):
    saturday = filled_store["days"][0] + timedelta(days=(5 - filled_store["days"][0].weekday()) % 7)
    r = client.get("/book", params={"date": saturday.isoformat()})
    assert r.status_code == 404 and "nothing published for that day" in r.text
    r = client.get("/book", params={"date": "not-a-date"})
    assert r.status_code == 404 and "is not a date (YYYY-MM-DD)" in r.text


def test_an_empty_store_shows_how_to_fill_it(tmp_path):
    c = TestClient(create_app(f"sqlite:///{tmp_path}/serving.db", token="", dashboard=True))
    for path, _ in PAGES:
        r = c.get(path)
        hint = NO_PLOTS if path == "/reports" else "nothing published yet: run `make demo`"
        assert r.status_code == 200 and hint in r.text, path
        assert "Traceback" not in r.text


def test_monthly_returns_compound_the_daily_net_returns():
    perf = pl.DataFrame(
        {
            "trade_date": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 2, 1)],
            "net_return": [0.01, -0.02, 0.03],
        }
    )
    got = {(y, m): r for y, m, r in monthly_returns(perf).iter_rows()}
    assert got[(2024, 1)] == pytest.approx(1.01 * 0.98 - 1) and got[(2024, 2)] == pytest.approx(0.03)
