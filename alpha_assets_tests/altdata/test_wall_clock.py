"""Results do not depend on the wall clock (issue 9 #8): the web tables crawled at two different times of day
from the same seeded site are identical except for the audit column ``fetched_at``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from alpha_assets_tests.altdata.test_web_assets import _lake, _resources, _run
from alpha_assets_tests.altdata.test_web_assets import site as site  # noqa: F401 (the fixture)
from alpha_world.vendor_site import serve_site


def _frozen_clock(at: datetime):
    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return at if tz else at.replace(tzinfo=None)

    return Clock


@pytest.mark.service
def test_two_crawls_at_different_wall_clocks_give_identical_tables(site, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from alpha_assets.lib.altdata.web import crawler

    site_dir, truth_dir, days, _ = site
    # 04:56 UTC the morning after the last session (a "live" crawl), and years later (a backfill).
    clocks = {
        "morning_after": datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), timezone.utc)
        + timedelta(hours=4, minutes=56),
        "years_later": datetime(2031, 6, 1, 12, 0, tzinfo=timezone.utc),
    }
    tables = {}
    for name, at in clocks.items():
        monkeypatch.setattr(crawler, "datetime", _frozen_clock(at))
        root = tmp_path / name
        with serve_site(site_dir) as server, DagsterInstance.ephemeral() as instance:
            _run(_resources(root, truth_dir, server.url), instance, days[0], days[-1])
        products, signals = _lake(root)
        assert products["fetched_at"].dt.date().max() == at.date()  # the clock did change
        # fetched_at is the audit trail; the url differs only by the loopback server's port
        products = products.drop("fetched_at").with_columns(pl.col("url").str.replace(r"^http://[^/]+", ""))
        tables[name] = (products.sort(products.columns), signals)

    (p1, s1), (p2, s2) = tables.values()
    diff = [c for c in p1.columns if not p1[c].equals(p2[c])]
    assert p1.height > 0 and diff == [], (diff, p1.select(diff).head(3), p2.select(diff).head(3))
    key = ["trade_date", "ticker"]
    assert s1.sort(key).equals(s2.sort(key))
    last = p1.filter(pl.col("trade_date") == days[-1])
    assert last["event_time"].dt.date().unique().to_list() == [days[-1]]  # counted for its own session
