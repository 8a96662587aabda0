"""Demo-world vendor web site: product pages whose prices follow the latent ``web_price`` driver.

``build_site`` writes a static site the crawler scrapes::

    site_dir/robots.txt                               disallows /private/ and /checkout/
    site_dir/index.html                               links to each day's catalogue
    site_dir/products/<YYYY-MM-DD>/index.html         links to that day's ticker pages
    site_dir/products/<YYYY-MM-DD>/<TICKER>.html      the products of one company on one day
    site_dir/private/pricing-feed.html                a page the crawler must never fetch

A product page lists ``<li class="product">`` items, each with a name, a price (``$1,234.56``) and an
availability. Each company sells a few products; their log prices move with ``web_price`` on top of a fixed
base price plus small noise, and stock-outs are likelier when demand (the driver) is high.

``serve_site`` serves that folder on loopback with injected faults (slow pages, 404s, 429 with Retry-After,
malformed HTML) so the crawler's politeness and error handling can be measured. It records every request.
Truth goes to ``truth/web_prices.parquet``.
"""

from __future__ import annotations

import hashlib
import html
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import polars as pl

__all__ = [
    "PRICE_ELASTICITY",
    "SiteFaults",
    "VendorSiteServer",
    "build_site",
    "product_page_url",
    "serve_site",
]

PRICE_ELASTICITY = 0.08  # log-price move per unit of the latent web_price driver
ROBOTS_TXT = """User-agent: *
Disallow: /private/
Disallow: /checkout/

User-agent: BadBot
Disallow: /
"""
PRODUCT_NOUNS = (
    "Router",
    "Blender",
    "Jacket",
    "Drill",
    "Headset",
    "Kettle",
    "Backpack",
    "Monitor",
    "Sneaker",
)
PRODUCT_TIERS = ("Basic", "Plus", "Pro", "Max")


def product_page_url(base_url: str, trade_date: date, ticker: str) -> str:
    """The address of one company's product page for one day."""
    return f"{base_url.rstrip('/')}/products/{trade_date.isoformat()}/{ticker}.html"


def _availability(rng: np.random.Generator, driver: float) -> str:
    p_out = 1.0 / (1.0 + math.exp(-(driver - 2.0)))  # stock-outs when demand runs hot
    u = rng.random()
    if u < p_out * 0.6:
        return "Out of stock"
    if u < p_out:
        return "Limited stock"
    return "In stock"


def _page(ticker: str, name: str, day: date, products: list[tuple[str, str, float, str]]) -> str:
    items = "\n".join(
        f'    <li class="product" data-sku="{html.escape(sku)}">\n'
        f'      <h2 class="product-name">{html.escape(title)}</h2>\n'
        f'      <span class="price" data-currency="USD">${price:,.2f}</span>\n'
        f'      <span class="availability">{availability}</span>\n'
        f"    </li>"
        for sku, title, price, availability in products
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(name)} catalogue {day.isoformat()}</title></head>\n<body>\n"
        '  <nav><a href="/index.html">Home</a> <a href="/checkout/cart.html">Cart</a></nav>\n'
        f'  <main id="catalogue" data-ticker="{html.escape(ticker)}" data-date="{day.isoformat()}">\n'
        f'  <h1>{html.escape(name)}</h1>\n  <ul class="products">\n{items}\n  </ul>\n  </main>\n</body>\n</html>\n'
    )


