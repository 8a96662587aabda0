"""raw.web_products and raw.web_signals: the vendor's dated catalogue pages, crawled politely, and the sensor that
launches a run for each new catalogue date.

The vendor site serves ``/products/<YYYY-MM-DD>/index.html`` linking that day's ``<TICKER>.html`` pages. A run
fetches each session's index through ``PoliteCrawler`` (per-domain rate and concurrency limits from the
``web_vendor`` resource, robots.txt obeyed, retries with backoff, Retry-After honoured), follows the index's
links that sit in the same dated folder, and parses them. The raw HTML of every fetched page stays in
``web_vendor.raw_dir`` (content-addressed, with a fetch log) so a day can be re-parsed without re-crawling.

Failures are recorded, never fatal: a page that cannot be fetched (404, 429 after retries, timeout) is listed in
the metadata and its ticker-day keeps whatever rows the table already held; a day whose index answers 404 has
no catalogue; a page without the product structure is quarantined as ``quarantine/web/<date>/<ticker>.html``
with a reason file, and the rest of its day is kept.

Point in time. A dated page records the vendor's catalogue for that session, which the vendor publishes by the
scheduled crawl time ``point_in_time.event_time_of("web", d)`` (16:00 UTC). ``event_time`` is that scheduled time
of the page's date, whenever the crawl ran: the clock of every as-of decision is the partition's and the
vendor's, never the wall clock, so two runs over the same site give the same rows (a page fetched at 04:56 UTC
the next morning used to count for the next session). ``fetched_at`` is kept for the audit trail only. This
trusts the vendor's archive to be what was published that day; a vendor known to rewrite its archive must not
be re-crawled for past days (replay the raw HTML kept from the first crawl instead).

``published_at = event_time + the web vendor lag`` (``point_in_time.VENDOR_LAG["web"]`` unless configured).
"""

import json
import posixpath
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    AssetSelection,
    BackfillPolicy,
    Config,
    DefaultSensorStatus,
    MetadataValue,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    multi_asset,
    sensor,
)

from alpha_assets.intake import add_source_fingerprints, keep_table_rows
from alpha_assets.keys import RAW_WEB_PRODUCTS, RAW_WEB_SIGNALS
from alpha_assets.lib.altdata.web import (
    CrawlPolicy,
    FetchResult,
    PoliteCrawler,
    meta_from_url,
)
from alpha_assets.lib.altdata.web.signals import (
    PRODUCTS_SCHEMA,
    SIGNALS_SCHEMA,
    WEB_UNIT,
    crawl_page_rows,
    error_kind,
    web_signal_rows,
)
from partitions import trading_days, window_dates
from partitions.calendar import sessions_between, shift_sessions
from resources.altdata import WebVendorResource
from resources.lake_resource import DeltaLakeResource
from resources.landing import VendorLanding

WEB_KEYS = [RAW_WEB_PRODUCTS, RAW_WEB_SIGNALS]
QUARANTINE_PREFIX = "web"
MIN_FETCHED_SHARE = 0.9
NO_SITE = "no vendor site configured (web_vendor.base_url is empty)"

_CATALOGUE_LINK = re.compile(r"/products/(\d{4}-\d{2}-\d{2})/index\.html?$")


class WebCrawlConfig(Config):
    vendor_lag_minutes: float | None = None  # None: point_in_time.VENDOR_LAG["web"]


def crawl_policy(web_vendor: WebVendorResource) -> CrawlPolicy:
    """The crawler's manners as configured on the resource."""
    return CrawlPolicy(
        user_agent=web_vendor.user_agent,
        requests_per_second=web_vendor.requests_per_second,
        max_concurrency=web_vendor.max_concurrency,
        timeout_s=web_vendor.timeout_s,
        max_retries=web_vendor.max_retries,
    )


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.hrefs.append(href)


def page_links(html: bytes, page_url: str) -> list[str]:
    """Absolute links (fragments dropped, duplicates removed, in page order) to the page's own site."""
    parser = _Links()
    parser.feed(html.decode("utf-8", "replace"))
    parser.close()
    site = urlsplit(page_url)[:2]
    out: dict[str, None] = {}
    for href in parser.hrefs:
        url = urljoin(page_url, href).split("#", 1)[0]
        if urlsplit(url)[:2] == site:
            out[url] = None
    return list(out)


