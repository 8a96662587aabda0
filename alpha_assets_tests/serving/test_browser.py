"""Browser tests in headless Chromium (Debian's /usr/bin/chromium driven by Playwright's Python package; never
``playwright install``): every dashboard page renders its charts with data and no console error; with API keys
a visitor without one is refused and a PM signs in with hers; the Reports page shows each stored plot with its
picture loaded (the stored PNG's bytes and size), refuses a visitor without a key and shows its hint over an empty
store; the Dagster UI shows the asset graph and materializes a partition from its own "Materialize" dialog.

Also a script for the README's pictures: ``ALPHA_SERVING_URL=... python -m alpha_assets_tests.serving.test_browser
--screenshots docs/img`` writes dashboard_fund.png and dashboard_book.png from a running dashboard.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from alpha_assets_tests.serving.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PAGES = ["/", "/book", "/risk", "/models", "/pipeline"]
# traces per chart, read from the rendered Plotly divs
TRACES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
    id: d.id, traces: (d.data || []).length,
    points: (d.data || []).reduce((n, t) => n + ((t.y || t.x || []).length || 0), 0)}))"""
# what the browser made of each picture on the page (naturalWidth 0: not loaded, or not an image)
IMAGES_JS = """() => [...document.querySelectorAll('main img')].map(i => ({
    src: new URL(i.src).pathname, alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))"""

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is absent: `apt-get install -y chromium` (.ci/install-browser.sh does it in CI)",
)


