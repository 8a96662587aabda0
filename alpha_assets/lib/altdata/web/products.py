"""Product pages to rows, rows to per ticker-day web signals.

``parse_product_page`` reads the vendor's catalogue markup: items with class ``product`` (any tag), each holding
an element with class ``product-name`` (or ``name``), one with class ``price`` and one with class
``availability``. A page without that structure (a truncated deploy, a captcha page, a redesign) raises
``ProductPageError`` rather than yielding silently wrong rows. ``extract_product_rows`` turns a crawl into rows,
with one error row per page that failed to fetch or parse, and ``aggregate_web_signals`` averages per ticker-day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date
from html.parser import HTMLParser
from typing import Any

import polars as pl

from alpha_assets.lib.altdata.web.crawler import FetchResult, RawHtmlStore

__all__ = [
    "AVAILABILITY",
    "ProductPageError",
    "aggregate_web_signals",
    "extract_product_rows",
    "meta_from_url",
    "normalise_availability",
    "parse_price",
    "parse_product_page",
]

AVAILABILITY = ("in_stock", "limited", "out_of_stock", "preorder", "unknown")
_VOID_TAGS = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]
)


class ProductPageError(ValueError):
    """HTML that does not have the product-page structure, or a product with an unreadable field."""


def parse_price(text: str) -> float:
    """``$1,234.56``, ``USD 12.30``, ``1 234,50 €`` -> float. Raises ``ProductPageError`` when there is no number."""
    cleaned = text.replace("\xa0", " ").strip()
    m = re.search(r"\d[\d,. ]*", cleaned)
    if not m:
        raise ProductPageError(f"price {text!r} has no number")
    number = m.group(0).strip().replace(" ", "")
    if re.search(r",\d{2}$", number) and "." not in number[-3:]:
        number = number.replace(".", "").replace(",", ".")  # European decimal comma
    else:
        number = number.replace(",", "")
    try:
        value = float(number)
    except ValueError as exc:
        raise ProductPageError(f"price {text!r} is not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise ProductPageError(f"price {text!r} is not a valid price")
    return value


def normalise_availability(text: str) -> str:
    """Vendor wording -> one of ``AVAILABILITY``."""
    t = " ".join(text.lower().replace("-", " ").split())
    if not t:
        return "unknown"
    if "out of stock" in t or "sold out" in t or "unavailable" in t:
        return "out_of_stock"
    if "pre order" in t or "preorder" in t or "backorder" in t:
        return "preorder"
    if "limited" in t or "low stock" in t or "few left" in t or re.search(r"only \d+ left", t):
        return "limited"
    if "in stock" in t or "available" in t:
        return "in_stock"
    return "unknown"


class _CatalogueParser(HTMLParser):
    """Collects the text of name / price / availability fields inside each ``class="product"`` element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.products: list[dict[str, str]] = []
        self.saw_catalogue = False
        self._stack: list[tuple[str, str | None]] = []  # (tag, field this element opens or None)
        self._product_depth: int | None = None
        self._field: str | None = None
        self._current: dict[str, str] = {}
        self.truncated = False

    @staticmethod
    def _classes(attrs: list[tuple[str, str | None]]) -> set[str]:
        return set((dict(attrs).get("class") or "").split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            return
        classes = self._classes(attrs)
        if "products" in classes or dict(attrs).get("id") == "catalogue":
            self.saw_catalogue = True
        opened: str | None = None
        if self._product_depth is None and "product" in classes:
            self._product_depth = len(self._stack)
            self._current = {}
            opened = "product"
        elif self._product_depth is not None and self._field is None:
            if "product-name" in classes or "name" in classes:
                opened = "name"
            elif "price" in classes:
                opened = "price"
            elif "availability" in classes or "stock" in classes:
                opened = "availability"
            if opened:
                self._field = opened
                self._current.setdefault(opened, "")
        self._stack.append((tag, opened))

    def handle_endtag(self, tag: str) -> None:
        # tolerate sloppy nesting: close back to the matching open tag, if any
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                for _, opened in self._stack[i:]:
                    self._close(opened)
                del self._stack[i:]
                return

    def _close(self, opened: str | None) -> None:
        if opened == "product":
            self.products.append(self._current)
            self._current, self._product_depth, self._field = {}, None, None
        elif opened is not None and opened == self._field:
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._field is not None:
            self._current[self._field] = self._current.get(self._field, "") + data

    def close(self) -> None:
        super().close()
        if self._product_depth is not None:
            self.truncated = True  # an unterminated product at end of input: the page was cut off


def parse_product_page(html: str | bytes) -> list[dict[str, Any]]:
    """``[{product, price, availability}]`` from a catalogue page; ``ProductPageError`` if the structure is wrong.

    An empty catalogue (the container present, no products) is a valid page and returns ``[]``.
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    parser = _CatalogueParser()
    parser.feed(html)
    parser.close()
    if parser.truncated:
        raise ProductPageError("page ends inside a product: truncated HTML")
    if not parser.products:
        if parser.saw_catalogue and re.search(r"</html>\s*$", html.strip(), re.I):
            return []
        raise ProductPageError("no product list found (expected elements with class 'product')")
    rows = []
    for i, item in enumerate(parser.products):
        name = " ".join(item.get("name", "").split())
        if not name:
            raise ProductPageError(f"product #{i + 1} has no name")
        if "price" not in item:
            raise ProductPageError(f"product {name!r} has no price")
        rows.append(
            {
                "product": name,
                "price": parse_price(item["price"]),
                "availability": normalise_availability(item.get("availability", "")),
            }
        )
    return rows


_URL_META = re.compile(r"/(?P<date>\d{4}-\d{2}-\d{2})/(?P<ticker>[A-Za-z0-9.\-]+?)(?:\.html?)?$")


def meta_from_url(url: str) -> dict[str, Any]:
    """``{trade_date, ticker}`` from a vendor URL ending ``/<YYYY-MM-DD>/<TICKER>.html``; empty if it does not."""
    m = _URL_META.search(url.split("?", 1)[0])
    if not m:
        return {}
    return {"trade_date": date.fromisoformat(m.group("date")), "ticker": m.group("ticker").upper()}


def extract_product_rows(
    results: Iterable[FetchResult],
    store: RawHtmlStore,
    url_meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per product found, one error row (product None, error set) per page that failed.

    Ticker and date come from ``url_meta[url]`` when given, else from the URL (``meta_from_url``).
    Row keys: trade_date, ticker, url, product, price, availability, status, sha256, error.
    """
    rows: list[dict[str, Any]] = []
    for result in results:
        meta = dict(url_meta.get(result.url, {})) if url_meta else {}
        meta = {**meta_from_url(result.url), **meta}
        base = {
            "trade_date": meta.get("trade_date"),
            "ticker": meta.get("ticker"),
            "url": result.url,
            "status": result.status,
            "sha256": result.sha256,
        }
        error: str | None = None
        products: list[dict[str, Any]] = []
        if not result.ok or result.sha256 is None:
            error = result.error or f"HTTP {result.status}"
        else:
            try:
                products = parse_product_page(store.get(result.sha256))
            except ProductPageError as exc:
                error = f"parse error: {exc}"
        if error is not None:
            rows.append({**base, "product": None, "price": None, "availability": None, "error": error})
        else:
            rows.extend({**base, **p, "error": None} for p in products)
    return rows


ROW_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.String,
    "url": pl.String,
    "product": pl.String,
    "price": pl.Float64,
    "availability": pl.String,
    "status": pl.Int64,
    "sha256": pl.String,
    "error": pl.String,
}