def catalogue_url(base_url: str, d: date) -> str:
    return f"{base_url.rstrip('/')}/products/{d.isoformat()}/index.html"


@dataclass
class Crawl:
    """What one crawl of a window found: product-page results with their (date, ticker), and the days' fates."""

    pages: list[tuple[date, str, FetchResult]] = field(default_factory=list)
    days_without_catalogue: list[str] = field(default_factory=list)  # the day's index answered 404
    days_not_published: list[str] = field(default_factory=list)  # the site lists no catalogue for the day
    index_failures: list[dict] = field(default_factory=list)  # any other index failure
    disallowed_links: list[str] = field(default_factory=list)
    requests_per_domain: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def crawl_catalogues(crawler: PoliteCrawler, base_url: str, days: list[date]) -> Crawl:
    """Fetch each day's index, then every product page it links in its own dated folder. Days the site's home
    page does not list are not requested: a vendor that publishes weekly has no catalogue on the other days, and
    that is not a failure (when the home page cannot be read, every day is requested)."""
    out = Crawl()
    t0 = time.monotonic()
    home = f"{base_url.rstrip('/')}/index.html"
    listing = crawler.fetch(home)
    if listing.ok and listing.sha256 is not None:
        listed = {
            m.group(1)
            for url in page_links(crawler.store.get(listing.sha256), home)
            if (m := _CATALOGUE_LINK.search(urlsplit(url).path))
        }
        out.days_not_published = [d.isoformat() for d in days if d.isoformat() not in listed]
        days = [d for d in days if d.isoformat() in listed]
    targets: dict[str, tuple[date, str]] = {}
    for d, index in zip(days, crawler.fetch_all([catalogue_url(base_url, d) for d in days]), strict=True):
        if index.status == 404:
            out.days_without_catalogue.append(d.isoformat())
            continue
        if not index.ok or index.sha256 is None:
            out.index_failures.append(
                {
                    "trade_date": d.isoformat(),
                    "url": index.url,
                    "kind": error_kind(index),
                    "error": index.error,
                }
            )
            continue
        folder = posixpath.dirname(urlsplit(index.url).path)
        for url in page_links(crawler.store.get(index.sha256), index.url):
            path = urlsplit(url).path
            if not crawler.allowed(url):
                out.disallowed_links.append(path)
            elif posixpath.dirname(path) == folder and url != index.url and (page := meta_from_url(url)):
                targets[url] = (d, page["ticker"])
    for url, result in zip(targets, crawler.fetch_all(targets), strict=True):
        out.pages.append((*targets[url], result))
    out.seconds = time.monotonic() - t0
    out.requests_per_domain = crawler.request_counts()
    return out


def _not_refreshed(context: AssetExecutionContext, lake, reason: str, start: date, end: date):
    """No crawl possible (no site configured): the window keeps every row the tables hold, and the run says so
    loudly (an error in the log, ``refreshed: false`` in the metadata, the fetched check failing)."""
    products, kept_products = keep_table_rows(
        lake, "raw", "web_products", pl.DataFrame(schema=PRODUCTS_SCHEMA), start, end, on=WEB_UNIT
    )
    signals, kept_signals = keep_table_rows(
        lake, "raw", "web_signals", pl.DataFrame(schema=SIGNALS_SCHEMA), start, end, on=WEB_UNIT
    )
    kept_days = sorted({d.isoformat() for d in products["trade_date"].to_list()})
    context.log.error(
        f"raw.web_products / raw.web_signals NOT refreshed for {start}..{end}: {reason}; kept the "
        f"{kept_products} / {kept_signals} rows the tables already hold ({len(kept_days)} day(s))"
    )
    meta = {
        "status": reason,
        "refreshed": False,
        "window": f"{start}..{end}",
        "days_not_refreshed": MetadataValue.json([d.isoformat() for d in sessions_between(start, end)]),
        "days_kept_from_table": MetadataValue.json(kept_days),
    }
    yield Output(
        products.sort("trade_date", "ticker", "product"),
        output_name="web_products",
        metadata={**meta, "rows": products.height, "rows_kept_from_table": kept_products},
    )
    yield Output(
        signals.sort("trade_date", "ticker"),
        output_name="web_signals",
        metadata={**meta, "rows": signals.height, "rows_kept_from_table": kept_signals},
    )
    yield AssetCheckResult(
        check_name="web_signals_values_in_range",
        asset_key=RAW_WEB_SIGNALS,
        passed=True,
        metadata={"status": reason},
    )
    yield AssetCheckResult(
        check_name="web_pages_fetched",
        asset_key=RAW_WEB_PRODUCTS,
        passed=False,
        severity=AssetCheckSeverity.WARN,
        metadata={"status": reason},
    )


