"""A polite crawler for vendor web pages, on httpx.

Politeness is per domain (scheme, host and port): a request-rate limit (requests start at least
``1 / requests_per_second`` apart, or the robots.txt ``Crawl-delay`` if longer) and a concurrency limit.
robots.txt is fetched once per domain and obeyed through ``urllib.robotparser``: disallowed URLs are never
requested. A 429 or 5xx is retried with exponential backoff; a ``Retry-After`` header is honoured and pauses the
whole domain, not just the one URL. 404 and other 4xx are recorded once and not retried. Every request has a
timeout. Bodies of successful responses are kept on disk, content-addressed by SHA-256, with a JSON-lines fetch
log, so a parse can be replayed without fetching again.

No proxy rotation, no user-agent spoofing, no evasion: the crawler announces itself and backs off.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

__all__ = [
    "CrawlPolicy",
    "FetchResult",
    "PoliteCrawler",
    "RawHtmlStore",
    "parse_retry_after",
    "results_summary",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# added to the minimum gap between request starts, so scheduler jitter never packs two starts closer than the limit
SPACING_MARGIN_S = 0.005


@dataclass(frozen=True)
class CrawlPolicy:
    """How hard the crawler may press a domain; defaults suit a vendor that publishes once a day."""

    user_agent: str = "alpha-assets-crawler/0.1 (research; respects robots.txt)"
    requests_per_second: float = 1.0  # per domain
    max_concurrency: int = 2  # per domain
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is recorded as a failure, not waited out
    retry_timeouts: bool = True
    respect_robots: bool = True
    max_redirects: int = 5
    max_bytes: int = 5_000_000
    seed: int = 0  # backoff jitter


@dataclass
class FetchResult:
    url: str
    status: int | None
    ok: bool
    error: str | None = None
    sha256: str | None = None
    attempts: int = 0
    bytes: int = 0
    fetched_at: str = ""
    elapsed_s: float = 0.0
    final_url: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class RawHtmlStore:
    """Content-addressed store of fetched bodies: ``objects/<sha[:2]>/<sha>.html`` plus ``fetch_log.jsonl``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @property
    def log_path(self) -> Path:
        return self.root / "fetch_log.jsonl"

    def path_of(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / f"{sha256}.html"

    def put(self, body: bytes) -> str:
        sha = hashlib.sha256(body).hexdigest()
        path = self.path_of(sha)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(body)
            os.replace(tmp, path)
        return sha

    def get(self, sha256: str) -> bytes:
        return self.path_of(sha256).read_bytes()

    def log(self, result: FetchResult) -> None:
        with self._lock, self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(result.to_json() + "\n")

    def replay(self) -> Iterator[tuple[FetchResult, bytes | None]]:
        """Every logged fetch with its stored body (None for failures), in log order."""
        if not self.log_path.exists():
            return
        with self.log_path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    result = FetchResult(**json.loads(line))
                    yield result, (self.get(result.sha256) if result.sha256 else None)


@dataclass
class _Domain:
    interval: float
    semaphore: threading.Semaphore
    lock: threading.Lock = field(default_factory=threading.Lock)
    robots_lock: threading.Lock = field(default_factory=threading.Lock)
    next_slot: float = 0.0
    robots: RobotFileParser | None = None
    robots_checked: bool = False
    robots_error: str | None = None
    requests: int = 0


def _domain_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


class PoliteCrawler:
    """Fetch URLs politely; keep bodies in a ``RawHtmlStore``. Use as a context manager or call ``close()``.

    ``clock``/``sleep`` are injectable so tests can run it on simulated time; ``transport`` lets a test or a
    recording stand in for the network.
    """

    def __init__(
        self,
        raw_dir: str | Path,
        policy: CrawlPolicy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.policy = policy or CrawlPolicy()
        if self.policy.requests_per_second <= 0 or self.policy.max_concurrency < 1:
            raise ValueError("requests_per_second must be > 0 and max_concurrency >= 1")
        self.store = RawHtmlStore(raw_dir)
        self._clock, self._sleep = clock, sleep
        self._domains: dict[str, _Domain] = {}
        self._domains_lock = threading.Lock()
        self._rng = random.Random(self.policy.seed)
        self._rng_lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.policy.timeout_s),
            headers={"User-Agent": self.policy.user_agent},
            follow_redirects=False,  # redirects are followed by hand so each hop is checked against robots.txt
            trust_env=False,
            transport=transport,
        )

    def __enter__(self) -> PoliteCrawler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- per-domain politeness --

    def _domain(self, url: str) -> _Domain:
        key = _domain_key(url)
        with self._domains_lock:
            if key not in self._domains:
                self._domains[key] = _Domain(
                    interval=1.0 / self.policy.requests_per_second + SPACING_MARGIN_S,
                    semaphore=threading.BoundedSemaphore(self.policy.max_concurrency),
                )
            return self._domains[key]

    def _wait_turn(self, dom: _Domain) -> None:
        with dom.lock:
            now = self._clock()
            slot = max(now, dom.next_slot)
            dom.next_slot = slot + dom.interval
            dom.requests += 1
        if slot > now:
            self._sleep(slot - now)

    def _pause_domain(self, dom: _Domain, seconds: float) -> None:
        with dom.lock:
            dom.next_slot = max(dom.next_slot, self._clock() + seconds)

    def _backoff(self, attempt: int) -> float:
        base = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2**attempt)
        with self._rng_lock:
            return base * (0.5 + 0.5 * self._rng.random())  # jitter keeps retries of many pages from aligning

    def _get(self, url: str, dom: _Domain) -> _Reply:
        with dom.semaphore:
            self._wait_turn(dom)
            with self._client.stream("GET", url) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self.policy.max_bytes:
                        raise _TooLarge(f"body larger than {self.policy.max_bytes} bytes")
                return _Reply(response.status_code, response.headers, bytes(body))

    def _robots(self, url: str, dom: _Domain) -> RobotFileParser | None:
        with dom.robots_lock:
            if dom.robots_checked:
                return dom.robots
            robots_url = urljoin(_domain_key(url) + "/", "/robots.txt")
            parser = RobotFileParser(robots_url)
            result, response = self._request_with_retries(robots_url, dom, store=False)
            if response is not None and 200 <= response.status_code < 300:
                parser.parse(response.content.decode("utf-8", "replace").splitlines())
            elif response is not None and response.status_code in (401, 403):
                # typeshed's RobotFileParser lacks allow_all/disallow_all, the attributes read() itself sets (3x below)
                parser.disallow_all = True  # type: ignore[attr-defined]  # as robotparser does on 401/403
            elif response is not None and 400 <= response.status_code < 500:
                parser.allow_all = True  # type: ignore[attr-defined]  # no robots.txt: all allowed
            else:
                parser.disallow_all = True  # type: ignore[attr-defined]  # unreachable: disallow all (RFC 9309)
                dom.robots_error = result.error or f"HTTP {result.status}"
            delay = parser.crawl_delay(self.policy.user_agent)
            if delay:
                dom.interval = max(dom.interval, float(delay) + SPACING_MARGIN_S)
            rate = parser.request_rate(self.policy.user_agent)
            if rate and rate.requests:
                dom.interval = max(dom.interval, rate.seconds / rate.requests + SPACING_MARGIN_S)
            dom.robots, dom.robots_checked = parser, True
            return parser

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets this crawler fetch ``url`` (fetches robots.txt on first use of a domain)."""
        if not self.policy.respect_robots:
            return True
        robots = self._robots(url, self._domain(url))
        return robots is None or robots.can_fetch(self.policy.user_agent, url)

    # -- fetching --

    def _request_with_retries(
        self, url: str, dom: _Domain, *, store: bool
    ) -> tuple[FetchResult, _Reply | None]:
        result = FetchResult(url=url, status=None, ok=False)
        started = self._clock()
        response: _Reply | None = None
        for attempt in range(self.policy.max_retries + 1):
            result.attempts = attempt + 1
            delay: float | None = None
            try:
                response = self._get(url, dom)
            except httpx.TimeoutException as exc:
                result.status, result.error = (
                    None,
                    f"timeout after {self.policy.timeout_s:g}s ({type(exc).__name__})",
                )
                if not self.policy.retry_timeouts:
                    break
            except _TooLarge as exc:
                result.status, result.error = None, str(exc)
                break
            except httpx.TransportError as exc:
                result.status, result.error = None, f"transport error: {type(exc).__name__}: {exc}"
            else:
                result.status = response.status_code
                if response.status_code not in RETRY_STATUSES:
                    result.error = None if response.is_success else f"HTTP {response.status_code}"
                    break
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                result.error = f"HTTP {response.status_code}"
                if retry_after is not None:
                    if retry_after > self.policy.max_retry_after_s:
                        result.error += f" with Retry-After {retry_after:g}s beyond the {self.policy.max_retry_after_s:g}s limit"
                        break
                    delay = retry_after
                    self._pause_domain(dom, retry_after)  # the server asked the whole site to slow down
            if attempt == self.policy.max_retries:
                break
            if delay is None:
                delay = self._backoff(attempt)
                self._sleep(delay)
            # with a Retry-After the domain pause already holds this request back in _wait_turn
        result.elapsed_s = self._clock() - started
        result.fetched_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        if response is not None and result.status is not None and response.is_success:
            result.ok = True
            result.bytes = len(response.content)
            if store:
                result.sha256 = self.store.put(response.content)
        return result, response

    def fetch(self, url: str) -> FetchResult:
        """Fetch one URL (following redirects the robots rules allow); the result is also written to the log."""
        original = url
        result = FetchResult(url=url, status=None, ok=False)
        for _ in range(self.policy.max_redirects + 1):
            if not self.allowed(url):
                result = FetchResult(
                    url=original,
                    status=None,
                    ok=False,
                    error=f"disallowed by robots.txt: {url}",
                    fetched_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                )
                break
            result, response = self._request_with_retries(url, self._domain(url), store=True)
            result.url, result.final_url = original, url
            location = response.headers.get("Location") if response is not None else None
            if response is None or not response.is_redirect or not location:
                break
            url = urljoin(url, location)
        else:
            result.ok, result.error = False, f"more than {self.policy.max_redirects} redirects"
        self.store.log(result)
        return result

    def fetch_all(self, urls: Iterable[str], max_workers: int | None = None) -> list[FetchResult]:
        """Fetch many URLs concurrently within each domain's limits; results in the order of ``urls``."""
        urls = list(urls)
        if not urls:
            return []
        n_domains = len({_domain_key(u) for u in urls})
        workers = max_workers or min(32, n_domains * self.policy.max_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crawler") as pool:
            return list(pool.map(self.fetch, urls))

    def request_counts(self) -> dict[str, int]:
        """Requests sent per domain so far (robots.txt and retries included)."""
        with self._domains_lock:
            return {k: d.requests for k, d in self._domains.items()}


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Reply:
    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "Location" in self.headers


def results_summary(results: Iterable[FetchResult]) -> dict[str, Any]:
    """Counts of a crawl for logging and asset metadata."""
    results = list(results)
    return {
        "n": len(results),
        "ok": sum(r.ok for r in results),
        "disallowed": sum(bool(r.error and r.error.startswith("disallowed")) for r in results),
        "not_found": sum(r.status == 404 for r in results),
        "failed": sum(not r.ok for r in results),
        "retried": sum(r.attempts > 1 for r in results),
    }