def aggregate_web_signals(rows: Iterable[Mapping[str, Any]] | pl.DataFrame) -> pl.DataFrame:
    """Per (trade_date, ticker): n_pages, n_error_pages, n_products, mean_log_price, web_price_change,
    in_stock_share, out_of_stock_share.

    ``web_price_change`` is the mean over products of log(price / the product's previous observed price) within
    ``rows``; pass the previous day's rows along to have it on the first day (null otherwise).
    """
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(list(rows), schema=ROW_SCHEMA)
    frame = frame.with_columns(pl.col("trade_date").cast(pl.Date)).drop_nulls(["trade_date", "ticker"])
    pages = frame.group_by("trade_date", "ticker").agg(
        pl.col("url").n_unique().alias("n_pages"),
        pl.col("url").filter(pl.col("error").is_not_null()).n_unique().alias("n_error_pages"),
    )
    products = (
        frame.filter(pl.col("error").is_null() & pl.col("price").is_not_null() & (pl.col("price") > 0))
        .group_by("trade_date", "ticker", "product")
        .agg(pl.col("price").mean(), pl.col("availability").first())
        .sort("ticker", "product", "trade_date")
        .with_columns(
            pl.col("price").log().alias("log_price"),
            (pl.col("price").log() - pl.col("price").log().shift(1).over("ticker", "product")).alias(
                "log_change"
            ),
        )
    )
    signals = products.group_by("trade_date", "ticker").agg(
        pl.len().cast(pl.Int64).alias("n_products"),
        pl.col("log_price").mean().alias("mean_log_price"),
        pl.col("log_change").mean().alias("web_price_change"),
        (pl.col("availability") == "in_stock").mean().alias("in_stock_share"),
        (pl.col("availability") == "out_of_stock").mean().alias("out_of_stock_share"),
    )
    return (
        pages.join(signals, on=["trade_date", "ticker"], how="left")
        .with_columns(
            pl.col("n_products").fill_null(0),
            pl.col("n_pages").cast(pl.Int64),
            pl.col("n_error_pages").cast(pl.Int64),
        )
        .select(
            "trade_date",
            "ticker",
            "n_pages",
            "n_error_pages",
            "n_products",
            "mean_log_price",
            "web_price_change",
            "in_stock_share",
            "out_of_stock_share",
        )
        .sort("trade_date", "ticker")
    )