@multi_asset(
    outs={
        "web_products": AssetOut(
            key=RAW_WEB_PRODUCTS, metadata={"partition_expr": "trade_date"}, kinds={"polars", "delta"}
        ),
        "web_signals": AssetOut(
            key=RAW_WEB_SIGNALS, metadata={"partition_expr": "trade_date"}, kinds={"polars", "delta"}
        ),
    },
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="alt_data",
    check_specs=[
        AssetCheckSpec(
            "web_signals_values_in_range",
            asset=RAW_WEB_SIGNALS,
            blocking=True,
            description="positive finite prices, stock shares in [0, 1], one row per ticker-day",
        ),
        AssetCheckSpec(
            "web_pages_fetched",
            asset=RAW_WEB_PRODUCTS,
            description=f"at least {MIN_FETCHED_SHARE:.0%} of the linked product pages fetched and parsed",
        ),
    ],
)
def web_products(
    context: AssetExecutionContext,
    config: WebCrawlConfig,
    web_vendor: WebVendorResource,
    landing: VendorLanding,
    lake_store: DeltaLakeResource,
):
    """One row per product per catalogue page (``raw.web_products``) and per ticker-day price level, price change
    and stock shares (``raw.web_signals``), crawled from the vendor site for each session of the window.

    ``web_price_change`` is the mean over a ticker's products of the log price change from the product's
    previous observation; the first session of the window compares with the table's rows for the session
    before the window when they exist. A ticker-day without any parsed product has no ``raw.web_signals`` row.
    Nothing the tables hold is ever lost to a failed crawl: with no ``base_url`` configured the window keeps its
    rows (``_not_refreshed``); an unreachable site, a day whose index fails and a page that cannot be fetched or
    parsed keep the ticker-days the tables already hold; the log and metadata name every day not refreshed."""
    start, end = window_dates(*context.partition_time_window)
    days = sessions_between(start, end)
    lake = lake_store.lake
    if not web_vendor.base_url:
        yield from _not_refreshed(context, lake, NO_SITE, start, end)
        return
    policy = crawl_policy(web_vendor)
    with PoliteCrawler(web_vendor.raw_dir, policy) as crawler:
        crawl = crawl_catalogues(crawler, web_vendor.base_url, days)
        store = crawler.store
    lag = None if config.vendor_lag_minutes is None else timedelta(minutes=config.vendor_lag_minutes)

    # parse; quarantine pages that are not product pages
    pages = crawl_page_rows(crawl.pages, store, lag)
    crawled, failed, errors_by_kind = pages.crawled, pages.failed, pages.errors_by_kind
    quarantined = []
    for name, sha256, error in pages.malformed:
        quarantined.append(landing.quarantine_bytes(QUARANTINE_PREFIX, name, store.get(sha256), error))
        context.log.error(f"quarantined {name}: {error}")
    new_products = crawled.filter(pl.col("error").is_null()).select(list(PRODUCTS_SCHEMA))

    # ticker-days (or whole days) that could not be read now keep the rows the table already holds
    products, kept_rows = keep_table_rows(lake, "raw", "web_products", new_products, start, end, on=WEB_UNIT)
    kept = products.join(new_products.select(WEB_UNIT).unique(), on=WEB_UNIT, how="anti")
    previous = pl.DataFrame(schema=PRODUCTS_SCHEMA)
    if lake.exists("raw", "web_products"):
        prev_day = shift_sessions(start, -1)
        previous = lake.read("raw", "web_products", prev_day, prev_day).select(list(PRODUCTS_SCHEMA))
        previous = previous.cast(PRODUCTS_SCHEMA)
    products = products.sort("trade_date", "ticker", "product")
    not_refreshed = sorted(
        set(crawl.days_without_catalogue) | {f["trade_date"] for f in crawl.index_failures}
    )
    if crawl.days_not_published:
        context.log.info(
            f"web vendor: no catalogue published for {len(crawl.days_not_published)} session(s) of "
            f"the window (the site lists {len(days) - len(crawl.days_not_published)})"
        )
    if not_refreshed:
        context.log.error(
            f"web vendor: {len(not_refreshed)} day(s) not refreshed ({', '.join(not_refreshed)}): "
            f"kept {kept.height} existing product row(s); see index_failures / days_without_catalogue"
        )

    # signals: error rows count as error pages; the previous session gives the first day its price change
    signals = web_signal_rows(crawled, products, previous, kept, start, end)
    signals, kept_signals = keep_table_rows(lake, "raw", "web_signals", signals, start, end, on=WEB_UNIT)
    signals = signals.sort("trade_date", "ticker")

    linked = len(crawl.pages)
    parsed = linked - len(failed)
    parsed_urls = set(new_products["url"].to_list())
    share = parsed / linked if linked else None
    # intervals between request starts over the crawl's duration (which ends with the last answer)
    rps = {
        dom: round((n - 1) / crawl.seconds, 3) if crawl.seconds and n > 1 else 0.0
        for dom, n in crawl.requests_per_domain.items()
    }
    for f in crawl.index_failures:
        errors_by_kind[f"index_{f['kind']}"] = errors_by_kind.get(f"index_{f['kind']}", 0) + 1
    common = {
        "site": web_vendor.base_url,
        "sessions": len(days),
        "pages_linked": linked,
        "pages_fetched": sum(r.ok for _, _, r in crawl.pages),
        "pages_parsed": parsed,
        "errors_by_kind": MetadataValue.json(errors_by_kind),
        "failed_pages": MetadataValue.json(failed),
        "quarantined": MetadataValue.json(quarantined),
        "days_without_catalogue": MetadataValue.json(crawl.days_without_catalogue),
        "index_failures": MetadataValue.json(crawl.index_failures),
        "disallowed_links": MetadataValue.json(sorted(set(crawl.disallowed_links))),
        "requests_per_domain": MetadataValue.json(crawl.requests_per_domain),
        "requests_per_second_measured": MetadataValue.json(rps),
        "requests_per_second_limit": policy.requests_per_second,
        "crawl_seconds": round(crawl.seconds, 3),
        "raw_dir": MetadataValue.path(str(Path(web_vendor.raw_dir))),
        "refreshed": not not_refreshed and not failed,
        "days_not_refreshed": MetadataValue.json(not_refreshed),
        "days_not_published": len(crawl.days_not_published),
    }
    # each partition's event: the pages of its own date (the window's whole map on every day's event was O(days^2))
    add_source_fingerprints(
        context,
        [RAW_WEB_PRODUCTS, RAW_WEB_SIGNALS],
        {r.url: r.sha256 for _, _, r in crawl.pages if r.ok and r.sha256 and r.url in parsed_urls},
        {r.url: d.isoformat() for d, _, r in crawl.pages}.get,
    )
    yield Output(
        products,
        output_name="web_products",
        metadata={
            **common,
            "rows": products.height,
            "rows_kept_from_table": kept_rows,
        },
    )
    yield Output(
        signals,
        output_name="web_signals",
        metadata={**common, "rows": signals.height, "rows_kept_from_table": kept_signals},
    )

    bad_prices = (
        products.filter(~pl.col("price").is_finite() | (pl.col("price") <= 0)).height
        + products["price"].null_count()
    )
    bad_levels = (
        signals.filter(~pl.col("mean_log_price").is_finite()).height + signals["mean_log_price"].null_count()
    )
    shares = ("in_stock_share", "out_of_stock_share")
    bad_shares = signals.filter(
        pl.any_horizontal([~pl.col(c).is_between(0.0, 1.0) | pl.col(c).is_null() for c in shares])
    ).height
    dups = signals.height - signals.select("trade_date", "ticker").unique().height
    yield AssetCheckResult(
        check_name="web_signals_values_in_range",
        asset_key=RAW_WEB_SIGNALS,
        passed=bad_prices == 0 and bad_levels == 0 and bad_shares == 0 and dups == 0,
        metadata={
            "bad_prices": bad_prices,
            "bad_price_levels": bad_levels,
            "bad_shares": bad_shares,
            "duplicate_ticker_days": dups,
        },
    )
    yield AssetCheckResult(
        check_name="web_pages_fetched",
        asset_key=RAW_WEB_PRODUCTS,
        severity=AssetCheckSeverity.WARN,
        passed=(share is None or share >= MIN_FETCHED_SHARE) and not crawl.index_failures,
        metadata={
            "pages_linked": linked,
            "pages_parsed": parsed,
            "share": round(share, 4) if linked else None,
            "index_failures": len(crawl.index_failures),
        },
    )