def build_site(
    site_dir: str | Path,
    universe: pl.DataFrame,
    drivers: pl.DataFrame,
    sessions: list[date],
    seed: int,
    *,
    truth: str | Path | None = None,
    products_per_ticker: int = 3,
) -> pl.DataFrame:
    """Write the vendor site for every (session, live ticker) in ``drivers`` and return the true prices.

    ``drivers`` needs trade_date, ticker, web_price; pass a subset of sessions to keep the site small. The truth
    frame (trade_date, ticker, product, price, availability, web_price) is written to
    ``truth/web_prices.parquet`` when ``truth`` is given.
    """
    site = Path(site_dir)
    (site / "products").mkdir(parents=True, exist_ok=True)
    (site / "private").mkdir(exist_ok=True)
    (site / "robots.txt").write_text(ROBOTS_TXT)
    (site / "private" / "pricing-feed.html").write_text("<html><body>internal: do not crawl</body></html>\n")
    names = dict(universe.select("ticker", "name").iter_rows())
    wanted = set(sessions)
    frame = (
        drivers.select(pl.col("trade_date").cast(pl.Date), "ticker", "web_price")
        .drop_nulls("web_price")
        .filter(pl.col("trade_date").is_in(sorted(wanted)))
        .sort("trade_date", "ticker")
    )
    catalogue: dict[str, tuple[list[str], np.ndarray]] = {}
    rows = []
    days: dict[date, list[str]] = {}
    for day, ticker, driver in frame.iter_rows():
        if ticker not in catalogue:
            key = [int(b) for b in ticker.encode()]
            crng = np.random.default_rng([seed, 301, *key])
            titles = [
                f"{PRODUCT_NOUNS[crng.integers(len(PRODUCT_NOUNS))]} {PRODUCT_TIERS[i % len(PRODUCT_TIERS)]}"
                for i in range(products_per_ticker)
            ]
            catalogue[ticker] = (titles, np.exp(crng.normal(np.log(120.0), 0.8, products_per_ticker)))
        titles, base = catalogue[ticker]
        drng = np.random.default_rng([seed, 302, day.toordinal(), *[int(b) for b in ticker.encode()]])
        prices = np.round(base * np.exp(PRICE_ELASTICITY * driver + drng.normal(0.0, 0.01, len(base))), 2)
        products = []
        for i, (title, price) in enumerate(zip(titles, prices, strict=True)):
            availability = _availability(drng, driver)
            products.append((f"{ticker}-{i + 1:03d}", title, float(price), availability))
            rows.append((day, ticker, title, float(price), availability, float(driver)))
        day_dir = site / "products" / day.isoformat()
        day_dir.mkdir(exist_ok=True)
        (day_dir / f"{ticker}.html").write_text(_page(ticker, names.get(ticker, ticker), day, products))
        days.setdefault(day, []).append(ticker)
    for day, tickers in days.items():
        links = "\n".join(f'<li><a href="{t}.html">{t}</a></li>' for t in tickers)
        (site / "products" / day.isoformat() / "index.html").write_text(
            f"<html><body><h1>Catalogue {day.isoformat()}</h1><ul>\n{links}\n</ul>"
            '<a href="/private/pricing-feed.html">partner feed</a></body></html>\n'
        )
    day_links = "\n".join(
        f'<li><a href="/products/{d.isoformat()}/index.html">{d}</a></li>' for d in sorted(days)
    )
    (site / "index.html").write_text(
        f"<html><body><h1>Vendor catalogue</h1><ul>\n{day_links}\n</ul></body></html>\n"
    )
    out = pl.DataFrame(
        rows,
        schema={
            "trade_date": pl.Date,
            "ticker": pl.String,
            "product": pl.String,
            "price": pl.Float64,
            "availability": pl.String,
            "web_price": pl.Float64,
        },
        orient="row",
    )
    if truth is not None:
        Path(truth).mkdir(parents=True, exist_ok=True)
        out.write_parquet(Path(truth) / "web_prices.parquet")
    return out


# --- serving with faults ---------------------------------------------------------------------------------


