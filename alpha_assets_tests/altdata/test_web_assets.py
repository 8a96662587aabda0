"""raw.web_products / raw.web_signals and the vendor-site sensor, against the demo vendor site served on loopback:
rows and signals against the truth, politeness measured at the server, per-page faults, quarantine, the
point-in-time stamps, the lake's previous session, and the sensor's run requests."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey, build_sensor_context, materialize

from alpha_assets.altdata.truth import web_prices_match_site
from alpha_assets.altdata.web_assets import (
    NO_SITE,
    PRODUCTS_SCHEMA,
    SIGNALS_SCHEMA,
    WEB_ASSETS,
    evaluate_web_vendor,
    web_vendor_sensor,
)
from alpha_assets.home import AlphaHome
from alpha_assets.lib.altdata.web.products import normalise_availability
from alpha_assets.lib.altdata.web.signals import web_event_time
from alpha_world.vendor_site import SiteFaults, build_site, serve_site
from resources.altdata import GroundTruthResource, WebVendorResource
from resources.lake import DeltaLake
from resources.landing import S3VendorLanding

PRODUCTS, SIGNALS = AssetKey(["raw", "web_products"]), AssetKey(["raw", "web_signals"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A 4-session vendor site for a small world (about 7 live tickers a day) and its true prices."""
    from alpha_world.simulate import WorldConfig, simulate_world

    root = tmp_path_factory.mktemp("web_world")
    world = simulate_world(WorldConfig(tickers=8, start=date(2024, 1, 2), days=8, seed=3))
    days = list(world.sessions[-4:])
    truth = build_site(
        root / "vendor_site", world.universe, world.drivers, days, world.cfg.seed, truth=root / "ground_truth"
    )
    truth = truth.with_columns(
        pl.col("availability").map_elements(normalise_availability, return_dtype=pl.String)
    )
    return root / "vendor_site", root / "ground_truth", days, truth


def _resources(root: Path, truth_dir: Path, base_url: str, **web) -> dict:
    from alpha_assets.definitions import local_resources

    home = AlphaHome(root).ensure()
    res = local_resources(home)
    web = {"requests_per_second": 100.0, "max_retries": 1, "timeout_s": 5.0, **web}
    res["web_vendor"] = WebVendorResource(base_url=base_url, raw_dir=str(root / "web_raw"), **web)
    res["ground_truth"] = GroundTruthResource(root=str(truth_dir))
    return res


def _run(res: dict, instance, first: date, last: date):
    result = materialize(
        [*WEB_ASSETS, web_prices_match_site],
        resources=res,
        instance=instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )
    assert result.success
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("web_products")[0].metadata.items()
        if k not in ("rows", "delta_version", "window", "uri", "table")
    }
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    return meta, checks


