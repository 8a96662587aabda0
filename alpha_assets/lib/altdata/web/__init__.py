"""Scraped web data: a polite crawler (per-domain rate and concurrency limits, robots.txt, retries with
backoff, raw HTML kept for replay) and the parsing of vendor product pages into per ticker-day signals."""

from alpha_assets.lib.altdata.web.crawler import (
    CrawlPolicy,
    FetchResult,
    PoliteCrawler,
    RawHtmlStore,
    parse_retry_after,
    results_summary,
)
from alpha_assets.lib.altdata.web.products import (
    ProductPageError,
    aggregate_web_signals,
    extract_product_rows,
    meta_from_url,
    parse_price,
    parse_product_page,
)

__all__ = [
    "CrawlPolicy",
    "FetchResult",
    "PoliteCrawler",
    "ProductPageError",
    "RawHtmlStore",
    "aggregate_web_signals",
    "extract_product_rows",
    "meta_from_url",
    "parse_price",
    "parse_product_page",
    "parse_retry_after",
    "results_summary",
]
