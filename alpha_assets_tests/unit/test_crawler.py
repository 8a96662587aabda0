"""Crawler politeness and error handling, measured on the demo vendor site served on loopback, and product-page
parsing into per ticker-day signals."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import date, timedelta

import httpx
import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.altdata.web import (
    CrawlPolicy,
    PoliteCrawler,
    ProductPageError,
    aggregate_web_signals,
    extract_product_rows,
    parse_price,
    parse_product_page,
    parse_retry_after,
)
from alpha_assets.lib.altdata.web.products import normalise_availability
from alpha_world.vendor_site import SiteFaults, build_site, product_page_url, serve_site

TICKERS = ["AAA", "BBB", "CCC"]
DAYS = [date(2024, 3, 4) + timedelta(days=i) for i in range(4)]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("vendor_site")
    universe = pl.DataFrame(
        {"ticker": TICKERS, "name": ["Aaa Corp", "Bbb Inc", "Ccc Group"], "sector": ["Energy"] * 3}
    )
    rng = np.random.default_rng(1)
    drivers = pl.DataFrame(
        [(d, t, float(rng.normal())) for d in DAYS for t in TICKERS],
        schema=["trade_date", "ticker", "web_price"],
        orient="row",
    )
    truth = build_site(root / "site", universe, drivers, DAYS, seed=5)
    return root / "site", truth


def _path(day: date, ticker: str) -> str:
    return f"/products/{day.isoformat()}/{ticker}.html"


def _urls(base: str) -> list[str]:
    return [product_page_url(base, d, t) for d in DAYS for t in TICKERS]


@pytest.mark.service
def test_requests_per_domain_stay_within_the_rate_limit(site, tmp_path):
    site_dir, _ = site
    rps = 8.0
    with (
        serve_site(site_dir) as server,
        PoliteCrawler(tmp_path / "raw", CrawlPolicy(requests_per_second=rps)) as c,
    ):
        results = c.fetch_all(_urls(server.url))
        arrivals = sorted(r.at for r in server.requests)
    assert all(r.ok for r in results)
    assert len(arrivals) == len(DAYS) * len(TICKERS) + 1  # + robots.txt
    observed = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    # no one-second window, wherever it starts, holds more requests than the limit
    busiest = max(int(np.searchsorted(arrivals, a + 1.0, side="left")) - i for i, a in enumerate(arrivals))
    print(f"observed {observed:.2f} requests/s against a limit of {rps:g}; busiest 1 s window: {busiest}")
    assert observed <= rps
    assert busiest <= rps


@pytest.mark.service
def test_robots_disallowed_paths_are_never_fetched(site, tmp_path):
    site_dir, _ = site
    with (
        serve_site(site_dir) as server,
        PoliteCrawler(tmp_path / "raw", CrawlPolicy(requests_per_second=50)) as c,
    ):
        private = f"{server.url}/private/pricing-feed.html"
        checkout = f"{server.url}/checkout/cart.html"
        results = c.fetch_all([private, product_page_url(server.url, DAYS[0], "AAA"), checkout])
        paths = server.paths_requested()
    assert paths.count("/robots.txt") == 1
    assert not any(p.startswith(("/private/", "/checkout/")) for p in paths)
    assert [r.ok for r in results] == [False, True, False]
    assert results[0].error.startswith("disallowed by robots.txt") and results[0].attempts == 0


@pytest.mark.service
def test_429_is_retried_only_after_the_retry_after_delay(site, tmp_path):
    site_dir, _ = site
    path = _path(DAYS[1], "AAA")
    faults = SiteFaults(throttled_paths={path}, throttle_times=1, retry_after_s=1.0)
    with (
        serve_site(site_dir, faults=faults) as server,
        PoliteCrawler(tmp_path / "raw", CrawlPolicy(requests_per_second=50)) as c,
    ):
        result = c.fetch(server.url + path)
        hits = [(r.at, r.status) for r in server.requests if r.path == path]
    assert result.ok and result.status == 200 and result.attempts == 2
    assert [status for _, status in hits] == [429, 200]
    assert hits[1][0] - hits[0][0] >= 1.0


@pytest.mark.service
def test_503_is_retried_with_backoff_and_404_is_recorded_once(site, tmp_path):
    site_dir, _ = site
    flaky, missing = _path(DAYS[0], "BBB"), _path(DAYS[0], "CCC")
    faults = SiteFaults(error_paths={flaky}, throttle_times=2, missing_paths={missing})
    policy = CrawlPolicy(requests_per_second=50, backoff_base_s=0.05, max_retries=3)
    with serve_site(site_dir, faults=faults) as server, PoliteCrawler(tmp_path / "raw", policy) as c:
        recovered, gone = c.fetch_all([server.url + flaky, server.url + missing])
        paths = server.paths_requested()
    assert recovered.ok and recovered.attempts == 3 and paths.count(flaky) == 3
    assert (gone.ok, gone.status, gone.attempts, gone.error) == (False, 404, 1, "HTTP 404")
    assert paths.count(missing) == 1


@pytest.mark.service
def test_slow_page_times_out_after_bounded_retries(site, tmp_path):
    site_dir, _ = site
    slow = _path(DAYS[2], "AAA")
    faults = SiteFaults(slow_paths={slow}, slow_delay_s=1.0)
    policy = CrawlPolicy(requests_per_second=50, timeout_s=0.2, max_retries=1, backoff_base_s=0.05)
    with serve_site(site_dir, faults=faults) as server, PoliteCrawler(tmp_path / "raw", policy) as c:
        result = c.fetch(server.url + slow)
        assert server.paths_requested().count(slow) == 2
    assert not result.ok and result.status is None and result.attempts == 2
    assert result.error.startswith("timeout after 0.2s")


@pytest.mark.service
def test_malformed_html_becomes_an_error_row_and_raw_html_is_kept_for_replay(site, tmp_path):
    site_dir, truth = site
    broken = _path(DAYS[3], "BBB")
    with serve_site(site_dir, faults=SiteFaults(malformed_paths={broken})) as server:
        with PoliteCrawler(tmp_path / "raw", CrawlPolicy(requests_per_second=50)) as crawler:
            results = crawler.fetch_all([product_page_url(server.url, DAYS[3], t) for t in TICKERS])
        store = crawler.store
    rows = extract_product_rows(results, store)
    errors = [r for r in rows if r["error"] is not None]
    assert len(errors) == 1 and errors[0]["ticker"] == "BBB" and errors[0]["error"].startswith("parse error")
    good = pl.DataFrame([r for r in rows if r["error"] is None]).select(
        "trade_date", "ticker", "product", "price"
    )
    expected = truth.filter((pl.col("trade_date") == DAYS[3]) & (pl.col("ticker") != "BBB"))
    assert good.sort("ticker", "product").equals(expected.select(good.columns).sort("ticker", "product"))
    # content-addressed: the file name is the SHA-256 of the body, identical to the site's page
    aaa = results[0]
    body = store.get(aaa.sha256)
    assert hashlib.sha256(body).hexdigest() == aaa.sha256
    assert body == (site_dir / "products" / DAYS[3].isoformat() / "AAA.html").read_bytes()
    replayed = sorted(store.replay(), key=lambda item: item[0].url)  # logged in completion order
    assert [r.url for r, _ in replayed] == [r.url for r in results]
    assert extract_product_rows([r for r, _ in replayed], store) == rows


def test_concurrency_per_domain_never_exceeds_the_limit(tmp_path):
    in_flight, peak, lock = 0, 0, threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return httpx.Response(200, text="<ul class='products'></ul></html>")

    policy = CrawlPolicy(requests_per_second=1000, max_concurrency=2)
    with PoliteCrawler(tmp_path / "raw", policy, transport=httpx.MockTransport(handler)) as crawler:
        results = crawler.fetch_all([f"http://vendor.test/p/{i}.html" for i in range(12)], max_workers=8)
    assert all(r.ok for r in results)
    assert peak == 2


def test_robots_request_rate_slows_the_crawler_below_its_own_limit(tmp_path):
    starts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(200, text="User-agent: *\nRequest-rate: 4/1\n")  # 4 requests a second
        starts.append(time.monotonic())
        return httpx.Response(200, text="ok")

    with PoliteCrawler(
        tmp_path / "raw", CrawlPolicy(requests_per_second=100), transport=httpx.MockTransport(handler)
    ) as c:
        c.fetch_all([f"http://vendor.test/{i}" for i in range(4)])
    assert min(np.diff(sorted(starts))) >= 0.24


def test_unreachable_robots_txt_means_nothing_is_fetched(tmp_path):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(500)

    policy = CrawlPolicy(requests_per_second=1000, max_retries=1, backoff_base_s=0.01)
    with PoliteCrawler(tmp_path / "raw", policy, transport=httpx.MockTransport(handler)) as c:
        result = c.fetch("http://vendor.test/products/a.html")
    assert seen == ["/robots.txt", "/robots.txt"]
    assert not result.ok and result.error.startswith("disallowed by robots.txt")


def test_retry_after_accepts_seconds_and_http_dates():
    from datetime import datetime, timezone

    now = datetime(2024, 3, 4, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Mon, 04 Mar 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


PAGE = """<html><body><main id="catalogue"><ul class="products">
<li class="product"><h2 class="product-name">Kettle &amp; Stand</h2><span class="price">$1,299.50</span>
<span class="availability">Only 2 left!</span></li>
<li class="product"><div><span class="name">Drill Pro</span></div><b class="price">USD 89</b>
<span class="availability">Sold out</span></li>
</ul></main></body></html>"""


def test_product_page_parses_names_prices_and_availability():
    assert parse_product_page(PAGE) == [
        {"product": "Kettle & Stand", "price": 1299.5, "availability": "limited"},
        {"product": "Drill Pro", "price": 89.0, "availability": "out_of_stock"},
    ]
    assert parse_product_page('<html><main id="catalogue"><ul class="products"></ul></main></html>') == []


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ("<html><body><h1>Please verify you are human</h1></body></html>", "no product list"),
        (PAGE[: PAGE.index("Drill Pro")], "truncated"),
        (PAGE.replace('<span class="price">$1,299.50</span>', ""), "has no price"),
        (PAGE.replace("$1,299.50", "call us"), "has no number"),
        ('<ul class="products"><li class="product"><span class="price">$3</span></li></ul>', "has no name"),
    ],
)
def test_html_without_the_expected_structure_raises_a_clear_error(html, message):
    with pytest.raises(ProductPageError, match=message):
        parse_product_page(html)


def test_prices_and_availability_wording_are_normalised():
    assert [parse_price(p) for p in ("$12", "€1.234,56", "1 234,50 €", "USD 0.99")] == [
        12.0,
        1234.56,
        1234.5,
        0.99,
    ]
    assert [normalise_availability(a) for a in ("In Stock", "Pre-order", "Low stock", "", "ask")] == [
        "in_stock",
        "preorder",
        "limited",
        "unknown",
        "unknown",
    ]


def test_web_signals_aggregate_per_ticker_day_with_price_changes_and_error_pages():
    d0, d1 = date(2024, 3, 4), date(2024, 3, 5)
    base = {"url": "u", "status": 200, "sha256": None, "error": None}
    rows = [
        {
            **base,
            "trade_date": d0,
            "ticker": "AAA",
            "product": "x",
            "price": 100.0,
            "availability": "in_stock",
        },
        {
            **base,
            "trade_date": d0,
            "ticker": "AAA",
            "product": "y",
            "price": 50.0,
            "availability": "out_of_stock",
        },
        {
            **base,
            "trade_date": d1,
            "ticker": "AAA",
            "product": "x",
            "price": 110.0,
            "availability": "in_stock",
        },
        {
            **base,
            "trade_date": d1,
            "ticker": "AAA",
            "product": "y",
            "price": 50.0,
            "availability": "in_stock",
        },
        {
            **base,
            "trade_date": d1,
            "ticker": "BBB",
            "url": "v",
            "product": None,
            "price": None,
            "availability": None,
            "error": "HTTP 404",
            "status": 404,
        },
    ]
    out = aggregate_web_signals(rows)
    assert out.columns[:2] == ["trade_date", "ticker"] and out.height == 3
    day1 = out.filter((pl.col("trade_date") == d1) & (pl.col("ticker") == "AAA")).row(0, named=True)
    assert day1["n_products"] == 2 and day1["in_stock_share"] == 1.0
    assert day1["web_price_change"] == pytest.approx(np.log(1.1) / 2)
    assert day1["mean_log_price"] == pytest.approx((np.log(110) + np.log(50)) / 2)
    day0 = out.filter(pl.col("trade_date") == d0).row(0, named=True)
    assert day0["web_price_change"] is None and day0["out_of_stock_share"] == 0.5
    bbb = out.filter(pl.col("ticker") == "BBB").row(0, named=True)
    assert (bbb["n_pages"], bbb["n_error_pages"], bbb["n_products"]) == (1, 1, 0)