def _lake(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    lake = DeltaLake(AlphaHome(root).lake)
    return lake.read("raw", "web_products"), lake.read("raw", "web_signals")


def _truth_changes(truth: pl.DataFrame) -> pl.DataFrame:
    return (
        truth.sort("ticker", "product", "trade_date")
        .with_columns(
            (pl.col("price").log() - pl.col("price").log().shift(1).over("ticker", "product")).alias("d")
        )
        .group_by("trade_date", "ticker")
        .agg(pl.col("d").mean().alias("true_change"))
    )


def _arrivals(server) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in server.requests:
        out.setdefault(r.host, []).append(r.at)
    return {h: sorted(a) for h, a in out.items()}


@pytest.mark.service
def test_one_run_over_the_site_matches_the_truth_with_point_in_time_stamps(site, tmp_path, instance):
    site_dir, truth_dir, days, truth = site
    with serve_site(site_dir) as server:
        meta, checks = _run(_resources(tmp_path, truth_dir, server.url), instance, days[0], days[-1])
        paths = server.paths_requested()
    products, signals = _lake(tmp_path)

    # every product of every ticker-day, price to the cent and availability as published
    got = products.select("trade_date", "ticker", "product", "price", "availability").sort(
        "trade_date", "ticker", "product"
    )
    want = truth.select(got.columns).sort("trade_date", "ticker", "product")
    assert got.height == want.height == truth.height
    assert got.with_columns(pl.col("price").round(2)).equals(want)
    assert (
        products.group_by("trade_date", "ticker").len().height
        == truth.select("trade_date", "ticker").unique().height
    )

    # signals: one row per ticker-day, the price change equals the truth's mean log change (null on day 1)
    assert (
        signals.height
        == signals.select("trade_date", "ticker").unique().height
        == truth.select("trade_date", "ticker").unique().height
    )
    joined = signals.join(_truth_changes(truth), on=["trade_date", "ticker"])
    first = joined.filter(pl.col("trade_date") == days[0])
    assert first["web_price_change"].null_count() == first.height
    later = joined.filter(pl.col("trade_date") > days[0])
    assert later["web_price_change"].null_count() == 0
    np.testing.assert_allclose(later["web_price_change"], later["true_change"], atol=1e-12)

    # a backfill of historical pages is dated at each day's scheduled crawl, published after the vendor lag
    for frame in (products, signals):
        assert frame.schema["event_time"] == pl.Datetime("us", "UTC")
        stamps = frame.select("trade_date", "event_time", "published_at").unique().sort("trade_date")
        assert stamps.height == len(days)
        for d, event, published in stamps.iter_rows():
            assert event == datetime(d.year, d.month, d.day, 16, 0, tzinfo=timezone.utc)
            assert published == event + timedelta(minutes=30)

    # robots.txt fetched once, /private linked from every index but never requested, raw HTML kept
    assert paths.count("/robots.txt") == 1
    assert not any(p.startswith("/private") for p in paths)
    assert meta["disallowed_links"] == ["/private/pricing-feed.html"]
    shas = set(products["sha256"])
    assert all((tmp_path / "web_raw" / "objects" / s[:2] / f"{s}.html").exists() for s in shas)
    assert (meta["pages_linked"], meta["pages_fetched"], meta["pages_parsed"]) == (
        truth.select("trade_date", "ticker").unique().height,
    ) * 3
    assert meta["errors_by_kind"] == {} and meta["quarantined"] == []
    truth_check = checks["web_prices_match_site"]  # the demo-only check against the site's own prices
    assert truth_check.passed
    assert truth_check.metadata["truth_max_abs_price_error"].value == pytest.approx(0.0, abs=1e-9)
    assert truth_check.metadata["truth_availability_match_share"].value == 1.0
    assert checks["web_signals_values_in_range"].passed and checks["web_pages_fetched"].passed


@pytest.mark.service
def test_requests_per_domain_never_exceed_the_configured_rate(site, tmp_path, instance):
    site_dir, truth_dir, days, _ = site
    rps = 5.0
    with serve_site(site_dir) as server:
        meta, _ = _run(
            _resources(tmp_path, truth_dir, server.url, requests_per_second=rps), instance, days[0], days[1]
        )
        arrivals = _arrivals(server)
        paths = server.paths_requested()
    assert paths[0] == "/robots.txt" and paths.count("/robots.txt") == 1
    assert not any(p.startswith("/private") for p in paths)
    for host, at in arrivals.items():
        assert len(at) >= 10, host
        mean_rate = (len(at) - 1) / (at[-1] - at[0])
        # the most requests any 2-second window holds, wherever it starts
        busiest = max(int(np.searchsorted(at, a + 2.0, side="left")) - i for i, a in enumerate(at)) / 2.0
        print(
            f"{host}: {len(at)} requests, mean {mean_rate:.2f}/s, busiest 2 s window {busiest:.1f}/s, limit {rps:g}"
        )
        assert mean_rate <= rps * 1.05
        assert busiest <= rps * 1.1
    print(f"crawler's own measure: {meta['requests_per_second_measured']}")
    assert all(r <= rps for r in meta["requests_per_second_measured"].values())
    assert sum(meta["requests_per_domain"].values()) == len(paths)


@pytest.mark.service
def test_page_faults_are_reported_quarantined_or_recovered_and_the_day_survives(site, tmp_path, instance):
    site_dir, truth_dir, days, truth = site
    day = days[1]
    tickers = truth.filter(pl.col("trade_date") == day)["ticker"].unique().sort().to_list()
    missing, throttled, slow, broken, *others = tickers
    path = {t: f"/products/{day.isoformat()}/{t}.html" for t in tickers}
    faults = SiteFaults(
        missing_paths={path[missing]},
        throttled_paths={path[throttled]},
        retry_after_s=0.2,
        slow_paths={path[slow]},
        slow_delay_s=1.5,
        malformed_paths={path[broken]},
    )
    with serve_site(site_dir, faults=faults) as server:
        res = _resources(tmp_path, truth_dir, server.url, timeout_s=0.3, max_retries=1)
        meta, checks = _run(res, instance, days[0], day)
        hits = [r.status for r in server.requests if r.path == path[throttled]]
    products, signals = _lake(tmp_path)

    on_day = set(products.filter(pl.col("trade_date") == day)["ticker"])
    assert on_day == {throttled, *others}  # the 429 page recovered after Retry-After; the others are intact
    assert hits == [429, 200]
    assert set(signals.filter(pl.col("trade_date") == day)["ticker"]) == on_day
    assert (
        products.filter(pl.col("trade_date") == days[0]).height
        == truth.filter(pl.col("trade_date") == days[0]).height
    )

    failed = {f["ticker"]: f for f in meta["failed_pages"]}
    assert {t: f["kind"] for t, f in failed.items()} == {
        missing: "not_found",
        slow: "timeout",
        broken: "malformed",
    }
    assert meta["errors_by_kind"] == {"not_found": 1, "timeout": 1, "malformed": 1}

    name = f"{day.isoformat()}/{broken}.html"
    quarantined = tmp_path / "quarantine" / "web" / name
    assert meta["quarantined"] == [str(quarantined)]
    log = [json.loads(line) for line in (tmp_path / "web_raw" / "fetch_log.jsonl").read_text().splitlines()]
    sha = next(e["sha256"] for e in log if e["url"] == server.url + path[broken])
    assert hashlib.sha256(quarantined.read_bytes()).hexdigest() == sha  # the page as served...
    assert (tmp_path / "web_raw" / "objects" / sha[:2] / f"{sha}.html").exists()  # ...and kept in raw_dir
    reason = json.loads(Path(f"{quarantined}.reason.json").read_text())
    assert reason["file"] == f"web/{name}" and "no product list found" in reason["reason"]

    # the values check passes; the fetched share (3 of ~14 linked pages lost) warns
    assert checks["web_signals_values_in_range"].passed
    fetched = checks["web_pages_fetched"]
    assert not fetched.passed and fetched.severity.value == "WARN"


@pytest.mark.service
def test_later_windows_use_the_lake_and_a_failed_refetch_keeps_the_table_rows(site, tmp_path, instance):
    site_dir, truth_dir, days, truth = site
    with serve_site(site_dir) as server:
        res = _resources(tmp_path, truth_dir, server.url)
        _run(res, instance, days[0], days[1])
        _run(res, instance, days[2], days[3])
    _, signals = _lake(tmp_path)
    joined = signals.join(_truth_changes(truth), on=["trade_date", "ticker"]).filter(
        pl.col("trade_date") == days[2]
    )
    assert (
        joined.height and joined["web_price_change"].null_count() == 0
    )  # compared with days[1] from the lake
    np.testing.assert_allclose(joined["web_price_change"], joined["true_change"], atol=1e-12)

    # re-running a day while one page is gone keeps that ticker-day's rows instead of deleting them
    before_products, before_signals = _lake(tmp_path)
    gone = truth.filter(pl.col("trade_date") == days[3])["ticker"].sort()[0]
    faults = SiteFaults(missing_paths={f"/products/{days[3].isoformat()}/{gone}.html"})
    with serve_site(site_dir, faults=faults) as server:
        res = _resources(tmp_path, truth_dir, server.url)
        meta, _ = _run(res, instance, days[3], days[3])
    after_products, after_signals = _lake(tmp_path)
    assert [f["ticker"] for f in meta["failed_pages"]] == [gone]
    key = ["trade_date", "ticker", "product"]
    assert (
        after_products.sort(key).select(key, "price").equals(before_products.sort(key).select(key, "price"))
    )
    kept = after_signals.filter((pl.col("trade_date") == days[3]) & (pl.col("ticker") == gone)).row(
        0, named=True
    )
    was = before_signals.filter((pl.col("trade_date") == days[3]) & (pl.col("ticker") == gone)).row(
        0, named=True
    )
    assert kept["mean_log_price"] == pytest.approx(was["mean_log_price"])
    assert kept["n_error_pages"] == 1 and kept["published_at"] == was["published_at"]


def test_without_a_vendor_site_both_tables_are_empty_with_their_schema(tmp_path, instance):
    res = _resources(tmp_path, tmp_path / "no_truth", "")
    result = materialize(WEB_ASSETS, resources=res, instance=instance, partition_key="2024-01-08")
    assert result.success
    meta = result.asset_materializations_for_node("web_products")[0].metadata
    assert meta["status"].value == NO_SITE and "no vendor site configured" in NO_SITE
    products, signals = _lake(tmp_path)
    assert products.height == signals.height == 0
    assert dict(products.schema) == PRODUCTS_SCHEMA and dict(signals.schema) == SIGNALS_SCHEMA


def test_event_time_is_the_scheduled_crawl_time_of_the_pages_date():
    d = date(2024, 3, 4)
    assert web_event_time(d) == datetime(2024, 3, 4, 16, 0, tzinfo=timezone.utc)  # whenever the crawl ran


@pytest.mark.service
def test_sensor_requests_each_past_catalogue_date_once(site, tmp_path):
    site_dir, _, days, _ = site
    with serve_site(site_dir) as server:
        vendor = WebVendorResource(
            base_url=server.url, raw_dir=str(tmp_path / "raw"), requests_per_second=100
        )
        requests, cursor, skip = evaluate_web_vendor(vendor, None, today=days[1])
        assert [r.partition_key for r in requests] == [d.isoformat() for d in days[:2]]  # not the future ones
        assert [r.run_key for r in requests] == [f"web/{d.isoformat()}" for d in days[:2]] and skip is None
        requests, cursor, _ = evaluate_web_vendor(vendor, cursor, today=days[-1])
        assert [r.partition_key for r in requests] == [d.isoformat() for d in days[2:]]
        again, cursor_again, skip = evaluate_web_vendor(vendor, cursor, today=days[-1])
        assert again == [] and cursor_again == cursor and skip.startswith("no new catalogue dates")
        # a catalogue date whose partition is already materialized (by the CLI, the demo, a backfill) launches nothing
        fresh, _, _ = evaluate_web_vendor(vendor, None, today=days[-1], materialized={days[0].isoformat()})
        assert [r.partition_key for r in fresh] == [d.isoformat() for d in days[1:]]
        result = web_vendor_sensor(build_sensor_context(resources={"web_vendor": vendor}))
        assert {r.partition_key for r in result.run_requests} == {d.isoformat() for d in days}
        assert {tuple(k.path) for r in result.run_requests for k in r.asset_selection} == {
            ("raw", "web_products"),
            ("raw", "web_signals"),
        }
        paths = server.paths_requested()
    assert "/robots.txt" in paths and not any(p.startswith("/private") for p in paths)
    stopped = server.url  # the server is closed now: unreachable
    vendor = WebVendorResource(base_url=stopped, raw_dir=str(tmp_path / "raw"), max_retries=0)
    requests, cursor, skip = evaluate_web_vendor(vendor, '["2024-01-08"]')
    assert requests == [] and cursor == '["2024-01-08"]' and skip.startswith("vendor site unreachable")
    requests, _, skip = evaluate_web_vendor(WebVendorResource(raw_dir=str(tmp_path / "raw")), None)
    assert requests == [] and skip == NO_SITE


def test_s3_landing_quarantines_bytes_with_a_reason():
    moto = pytest.importorskip("moto")
    import boto3

    with moto.mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="vendor")
        landing = S3VendorLanding(bucket="vendor")
        where = landing.quarantine_bytes("web", "2024-01-08/AAA.html", b"<html>", "no product list found")
        s3 = boto3.client("s3", region_name="us-east-1")
        body = s3.get_object(Bucket="vendor", Key="quarantine/web/2024-01-08/AAA.html")["Body"].read()
        reason = json.loads(
            s3.get_object(Bucket="vendor", Key="quarantine/web/2024-01-08/AAA.html.reason.json")[
                "Body"
            ].read()
        )
    assert where == "s3://vendor/quarantine/web/2024-01-08/AAA.html" and body == b"<html>"
    assert reason["file"] == "web/2024-01-08/AAA.html" and reason["reason"] == "no product list found"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.service
def test_an_unconfigured_or_unreachable_vendor_never_overwrites_the_web_rows(site, tmp_path, instance):
    """Issue 9 #2: `alpha materialize` without ALPHA_WEB_VENDOR_URL took raw.web_products 780 -> 468 rows."""
    site_dir, truth_dir, days, _ = site
    with serve_site(site_dir) as server:
        _run(_resources(tmp_path, truth_dir, server.url), instance, days[0], days[3])
    before_products, before_signals = _lake(tmp_path)
    assert before_products.height and before_signals.height
    key = ["trade_date", "ticker", "product"]

    for url in ("", f"http://127.0.0.1:{_free_port()}"):  # not configured; configured but nobody answers
        res = _resources(tmp_path, truth_dir, url, max_retries=0, timeout_s=1.0)
        meta, checks = _run(res, instance, days[0], days[3])
        products, signals = _lake(tmp_path)
        assert products.sort(key).equals(before_products.sort(key)), url
        assert signals.sort("trade_date", "ticker").equals(before_signals.sort("trade_date", "ticker")), url
        assert meta["refreshed"] is False and len(meta["days_not_refreshed"]) == len(days), url
        assert not checks["web_pages_fetched"].passed, url
