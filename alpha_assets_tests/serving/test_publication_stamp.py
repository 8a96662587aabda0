"""Served data says what it is built from and how far behind the lake it is (issue 20 #4).

Every API JSON response carries ``as_of`` (the published trading day it is built from) and ``published_at`` (that
day's publication time, UTC with a Z), as fields of the object and as X-Alpha-As-Of / X-Alpha-Published-At headers;
every dashboard page shows them in its header. With a lake whose book runs past the newest published day, the API
and the pages say by how many trading sessions (a warning banner on the pages); up to date or without a lake, no
banner."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import polars as pl
import pytest
from fastapi.testclient import TestClient

from alpha_assets.serving.api import create_app
from partitions.calendar import sessions_between

JSON_ROUTES = [
    "/api/portfolio",
    "/api/exposures",
    "/api/performance",
    "/api/risk",
    "/api/models",
    "/api/pipeline",
]
PAGES = ["/", "/book", "/risk", "/models", "/pipeline"]


def _published_at(path, day) -> str:
    """The day's publication time as the store holds it (naive UTC), in ISO 8601 with a Z."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (value,) = con.execute(
            "SELECT published_at FROM publications WHERE trade_date = ?", (day.isoformat(),)
        ).fetchone()
    finally:
        con.close()
    return value.replace(" ", "T") + "Z"


def _lake_with_book(root, days):
    """A lake whose portfolio.target_weights holds ``days`` (two names a day)."""
    from resources.lake import DeltaLake

    lake = DeltaLake(root)
    frame = pl.DataFrame(
        {
            "trade_date": [d for d in days for _ in range(2)],
            "ticker": ["A", "B"] * len(days),
            "weight": [0.5, -0.5] * len(days),
        }
    )
    lake.write_window("portfolio", "target_weights", frame, days[0], days[-1])
    return lake


@pytest.fixture(scope="module")
def unlinked(filled_store):
    return TestClient(create_app(filled_store["url"], token="", dashboard=True, lake=None))


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_every_json_response_names_its_day_and_publication_time(unlinked, filled_store, route):
    newest = filled_store["days"][-1]
    for encoding in ("identity", "gzip"):
        r = unlinked.get(route, headers={"Accept-Encoding": encoding})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["as_of"] == r.headers["X-Alpha-As-Of"] == newest.isoformat()
        assert (
            body["published_at"]
            == r.headers["X-Alpha-Published-At"]
            == _published_at(filled_store["path"], newest)
        )
        assert "X-Alpha-Behind-Sessions" not in r.headers  # no lake: unknown, not claimed


@pytest.mark.parametrize("route", ["/api/portfolio", "/api/exposures", "/api/risk"])
def test_a_past_day_is_stamped_with_that_days_publication(unlinked, filled_store, route):
    day = filled_store["days"][3]
    r = unlinked.get(route, params={"date": day.isoformat()})
    assert r.json()["as_of"] == r.headers["X-Alpha-As-Of"] == day.isoformat()
    assert r.json()["published_at"] == _published_at(filled_store["path"], day)


def test_a_range_is_stamped_with_its_newest_day(unlinked, filled_store):
    days = filled_store["days"]
    r = unlinked.get("/api/performance", params={"from": days[2].isoformat(), "to": days[9].isoformat()})
    assert r.json()["as_of"] == r.headers["X-Alpha-As-Of"] == days[9].isoformat()


def test_every_page_shows_its_day_and_publication_time(unlinked, filled_store):
    newest = filled_store["days"][-1]
    for path in PAGES:
        r = unlinked.get(path)
        assert r.status_code == 200, path
        assert f'<b id="as-of">{newest}</b>' in r.text, path
        assert f'<span id="published-at">{_published_at(filled_store["path"], newest)}</span>' in r.text, path
        assert 'id="behind"' not in r.text
    day = filled_store["days"][5]
    assert f'<b id="as-of">{day}</b>' in unlinked.get("/book", params={"date": day.isoformat()}).text


def test_behind_the_lake_the_api_and_every_page_say_by_how_many_sessions(filled_store, tmp_path):
    newest = filled_store["days"][-1]
    ahead = sessions_between(newest + timedelta(days=1), newest + timedelta(days=10))[:2]
    lake = _lake_with_book(tmp_path / "lake", [newest, *ahead])
    c = TestClient(create_app(filled_store["url"], token="", dashboard=True, lake=lake))
    health = c.get("/api/health").json()
    assert (health["behind_sessions"], health["lake_book_day"], health["as_of"]) == (
        2,
        ahead[-1].isoformat(),
        newest.isoformat(),
    )
    for route in JSON_ROUTES:
        r = c.get(route)
        assert r.headers["X-Alpha-Behind-Sessions"] == "2", route
        assert r.headers["X-Alpha-Lake-Book-Day"] == ahead[-1].isoformat(), route
    for path in PAGES:
        text = c.get(path).text
        assert 'id="behind"' in text and "2 sessions behind the lake" in text, path
        assert f"runs to {ahead[-1]}" in text and f"--from {newest} --to {ahead[-1]}" in text, path


def test_up_to_date_with_the_lake_there_is_no_banner(filled_store, tmp_path):
    days = filled_store["days"]
    lake = _lake_with_book(tmp_path / "lake", days[-3:])
    c = TestClient(create_app(filled_store["url"], token="", dashboard=True, lake=lake))
    assert c.get("/api/health").json()["behind_sessions"] == 0
    assert c.get("/api/risk").headers["X-Alpha-Behind-Sessions"] == "0"
    text = c.get("/").text
    assert 'id="behind"' not in text and "up to date with the lake" in text