@dataclass
class SiteFaults:
    """Faults the server injects. Paths are URL paths (``/products/2024-01-02/ABC.html``).

    Explicit path sets make tests exact; the ``*_share`` knobs pick a seeded share of product pages for demos.
    A throttled path answers 429 with ``Retry-After: retry_after_s`` to its first ``throttle_times`` requests.
    """

    slow_paths: set[str] = field(default_factory=set)
    slow_delay_s: float = 2.0
    missing_paths: set[str] = field(default_factory=set)
    throttled_paths: set[str] = field(default_factory=set)
    throttle_times: int = 1
    retry_after_s: float = 1.0
    malformed_paths: set[str] = field(default_factory=set)
    error_paths: set[str] = field(
        default_factory=set
    )  # answer 503 to their first ``throttle_times`` requests
    slow_share: float = 0.0
    missing_share: float = 0.0
    throttled_share: float = 0.0
    malformed_share: float = 0.0
    seed: int = 0

    def _drawn(self, path: str, share: float, salt: str) -> bool:
        if share <= 0.0 or not path.startswith("/products/") or path.endswith("index.html"):
            return False
        digest = hashlib.sha256(f"{self.seed}:{salt}:{path}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < share

    def slow(self, path: str) -> bool:
        return path in self.slow_paths or self._drawn(path, self.slow_share, "slow")

    def missing(self, path: str) -> bool:
        return path in self.missing_paths or self._drawn(path, self.missing_share, "missing")

    def throttled(self, path: str) -> bool:
        return path in self.throttled_paths or self._drawn(path, self.throttled_share, "throttled")

    def malformed(self, path: str) -> bool:
        return path in self.malformed_paths or self._drawn(path, self.malformed_share, "malformed")


@dataclass(frozen=True)
class RequestRecord:
    at: float  # time.monotonic() when the request arrived
    path: str
    status: int
    user_agent: str
    host: str


def _malformed(body: bytes) -> bytes:
    # a truncated page with the product list torn out: what a half-deployed vendor release looks like
    text = body.decode("utf-8", "replace")
    cut = text.find('<ul class="products">')
    return (text[:cut] if cut > 0 else text[: len(text) // 3]).encode() + b"<div class='prod"


class VendorSiteServer:
    """A threaded HTTP server over a site folder, with faults. Use ``start()``/``stop()`` or ``with``."""

    def __init__(
        self, site_dir: str | Path, host: str = "127.0.0.1", port: int = 0, faults: SiteFaults | None = None
    ):
        self.site_dir = Path(site_dir).resolve()
        self.faults = faults or SiteFaults()
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> VendorSiteServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> VendorSiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths_requested(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def _record(self, path: str, status: int, user_agent: str, host: str, at: float) -> None:
        with self._lock:
            self.requests.append(RequestRecord(at, path, status, user_agent, host))

    def _hit(self, path: str) -> int:
        with self._lock:
            self._hits[path] = self._hits.get(path, 0) + 1
            return self._hits[path]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence stderr logging
                return

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up: expected for slow pages

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                arrived = time.monotonic()
                path = unquote(urlsplit(self.path).path)
                faults = server.faults
                agent, host = self.headers.get("User-Agent", ""), self.headers.get("Host", "")
                status, body, headers = self._resolve(path, faults)
                server._record(path, status, agent, host, arrived)
                if status == 200 and faults.slow(path):
                    time.sleep(faults.slow_delay_s)
                self._send(status, body, headers)

            def _resolve(self, path: str, faults: SiteFaults) -> tuple[int, bytes, dict[str, str]]:
                if path.endswith("/"):
                    path += "index.html"
                target = (server.site_dir / path.lstrip("/")).resolve()
                if server.site_dir not in target.parents and target != server.site_dir:
                    return 404, b"<html><body>not found</body></html>", {}
                if faults.missing(path) or not target.is_file():
                    return 404, b"<html><body>not found</body></html>", {}
                faulted = faults.throttled(path) or path in faults.error_paths
                if faulted and server._hit(path) <= faults.throttle_times:
                    if path in faults.error_paths:
                        return 503, b"<html><body>service unavailable</body></html>", {}
                    retry = f"{faults.retry_after_s:g}"
                    return 429, b"<html><body>too many requests</body></html>", {"Retry-After": retry}
                body = target.read_bytes()
                if faults.malformed(path):
                    body = _malformed(body)
                return 200, body, {}

        return Handler


def serve_site(
    site_dir: str | Path, host: str = "127.0.0.1", port: int = 0, faults: SiteFaults | None = None
) -> VendorSiteServer:
    """Start serving ``site_dir`` on loopback (port 0: a free port) and return the running server."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the demo vendor site binds loopback only, not {host!r}")
    return VendorSiteServer(site_dir, host, port, faults).start()