@contextlib.contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def dashboard_server(serving_url: str, **extra_env: str):
    """`alpha dashboard` in a subprocess on a free port of the API range (no API keys unless ``extra_env`` gives
    some); yields its base URL."""
    port = free_port()
    keys = ("ALPHA_API_TOKEN", "ALPHA_API_KEYS", "ALPHA_API_KEYS_FILE", "ALPHA_TLS_CERT", "ALPHA_TLS_KEY")
    env = {
        **{k: v for k, v in os.environ.items() if k not in keys},
        "ALPHA_SERVING_URL": serving_url,
        **extra_env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "alpha_assets.cli", "dashboard", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"alpha dashboard exited with {proc.returncode}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def visit(b, base: str, path: str, screenshot: Path | None = None, width: int = 1400) -> tuple[list, list]:
    """Open a page, wait for its charts; returns (charts, console errors)."""
    page = b.new_page(viewport={"width": width, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + path, wait_until="networkidle")
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0 || "
        "document.querySelector('.empty') !== null",
        timeout=30_000,
    )
    charts = page.evaluate(TRACES_JS)
    if screenshot is not None:
        _screenshot(page, screenshot)
    page.close()
    return charts, errors


def _screenshot(page, path: Path) -> None:
    """A full-page screenshot; once more after a reload if headless Chromium's capture hangs (it did once in CI,
    after "fonts loaded", on 2 busy cores with software rendering: the page had rendered, the capture never came)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.screenshot(path=str(path), full_page=True, timeout=60_000, animations="disabled")
    except PlaywrightTimeout:
        page.reload(wait_until="networkidle")
        page.screenshot(path=str(path), full_page=True, timeout=60_000, animations="disabled")


@needs_chromium
@pytest.mark.service
def test_every_dashboard_page_renders_charts_with_data_and_no_console_error(filled_store, tmp_path):
    with dashboard_server(filled_store["url"]) as base, browser() as b:
        for path in PAGES:
            shot = tmp_path / f"dashboard_{path.strip('/') or 'fund'}.png"
            charts, errors = visit(b, base, path, shot)
            assert errors == [], f"{path}: console errors {errors}"
            assert charts, f"{path}: no chart rendered"
            for chart in charts:
                assert chart["traces"] > 0 and chart["points"] > 0, f"{path}: empty chart {chart}"
            assert shot.stat().st_size > 20_000, path
        # the book's date picker loads that day's book
        page = b.new_page()
        page.goto(f"{base}/book", wait_until="networkidle")
        day = filled_store["days"][2].isoformat()
        with page.expect_navigation():
            page.select_option("#book-date", day)
        assert page.url.endswith(f"/book?date={day}") and f"Book on {day}" in page.inner_text("h1")
        page.close()


@needs_chromium
@pytest.mark.service
def test_dashboard_over_an_empty_store_shows_how_to_fill_it(tmp_path):
    with dashboard_server(f"sqlite:///{tmp_path}/serving.db") as base, browser() as b:
        page = b.new_page()
        page.goto(base + "/", wait_until="networkidle")
        assert "nothing published yet: run `make demo`" in page.inner_text(".empty")
        page.close()


@needs_chromium
@pytest.mark.service
def test_the_dashboard_refuses_a_visitor_without_a_key_and_signs_in_a_pm_with_one(filled_store):
    from alpha_assets.serving.security import key_line

    pm, ops = "ak_browser-pm-key", "ak_browser-ops-key"
    keys = key_line("pm1", "reader", pm) + "," + key_line("ops", "operator", ops)
    with dashboard_server(filled_store["url"], ALPHA_API_KEYS=keys) as base, browser() as b:
        page = b.new_page()
        refused = page.goto(f"{base}/book", wait_until="networkidle")
        assert refused.status == 401 and page.inner_text("#refused").startswith("no credentials")
        assert page.query_selector(".js-plotly-plot") is None and "Positions" not in page.content()
        # the sign-in form: the key once, then an HttpOnly cookie; the key leaves the address bar
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.fill("input[name=key]", pm)
        with page.expect_navigation(wait_until="networkidle"):
            page.click("button")
        assert page.url == f"{base}/book" and "key=" not in page.url
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
        assert "Book on" in page.inner_text("h1") and errors == []
        cookie = next(c for c in page.context.cookies() if c["name"] == "alpha_key")
        assert cookie["httpOnly"] and page.evaluate("document.cookie") == ""  # scripts cannot read it
        assert page.goto(f"{base}/pipeline").status == 403  # a PM's key: not the pipeline's run status
        assert "has role reader" in page.inner_text("#refused")
        page.close()
        # a wrong key is told apart from none
        page = b.new_page()
        assert page.goto(f"{base}/?key=ak_wrong").status == 401
        assert page.inner_text("#refused").startswith("invalid credentials")
        page.close()
        # basic auth with the key as the password (sent up front, as `curl -u` or a kiosk would): an operator
        # sees the pipeline
        basic = "Basic " + base64.b64encode(f"ops:{ops}".encode()).decode()
        context = b.new_context(extra_http_headers={"Authorization": basic})
        page = context.new_page()
        assert page.goto(f"{base}/pipeline", wait_until="networkidle").status == 200
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
        assert page.inner_text("h1").startswith("Pipeline on")
        context.close()


# the Reports page's plots: name -> (title, asset that drew it); a title with characters HTML must escape
PLOTS = {
    "hrp_dendrogram": ("HRP cluster tree, long book 2024-01-04", "portfolio/target_weights"),
    "summary_plot": ("mean |SHAP| <top 10> & the rest, 2024-01-04", "models/shap_values"),
    "ic_over_time": ("IC over time", "reports/model_report"),
}


@pytest.fixture(scope="module")
def reports_store(tmp_path_factory) -> dict:
    """A serving store with published days and the PLOTS, each a real PNG written by ``store.write_plot`` (as the
    assets that draw them do): {'url', 'png': name -> bytes}."""
    from alpha_assets.serving import store
    from alpha_assets_tests.serving.synthetic import fill_store
    from alpha_assets_tests.serving.test_reports import png

    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'serving.db'}"
    eng = store.serving_engine(url)
    fill_store(eng, names=6, days=3, seed=2)
    pictures = {}
    for name, (title, asset) in PLOTS.items():
        pictures[name] = png(name)
        store.write_plot(
            eng, name, title, asset, pictures[name], partition="2024-01-04", trade_date=date(2024, 1, 4)
        )
    eng.dispose()
    return {"url": url, "png": pictures}


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def record_pictures(page) -> dict:
    """The page's responses to /reports/<name>.png requests, by path, as the browser received them."""
    served: dict = {}

    def record(response) -> None:
        if response.url.endswith(".png"):
            served[urlparse(response.url).path] = response

    page.on("response", record)
    return served


def loaded_pictures(page) -> list[dict]:
    """Scroll each picture of the page into view (they load lazily, as a reader scrolls down), wait until the browser
    is done with every one (loaded or broken); returns what it made of them (IMAGES_JS)."""
    imgs = page.locator("main img")
    for i in range(imgs.count()):
        imgs.nth(i).scroll_into_view_if_needed(timeout=30_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('main img')].every(i => i.complete)", timeout=60_000
    )
    return page.evaluate(IMAGES_JS)