def evaluate_web_vendor(
    web_vendor: WebVendorResource,
    cursor: str | None,
    today: date | None = None,
    materialized: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[RunRequest], str | None, str | None]:
    """Pure sensor logic: (run requests, new cursor, skip reason).

    Fetches the site's ``/index.html`` through the polite crawler and requests one run per dated catalogue link
    ``/products/<YYYY-MM-DD>/index.html`` whose date is a trading session, not in the future and not in the
    cursor (the JSON list of dates already requested). Run key ``web/<date>``."""
    if not web_vendor.base_url:
        return [], cursor, NO_SITE
    seen: set[str] = set(json.loads(cursor)) if cursor else set()
    today = today or datetime.now(timezone.utc).date()
    home = f"{web_vendor.base_url.rstrip('/')}/index.html"
    with PoliteCrawler(web_vendor.raw_dir, crawl_policy(web_vendor)) as crawler:
        result = crawler.fetch(home)
        if not result.ok or result.sha256 is None:
            return [], cursor, f"vendor site unreachable: {home}: {result.error or f'HTTP {result.status}'}"
        links = page_links(crawler.store.get(result.sha256), home)
    dates = sorted({m.group(1) for url in links if (m := _CATALOGUE_LINK.search(urlsplit(url).path))})
    new = [
        key
        for key in dates
        if key not in seen
        and key not in materialized  # already built from this catalogue (CLI, demo, backfill): nothing to do
        and date.fromisoformat(key) <= today
        and trading_days.has_partition_key(key)
    ]
    requests = [
        RunRequest(
            run_key=f"web/{key}", partition_key=key, asset_selection=WEB_KEYS, tags={"alpha/vendor": "web"}
        )
        for key in new
    ]
    skip = None if requests else f"no new catalogue dates ({len(dates)} listed on {home})"
    return requests, json.dumps(sorted(seen | set(new))), skip


@sensor(
    name="web_vendor_sensor",
    target=AssetSelection.assets(*WEB_KEYS),
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs raw.web_products / raw.web_signals for each new dated catalogue on the vendor site",
)
def web_vendor_sensor(context: SensorEvaluationContext, web_vendor: WebVendorResource):
    done: set[str] = set()
    if web_vendor.base_url:
        try:
            done = set(context.instance.get_materialized_partitions(WEB_KEYS[0]))
        except Exception:  # a context without an instance (tests): nothing known to be materialized
            done = set()
    requests, cursor, skip = evaluate_web_vendor(web_vendor, context.cursor, materialized=done)
    if not requests:
        return SensorResult(skip_reason=SkipReason(skip), cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)


WEB_ASSETS = [web_products]
WEB_SENSORS = [web_vendor_sensor]
