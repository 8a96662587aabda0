"""A crawl's pages turned into the tables' rows (pure: the asset does the crawling, the quarantine and the writes).

``crawl_page_rows``: one row per product of each catalogue page, one error row per page that failed (fetch, HTTP or
parse), each stamped with when it was fetched, when its content counts as observed (the scheduled crawl time of
its date) and when it counts as published (that plus the vendor's lag); the failed pages with the kind of failure,
and the malformed ones (fetched but not a product page) to quarantine. ``web_signal_rows``: per ticker-day price
level, price change and stock shares of the pages fetched now, the first session's change measured from the
session before the window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import polars as pl

from alpha_assets.lib.altdata import point_in_time as pit
from alpha_assets.lib.altdata.web.crawler import FetchResult, RawHtmlStore
from alpha_assets.lib.altdata.web.products import ROW_SCHEMA, aggregate_web_signals, extract_product_rows

WEB_UNIT = ["trade_date", "ticker"]  # a catalogue page: what one fetch replaces
PRODUCTS_SCHEMA = pl.Schema(
    {
        "trade_date": pl.Date(),
        "ticker": pl.String(),
        "product": pl.String(),
        "price": pl.Float64(),
        "availability": pl.String(),
        "url": pl.String(),
        "sha256": pl.String(),  # the page's raw HTML in web_vendor.raw_dir
        "fetched_at": pit.TS,
        "event_time": pit.TS,
        "published_at": pit.TS,
    }
)
SIGNALS_SCHEMA = pl.Schema(
    {
        "trade_date": pl.Date(),
        "ticker": pl.String(),
        "n_pages": pl.Int64(),
        "n_error_pages": pl.Int64(),
        "n_products": pl.Int64(),
        "mean_log_price": pl.Float64(),
        "web_price_change": pl.Float64(),
        "in_stock_share": pl.Float64(),
        "out_of_stock_share": pl.Float64(),
        "event_time": pit.TS,
        "published_at": pit.TS,
    }
)
CRAWLED_SCHEMA = pl.Schema(
    {**pl.Schema(ROW_SCHEMA), "fetched_at": pit.TS, "event_time": pit.TS, "published_at": pit.TS}
)


def web_event_time(trade_date: date) -> datetime:
    """When a dated page's content counts as observed: the scheduled crawl time of its date. It depends on the
    partition only, never on when the page was fetched."""
    return pit.event_time_of("web", trade_date)


def error_kind(result: FetchResult) -> str:
    """The kind of a failed fetch: disallowed, timeout, not_found, throttled, server_error, http_<status> or
    transport."""
    error = result.error or ""
    if error.startswith("disallowed"):
        return "disallowed"
    if error.startswith("timeout"):
        return "timeout"
    if result.status == 404:
        return "not_found"
    if result.status == 429:
        return "throttled"
    if result.status is not None and result.status >= 500:
        return "server_error"
    if result.status is not None:
        return f"http_{result.status}"
    return "transport"


def _fetched_at(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(timezone.utc)


@dataclass
class PageRows:
    crawled: pl.DataFrame  # CRAWLED_SCHEMA: every product row, and one error row per failed page
    failed: list[dict] = field(default_factory=list)  # trade_date, ticker, url, kind, error
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    malformed: list[tuple[str, str, str]] = field(default_factory=list)  # (name, sha256, error) to quarantine


def crawl_page_rows(
    pages: Sequence[tuple[date, str, FetchResult]], store: RawHtmlStore, lag: timedelta | None = None
) -> PageRows:
    """The rows of a crawl's (date, ticker, fetch result) pages; ``lag``: the vendor's publication lag (None: the
    point-in-time default for web data). A fetched page that lists no product is malformed."""
    results = [r for _, _, r in pages]
    meta = {r.url: {"trade_date": d, "ticker": t} for d, t, r in pages}
    by_url: dict[str, list[dict]] = {r.url: [] for r in results}
    for row in extract_product_rows(results, store, meta):
        by_url[row["url"]].append(row)
    out = PageRows(crawled=pl.DataFrame(schema=CRAWLED_SCHEMA))
    rows: list[dict] = []
    for d, ticker, result in pages:
        page_rows = by_url[result.url]
        if result.ok and not page_rows:
            page_rows = [
                {
                    **meta[result.url],
                    "url": result.url,
                    "status": result.status,
                    "sha256": result.sha256,
                    "product": None,
                    "price": None,
                    "availability": None,
                    "error": "parse error: the page lists no products",
                }
            ]
        error = next((r["error"] for r in page_rows if r["error"] is not None), None)
        if error is not None:
            kind = "malformed" if result.ok else error_kind(result)
            out.errors_by_kind[kind] = out.errors_by_kind.get(kind, 0) + 1
            out.failed.append(
                {
                    "trade_date": d.isoformat(),
                    "ticker": ticker,
                    "url": result.url,
                    "kind": kind,
                    "error": error,
                }
            )
            if kind == "malformed":
                out.malformed.append((f"{d.isoformat()}/{ticker}.html", result.sha256 or "", error))
            page_rows = page_rows[:1]  # one error row per page for the page counts
        event = web_event_time(d)
        stamps = {
            "fetched_at": _fetched_at(result.fetched_at),
            "event_time": event,
            "published_at": pit.published_at("web", event, lag),
        }
        rows.extend({**r, **stamps} for r in page_rows)
    out.crawled = pl.DataFrame(rows, schema=CRAWLED_SCHEMA)
    return out


def web_signal_rows(
    crawled: pl.DataFrame,
    products: pl.DataFrame,
    previous: pl.DataFrame,
    kept: pl.DataFrame,
    start: date,
    end: date,
) -> pl.DataFrame:
    """``SIGNALS_SCHEMA`` rows of the ticker-days of [start, end] with a page fetched now (``crawled``) and at least
    one product. ``products``: the window's product rows after the merge with the table (their stamps give the
    signals' stamps); ``previous``: the product rows of the session before the window (the first day's price
    change); ``kept``: the product rows the table kept for pages not fetched now (they count as pages)."""
    as_rows = [
        f.with_columns(pl.lit(200, pl.Int64).alias("status"), pl.lit(None, pl.String).alias("error")).select(
            list(ROW_SCHEMA)
        )
        for f in (previous, kept)
    ]
    agg = aggregate_web_signals(pl.concat([crawled.select(list(ROW_SCHEMA)), *as_rows]))
    stamps = products.group_by("trade_date", "ticker").agg(
        pl.col("event_time").max(), pl.col("published_at").max()
    )
    return (
        agg.filter(pl.col("trade_date").is_between(start, end) & (pl.col("n_products") > 0))
        # only ticker-days with a page fetched now are recomputed; the others keep their rows
        .join(crawled.select(WEB_UNIT).unique(), on=WEB_UNIT, how="semi")
        .join(stamps, on=["trade_date", "ticker"], how="left")
        .select(list(SIGNALS_SCHEMA))
        .cast(SIGNALS_SCHEMA)
    )