def assert_every_plot_shown_and_loaded(page, pictures: dict[str, bytes], served: dict) -> None:
    """Each plot's title and asset in its section, and its picture loaded in the browser: the stored PNG's size, from
    the stored bytes, served as image/png."""
    for name, (title, asset) in PLOTS.items():
        section = page.locator(f"section#{name}")
        assert section.locator("h2").inner_text() == title, name
        assert asset in section.inner_text() and "day 2024-01-04" in section.inner_text(), name
    images = {i["src"]: i for i in loaded_pictures(page)}
    assert sorted(images) == sorted(f"/reports/{n}.png" for n in PLOTS), images
    for name, (title, _) in PLOTS.items():
        img = images[f"/reports/{name}.png"]
        assert img["complete"] and img["width"] > 0, f"{name}: the picture did not load: {img}"
        assert (img["width"], img["height"]) == png_size(pictures[name]) and img["alt"] == title, img
        response = served[f"/reports/{name}.png"]
        assert response.status == 200 and response.headers["content-type"] == "image/png", name
        assert response.body() == pictures[name], f"{name}: the bytes served are not the stored picture"


@needs_chromium
@pytest.mark.service
def test_reports_page_shows_every_stored_plot_with_its_picture_loaded(reports_store):
    with dashboard_server(reports_store["url"]) as base, browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        served = record_pictures(page)
        assert page.goto(f"{base}/reports", wait_until="networkidle").status == 200
        assert page.inner_text("h1") == "Reports" and page.inner_text("nav a.on") == "Reports"
        assert_every_plot_shown_and_loaded(page, reports_store["png"], served)
        # the contents line links to each plot's anchor (the link in the asset's Dagster metadata)
        page.get_by_role("link", name=PLOTS["summary_plot"][0]).click()
        assert page.url == f"{base}/reports#summary_plot"
        assert errors == [], errors
        page.close()


@needs_chromium
@pytest.mark.service
def test_reports_page_refuses_a_visitor_without_a_key_and_shows_a_pm_the_pictures(reports_store):
    from alpha_assets.serving.security import key_line

    pm = "ak_browser-pm-key"
    keys = key_line("pm1", "reader", pm)
    with dashboard_server(reports_store["url"], ALPHA_API_KEYS=keys) as base, browser() as b:
        page = b.new_page()
        refused = page.goto(f"{base}/reports", wait_until="networkidle")
        assert refused.status == 401 and page.inner_text("#refused").startswith("no credentials")
        assert page.query_selector("img") is None and PLOTS["ic_over_time"][0] not in page.content()
        # nor is a picture served by its address
        picture = page.goto(f"{base}/reports/ic_over_time.png", wait_until="networkidle")
        assert picture.status == 401 and page.inner_text("#refused").startswith("no credentials")
        assert picture.body() != reports_store["png"]["ic_over_time"]
        # signed in from the form, the PM is back on /reports and her browser loads every picture (with the cookie)
        page.goto(f"{base}/reports", wait_until="networkidle")
        served = record_pictures(page)
        page.fill("input[name=key]", pm)
        with page.expect_navigation(wait_until="networkidle"):
            page.click("button")
        assert page.url == f"{base}/reports" and page.inner_text("h1") == "Reports"
        assert_every_plot_shown_and_loaded(page, reports_store["png"], served)
        page.close()


@needs_chromium
@pytest.mark.service
def test_reports_page_over_an_empty_store_shows_its_hint(tmp_path):
    from alpha_assets.serving.dashboard import NO_PLOTS

    with dashboard_server(f"sqlite:///{tmp_path}/serving.db") as base, browser() as b:
        page = b.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        assert page.goto(f"{base}/reports", wait_until="networkidle").status == 200
        hint = page.inner_text(".empty")
        assert hint == NO_PLOTS and hint.startswith("no plots in the serving store yet"), hint
        assert page.query_selector("main img") is None and "Traceback" not in page.content() and errors == []
        page.close()


