"""Serving API latency: p50/p95/max per endpoint under 20 concurrent clients on loopback.

Fills a serving store (embedded SQLite by default; ``--pg [URL]`` for PostgreSQL, URL defaulting to
ALPHA_TEST_PG_URL) through ``store.publish_day`` — N names x D sessions of books (each day's /api/portfolio body
rendered into ``payloads`` by the publisher), P&L attribution, exposures, risk, model and pipeline KPIs
(synthetic, seeded) — starts ``alpha serve-api --workers W`` in a subprocess (uvicorn, default 2 processes) on
127.0.0.1, warms each endpoint up, then 20 clients (http.client, one keep-alive connection each; `--client httpx` for httpx; spread over
``--client-processes`` processes, default 4, because 20 threads in one interpreter queue on its GIL and measure
the load generator) send 1,000 requests per endpoint (50 each, back to back): the newest book, books of random
other days (the API caches only the newest book, so each is a read of the stored payload), both of those
gzip-encoded too, risk for random days, and the year-long performance/models/pipeline series.

p50/p95/max are over every request, the first ones included. All 20 clients send their first request at the same
instant (a thundering herd no steady load has: 20 x 1.7 MB books at once); the "burst" column is the slowest of
those first 20 requests, so the herd is shown, not hidden. With ``--requests 200`` (the old default, 10 per
client) the herd is a tenth of the sample and sets the p95. Peer, same run: the same SQL run directly in this process with
``pandas.read_sql`` + ``DataFrame.to_json`` (no HTTP, no validation, one thread) — building a response from rows.

    .venv/bin/python benchmarks/serving.py            # 5,000 names x 252 sessions (goal p95 < 100 ms)
    .venv/bin/python benchmarks/serving.py --quick    # 100 names x 20 sessions, 100 requests (make bench, CI)
    .venv/bin/python benchmarks/serving.py --store /tmp/s.db --only portfolio,risk   # keep/reuse a filled store
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from _common import ROOT, emit, machine, print_table

CLIENTS = 20
PORTS = range(18200, 18300)


def fill(url: str, names: int, days: int) -> tuple[list, float]:
    from alpha_assets.serving import store
    from alpha_assets_tests.serving.synthetic import fill_store

    t0 = time.perf_counter()
    published = fill_store(store.serving_engine(url), names=names, days=days, seed=1)
    store.serving_engine(url).dispose()
    return published, time.perf_counter() - t0


def start_api(url: str, workers: int, ports: range) -> tuple[subprocess.Popen, str]:
    import httpx

    from alpha_assets_tests.serving.conftest import free_port

    port = free_port(ports)
    env = {**os.environ, "ALPHA_SERVING_URL": url, "ALPHA_API_TOKEN": ""}
    cmd = [
        sys.executable,
        "-m",
        "alpha_assets.cli",
        "serve-api",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    # its own session: stopping it stops its uvicorn worker processes too
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{base}/api/health", timeout=2).json()["status"] == "ok":
                return proc, base
        except (httpx.TransportError, ValueError):
            time.sleep(0.25)
    stop(proc)
    raise RuntimeError("the API did not start")


def stop(proc: subprocess.Popen) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def cycled(items: list, n: int) -> list:
    """The first ``n`` of ``items`` repeated: each once while there are enough, then again in the same order."""
    return (items * (n // len(items) + 1))[:n]


def requests_for(days: list, n: int, seed: int) -> dict[str, list[str]]:
    rnd = random.Random(seed)
    pick = lambda: rnd.choice(days).isoformat()  # noqa: E731
    cold = [d.isoformat() for d in days]
    rnd.shuffle(cold)
    return {
        "health": ["/api/health"] * n,
        "portfolio": ["/api/portfolio"] * n,  # the newest book: what the dashboard and most clients ask for
        # days other than the newest: the API caches only the newest book, so each request reads the stored one
        # (each day once while there are days enough, then again in a new order)
        "portfolio_uncached": [f"/api/portfolio?date={d}" for d in cycled(cold, n)],
        # the same to clients that accept gzip (browsers, requests, httpx): the stored gzip body, 0.3 MB
        "portfolio_uncached_gzip": [f"/api/portfolio?date={d}" for d in cycled(cold[::-1], n)],
        # the newest book to clients sending Accept-Encoding: gzip (every other row: identity, what curl and
        # http.client send by default; browsers, requests and httpx ask for gzip)
        "portfolio_gzip": ["/api/portfolio"] * n,
        "performance": ["/api/performance"] * n,
        "risk": [f"/api/risk?date={pick()}" for _ in range(n)],
        "models": ["/api/models"] * n,
        "pipeline": ["/api/pipeline"] * n,
    }


def _client_process(
    base: str, chunks: list[list[str]], encoding: str, start_at: float, library: str = "stdlib"
):
    """One load-generator process: a thread per chunk, all starting at ``start_at`` (wall clock, shared by every
    process). Returns (latencies ms, decoded sizes, wire sizes, first start, last finish).

    ``library``: "stdlib" (http.client, one keep-alive connection per client; reads a 1.7 MB body for ~0.4 ms
    of CPU) or "httpx" (~2.4 ms of CPU for the same body: with clients and server on the same two cores, the
    load generator then measures itself as much as the API). A gzip body is inflated either way, as a client
    would."""
    import gzip
    import http.client
    from urllib.parse import urlsplit

    out: list[tuple[list[float], list[int], list[int], float, float]] = []
    lock = threading.Lock()
    host = urlsplit(base)

    def fetch_stdlib(conn):
        def get(path: str) -> tuple[int, bytes, bool, int]:
            # Latency is to the response's last byte, as wrk and hey measure it: a gzip body is inflated after
            # the clock stops (that is the client's work, not the API's; --client httpx inflates inside it).
            conn.request("GET", path, headers={"Accept-Encoding": encoding})
            r = conn.getresponse()
            raw = r.read()
            return r.status, raw, r.getheader("Content-Encoding") == "gzip", len(raw)

        return get

    def fetch_httpx(c):
        def get(path: str) -> tuple[int, bytes, bool, int]:
            r = c.get(path)  # inflates a gzip body before returning
            return r.status_code, r.content, False, r.num_bytes_downloaded

        return get

    def client(chunk: list[str]) -> None:
        if library == "httpx":
            import httpx

            conn = httpx.Client(base_url=base, timeout=60, headers={"Accept-Encoding": encoding})
            get = fetch_httpx(conn)
        else:
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
            get = fetch_stdlib(conn)
        try:
            get("/api/health")  # connect before the clock starts
            time.sleep(max(0.0, start_at - time.time()))
            mine, sizes, wire, t_start = [], [], [], time.time()
            for i, p in enumerate(chunk):
                t = time.perf_counter()
                status, raw, gzipped, nbytes = get(p)
                mine.append((time.perf_counter() - t) * 1000)
                if status != 200:
                    raise RuntimeError(f"{p}: {status} {raw[:200]!r}")
                wire.append(nbytes)
                # the decoded size of the first response (inflating every one would load the shared cores)
                sizes.append(
                    len(gzip.decompress(raw)) if gzipped and i == 0 else len(raw) if not gzipped else 0
                )
        finally:
            conn.close()
        with lock:
            out.append((mine, sizes, wire, t_start, time.time()))

    threads = [threading.Thread(target=client, args=(ch,)) for ch in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(out) != len(chunks):
        raise RuntimeError("a client thread failed (see its traceback above)")
    return out


def hammer(
    base: str,
    paths: list[str],
    clients: int = CLIENTS,
    encoding: str = "identity",
    processes: int = 4,
    library: str = "stdlib",
):
    """``paths`` spread over ``clients`` concurrent clients in ``processes`` processes, each sending
    ``Accept-Encoding: encoding``; returns latencies (ms), wall seconds, bytes of one decoded response, bytes of
    one response on the wire, and the slowest first request (ms) of the clients (all sent at one instant)."""
    from concurrent.futures import ProcessPoolExecutor

    chunks = [paths[i::clients] for i in range(clients)]
    groups = [chunks[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        start_at = time.time() + 1.5  # every process has connected its clients by then
        parts = [
            r
            for f in [pool.submit(_client_process, base, g, encoding, start_at, library) for g in groups if g]
            for r in f.result()
        ]
    latencies = [x for p in parts for x in p[0]]
    burst = max(p[0][0] for p in parts if p[0])  # the slowest of the 20 first requests, sent at one instant
    sizes = [x for p in parts for x in p[1] if x]
    wire = [x for p in parts for x in p[2]]
    wall = max(p[4] for p in parts) - min(p[3] for p in parts)
    return latencies, wall, int(np.median(sizes)), int(np.median(wire)), burst


def peer(url: str, days: list, n: int) -> dict[str, float]:
    """The endpoints' SQL straight through pandas.read_sql + to_json, sequential: median ms per request."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    rnd = random.Random(7)
    newest, year_ago = days[-1].isoformat(), (days[-1].replace(year=days[-1].year - 1)).isoformat()
    queries = {
        "portfolio": lambda: (
            "SELECT ticker, side, weight, sector, country, alpha_score, top_features FROM "
            "book_positions WHERE trade_date = %(d)s ORDER BY weight DESC",
            {"d": rnd.choice(days).isoformat()},
        ),
        "performance": lambda: (
            "SELECT * FROM fund_performance WHERE trade_date BETWEEN %(a)s AND %(b)s ORDER BY trade_date",
            {"a": year_ago, "b": newest},
        ),
        "risk": lambda: (
            "SELECT * FROM risk_summary WHERE trade_date <= %(d)s ORDER BY trade_date",
            {"d": rnd.choice(days).isoformat()},
        ),
        "models": lambda: (
            "SELECT * FROM model_kpis WHERE trade_date BETWEEN %(a)s AND %(b)s "
            "ORDER BY trade_date, model, recipe",
            {"a": year_ago, "b": newest},
        ),
        "pipeline": lambda: (
            "SELECT * FROM pipeline_kpis WHERE trade_date BETWEEN %(a)s AND %(b)s ORDER BY trade_date, asset",
            {"a": year_ago, "b": newest},
        ),
    }
    out = {}
    with engine.connect() as conn:
        for name, q in queries.items():
            times = []
            for _ in range(n):
                sql, params = q()
                if engine.dialect.name == "sqlite":
                    sql = sql.replace("%(d)s", ":d").replace("%(a)s", ":a").replace("%(b)s", ":b")
                t = time.perf_counter()
                pd.read_sql(
                    sa.text(sql) if engine.dialect.name == "sqlite" else sql, conn, params=params
                ).to_json(orient="records", date_format="iso")
                times.append((time.perf_counter() - t) * 1000)
            out[name] = float(np.median(times))
    engine.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: 100 names x 20 sessions, 100 requests")
    ap.add_argument("--names", type=int)
    ap.add_argument("--days", type=int)
    ap.add_argument("--requests", type=int, help="requests per endpoint after warm-up (default 1000)")
    ap.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (alpha serve-api --workers)"
    )
    ap.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="load-generator processes the 20 clients are spread over (1: all threads in one)",
    )
    ap.add_argument(
        "--client",
        choices=["stdlib", "httpx"],
        default="stdlib",
        help="the load generator's HTTP library (httpx spends ~6x the CPU per big body)",
    )
    ap.add_argument("--ports", default=f"{PORTS.start}-{PORTS.stop - 1}", help="port range for the API, A-B")
    ap.add_argument("--only", help="comma-separated endpoints to measure (default: all)")
    ap.add_argument("--store", type=Path, help="SQLite serving store to keep and reuse (filled when missing)")
    ap.add_argument(
        "--pg",
        nargs="?",
        const=os.environ.get("ALPHA_TEST_PG_URL", ""),
        default=None,
        metavar="URL",
        help="PostgreSQL server URL (default ALPHA_TEST_PG_URL); a database is created and dropped",
    )
    args = ap.parse_args()
    names = args.names or (100 if args.quick else 5000)
    days = args.days or (20 if args.quick else 252)
    args.requests = args.requests or (100 if args.quick else 1000)

    import sqlalchemy as sa

    tmp = tempfile.TemporaryDirectory(prefix="alpha_bench_serving_")
    admin = db = None
    if args.pg is not None:
        if not args.pg:
            print("--pg needs a URL or ALPHA_TEST_PG_URL", file=sys.stderr)
            return 2
        base = args.pg.replace("postgresql://", "postgresql+psycopg2://", 1)
        db = f"alpha_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{db}"'))
        url, store_kind = base.rsplit("/", 1)[0] + f"/{db}", "postgresql"
    else:
        db_path = args.store.resolve() if args.store else Path(tmp.name) / "serving.db"
        url, store_kind = f"sqlite:///{db_path}", "sqlite"

    load_before = os.getloadavg()
    proc = None
    try:
        print(f"filling a {store_kind} serving store: {names:,} names x {days} sessions ...", flush=True)
        if args.store and db_path.exists():  # reuse a kept store (its size is whatever filled it)
            from alpha_assets.serving.reader import ServingReader

            published, fill_s = ServingReader(url).published_days(), float("nan")
        else:
            published, fill_s = fill(url, names, days)
            # settle the fresh tables, so autovacuum does not run inside the timings
            if store_kind == "postgresql":
                vac = sa.create_engine(url, isolation_level="AUTOCOMMIT")
                with vac.connect() as c:
                    c.execute(sa.text("VACUUM ANALYZE"))
                vac.dispose()
        rows = names * days * 2 + days * (8 + 12 + 30)
        size = db_path.stat().st_size / 2**20 if store_kind == "sqlite" else None
        filled = "reused" if fill_s != fill_s else f"filled in {fill_s:.1f}s ({rows / fill_s:,.0f} rows/s)"
        print(f"store {filled}" + (f", {size:,.0f} MiB" if size else ""))
        lo, hi = (int(x) for x in args.ports.split("-"))
        proc, base_url = start_api(url, args.workers, range(lo, hi + 1))
        warm = requests_for(published, CLIENTS, seed=0)
        measured = requests_for(published, args.requests, seed=1)
        if args.only:
            measured = {k: v for k, v in measured.items() if k in args.only.split(",")}
        table, figures = [], {}
        for name in measured:
            encoding = "gzip" if name.endswith("_gzip") else "identity"
            if not name.startswith("portfolio_uncached"):  # first requests read books nobody asked for yet
                hammer(
                    base_url,
                    warm[name],
                    encoding=encoding,
                    processes=args.client_processes,
                    library=args.client,
                )
            lat, wall, nbytes, wire, burst = hammer(
                base_url,
                measured[name],
                encoding=encoding,
                processes=args.client_processes,
                library=args.client,
            )
            p50, p95, mx = np.percentile(lat, 50), np.percentile(lat, 95), max(lat)
            figures[name] = {
                "p50_ms": round(p50, 1),
                "p95_ms": round(p95, 1),
                "max_ms": round(mx, 1),
                "burst_ms": round(burst, 1),
                "req_per_s": round(len(lat) / wall, 1),
                "response_kb": round(nbytes / 1024, 1),
                "wire_kb": round(wire / 1024, 1),
            }
            table.append([name, len(lat), p50, p95, mx, burst, len(lat) / wall, nbytes / 1024, wire / 1024])
        peer_ms = peer(url, published, 30)
        for row in table:
            peer_of = peer_ms.get(row[0].removesuffix("_gzip").removesuffix("_uncached"))
            row.append(float("nan") if peer_of is None else peer_of)
            figures[row[0]]["peer_read_sql_ms"] = None if peer_of is None else round(peer_of, 1)
        load_after = os.getloadavg()
        print(
            f"\n{CLIENTS} concurrent clients ({args.client}) in {args.client_processes} process(es), {args.workers} uvicorn process(es), {store_kind} store, {names:,} names x "
            f"{days} sessions; machine: {machine()}; load average before {load_before[0]:.2f}, "
            f"after {load_after[0]:.2f}"
        )
        print_table(
            [
                "endpoint",
                "requests",
                "p50 ms",
                "p95 ms",
                "max ms",
                "burst ms",
                "req/s",
                "response KiB",
                "wire KiB",
                "peer read_sql+to_json ms (p50, 1 thread)",
            ],
            table,
        )
        worst = max(f["p95_ms"] for f in figures.values())
        print(f"\nworst p95: {worst:.1f} ms (goal < 100 ms): {'met' if worst < 100 else 'NOT met'}")
        emit(
            {
                "benchmark": "serving",
                "store": store_kind,
                "names": names,
                "sessions": days,
                "clients": CLIENTS,
                "client_processes": args.client_processes,
                "client_library": args.client,
                "workers": args.workers,
                "fill_seconds": None if fill_s != fill_s else round(fill_s, 1),
                "endpoints": figures,
                "worst_p95_ms": worst,
                "load_avg_before": round(load_before[0], 2),
                "load_avg_after": round(load_after[0], 2),
                "machine": machine(),
            }
        )
    finally:
        if proc is not None:
            stop(proc)
        if admin is not None:
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