@contextlib.contextmanager
def dagster_webserver(home):
    """dagster-webserver over the home's instance (default run coordinator: a run launched from the UI starts at
    once, no daemon, so no landing sensor wakes up), on a free port of the API range; yields its base URL."""
    (home.dagster / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nrun_coordinator:\n  module: dagster.core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
    )
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster), "ALPHA_HOME": str(home.root)}
    exe = str(Path(sys.executable).parent / "dagster-webserver")
    proc = subprocess.Popen(
        [exe, "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    query = {"query": "{ assetNodes { id } }"}
    try:
        for _ in range(
            480
        ):  # the code location loads in the webserver's subprocess: ~25 s here, more under load
            with contextlib.suppress(httpx.TransportError, ValueError):
                if (
                    httpx.post(f"{base}/graphql", json=query, timeout=10)
                    .json()
                    .get("data", {})
                    .get("assetNodes")
                ):
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited with {proc.returncode}")
            time.sleep(0.5)
        else:
            raise RuntimeError("dagster-webserver did not load the code location in 4 minutes")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@needs_chromium
@pytest.mark.service
@pytest.mark.slow
def test_dagster_ui_shows_the_graph_and_materializes_a_partition_from_its_dialog(home):
    import polars as pl
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

    day = "2024-01-04"  # a session of the small world (conftest.WORLD_START = 2024-01-02)
    with dagster_webserver(home) as base, browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/locations/alpha_assets/asset-groups/raw", wait_until="networkidle")
        skip = page.get_by_role("button", name="Skip")  # the first visit's newsletter dialog
        with contextlib.suppress(Exception):
            skip.click(timeout=5_000)
        # Each asset's lineage graph, centred on its node (the raw group's whole graph opens centred on prices and
        # its many dependents, so universe can lie outside the first view: a layout, not a missing node)
        for node in ("universe", "prices"):
            page.goto(f"{base}/assets/raw/{node}?view=lineage", wait_until="networkidle")
            page.get_by_text(node, exact=True).first.wait_for(state="visible", timeout=60_000)
        page.goto(f"{base}/assets/raw/universe", wait_until="networkidle")
        # On a loaded machine the first visit's newsletter dialog can open only now, over the page (seen in CI:
        # its backdrop intercepted the click below): dismiss it if it is there.
        with contextlib.suppress(Exception):
            skip.click(timeout=5_000)
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Show all partitions").click()  # the world's days are older than the last 90 days
        keys = dialog.locator("input[type=text]").first
        keys.fill(day)
        keys.press("Enter")
        dialog.get_by_role("button", name="Launch 1 run").click()
        dialog.wait_for(state="hidden", timeout=30_000)
        page.screenshot(path=str(home.root / "dagster_ui_launched.png"))
        assert errors == [], errors

    with DagsterInstance.from_config(str(home.dagster)) as instance:
        deadline = time.time() + 420  # a run's process start + code location import: ~1-2 min on 2 busy cores
        while time.time() < deadline:
            runs = instance.get_runs(RunsFilter(tags={"dagster/partition": day}))
            if runs and runs[0].status in (
                DagsterRunStatus.SUCCESS,
                DagsterRunStatus.FAILURE,
                DagsterRunStatus.CANCELED,
            ):
                break
            time.sleep(2)
        assert len(runs) == 1, f"runs for {day}: {runs}"
        assert runs[0].status == DagsterRunStatus.SUCCESS, f"the UI's run ended {runs[0].status}"
        assert runs[0].asset_selection == {AssetKey(["raw", "universe"])}
    rows = pl.read_delta(str(home.lake / "raw" / "universe")).filter(
        pl.col("trade_date") == pl.date(2024, 1, 4)
    )
    assert rows.height > 0 and rows["ticker"].n_unique() == rows.height


def main() -> int:
    ap = argparse.ArgumentParser(
        description="screenshots of the dashboard over ALPHA_SERVING_URL (or ALPHA_HOME)"
    )
    ap.add_argument("--screenshots", required=True, metavar="DIR")
    args = ap.parse_args()
    from alpha_assets.serving.store import serving_url

    out = Path(args.screenshots)
    out.mkdir(parents=True, exist_ok=True)
    with dashboard_server(serving_url()) as base, browser() as b:
        for path, name in (("/", "dashboard_fund.png"), ("/book", "dashboard_book.png")):
            charts, errors = visit(b, base, path, out / name, width=1280)
            print(f"{out / name}: {len(charts)} charts, console errors: {errors or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
