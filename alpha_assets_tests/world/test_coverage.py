"""World v3 coverage: each alt-data vendor follows its share of the names over the whole world span, at its cadence,
and the same seed writes byte-identical files."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from alpha_world.altdata import (
    RETAIL_SECTORS,
    TANK_SECTORS,
    AltDataConfig,
    coverage,
    delivery_days,
    write_alt_data,
)
from alpha_world.simulate import WorldConfig, simulate_world
from alpha_world.vendors import write_world

START = date(2024, 1, 2)
# small and cheap: a few images, no detector set, one render process
SMALL = AltDataConfig(
    parking_share=0.1,
    tank_share=0.05,
    web_share=0.25,
    text_share=0.5,
    stores_per_ticker=2,
    image_every=20,
    tank_every=40,
    web_every=10,
    detector_images=0,
    render_workers=1,
)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    world = simulate_world(WorldConfig(tickers=20, start=START, days=80, seed=5))
    root = tmp_path_factory.mktemp("coverage_world")
    write_world(world, root)
    summary = write_alt_data(world, root, SMALL)
    return world, root, summary


def _live_sessions(world, ticker: str) -> list[date]:
    return world.drivers.filter(pl.col("ticker") == ticker)["trade_date"].sort().to_list()


def test_each_source_covers_its_share_of_names_preferring_its_sectors() -> None:
    world = simulate_world(WorldConfig(tickers=60, start=START, days=10, seed=11))
    cfg = AltDataConfig(parking_share=0.25, tank_share=0.1, web_share=0.3, text_share=0.5)
    cov = coverage(world, cfg)
    counts = dict(cov.group_by("source").len().iter_rows())
    assert counts == {"parking": 15, "tanks": 6, "web": 18, "text": 30}
    sector = dict(world.universe.select("ticker", "sector").iter_rows())
    for source, preferred in (("parking", RETAIL_SECTORS), ("tanks", TANK_SECTORS)):
        names = cov.filter(pl.col("source") == source)["ticker"].to_list()
        in_sector = [t for t in names if sector[t] in preferred]
        candidates = [t for t, s in sector.items() if s in preferred]
        if source == "tanks":  # a retailer is never also a tank operator
            candidates = [
                t for t in candidates if t not in cov.filter(pl.col("source") == "parking")["ticker"]
            ]
        # the sector's names come first, other names only top the list up
        assert len(in_sector) == min(len(names), len(candidates))
    parking = set(cov.filter(pl.col("source") == "parking")["ticker"])
    assert parking.isdisjoint(cov.filter(pl.col("source") == "tanks")["ticker"])


def test_delivery_days_count_back_from_the_last_session() -> None:
    sessions = [date(2024, 1, d) for d in range(2, 13)]  # 11 days, calendar only matters to the caller
    assert delivery_days(sessions, 5) == [sessions[0], sessions[5], sessions[10]]
    assert delivery_days(sessions, 1) == sessions
    assert delivery_days(sessions, 0) == []
    assert delivery_days(sessions, 5, last_n=3) == sessions[-3:]  # the v2 trailing window, every session
    assert delivery_days(sessions, 5, last_n=0) == []


def test_covered_names_are_imaged_from_their_first_to_their_last_session_at_the_cadence(small_world) -> None:
    world, root, summary = small_world
    stores = pl.read_parquet(root / "ground_truth" / "stores.parquet")
    assert stores.height == 2 * 2  # 10% of 20 names, two stores each
    expected_days = delivery_days(world.sessions, SMALL.image_every)
    assert expected_days[-1] == world.sessions[-1] and expected_days[0] in world.sessions[: SMALL.image_every]
    for store_id, ticker in stores.iter_rows():
        live = set(_live_sessions(world, ticker))
        imaged = sorted(
            date.fromisoformat(p.parent.name)
            for p in (root / "landing" / "parking").glob(f"*/{store_id}.png")
        )
        assert imaged == [d for d in expected_days if d in live]
        assert (root / "landing" / "parking" / imaged[0].isoformat() / f"{store_id}.json").exists()
    farms = pl.read_parquet(root / "ground_truth" / "farms.parquet")
    tank_days = delivery_days(world.sessions, SMALL.tank_every)
    for farm_id, ticker in farms.iter_rows():
        live = set(_live_sessions(world, ticker))
        imaged = sorted(
            date.fromisoformat(p.parent.name) for p in (root / "landing" / "tanks").glob(f"*/{farm_id}.png")
        )
        assert imaged == [d for d in tank_days if d in live]
    assert summary["parking_images"] == len(list((root / "landing" / "parking").glob("*/*.png")))


def test_web_and_text_vendors_cover_their_names_over_the_whole_span_and_no_others(small_world) -> None:
    world, root, _ = small_world
    cov = pl.read_parquet(root / "ground_truth" / "coverage.parquet")
    web = set(cov.filter(pl.col("source") == "web")["ticker"])
    text = set(cov.filter(pl.col("source") == "text")["ticker"])
    assert len(web) == 5 and len(text) == 10
    web_days = delivery_days(world.sessions, SMALL.web_every)
    pages = {
        (p.parent.name, p.stem)
        for p in (root / "vendor_site" / "products").glob("*/*.html")
        if p.stem != "index"
    }
    for ticker in web:
        live = set(_live_sessions(world, ticker))
        assert {d for d, t in pages if t == ticker} == {d.isoformat() for d in web_days if d in live}
    assert {t for _, t in pages} == web
    calls = pl.read_parquet(root / "ground_truth" / "transcript_tone.parquet")
    assert set(calls["ticker"]) <= text
    for ticker in text:
        live = _live_sessions(world, ticker)
        dates = calls.filter(pl.col("ticker") == ticker)["call_date"].sort().to_list()
        if len(live) < 63:  # listed too briefly for a call
            continue
        # one call a quarter from the start of the world to its end
        assert dates and dates[0] < world.sessions[63] and dates[-1] >= world.sessions[-63]
    filings = list((root / "landing" / "filings").glob("*.txt"))
    assert {p.name.split("_")[0] for p in filings} <= text


def _digest(root: Path) -> dict[str, str]:
    # alt_data.json holds the stage timings; the detector set's data.yaml names its own absolute folder
    return {
        str(p.relative_to(root)): hashlib.sha256(
            p.read_bytes().replace(str(root).encode(), b"<root>")
        ).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "alt_data.json"
    }


def test_the_same_seed_writes_identical_vendor_files_and_truth_for_any_number_of_render_workers(
    tmp_path,
) -> None:
    cfg = AltDataConfig(
        parking_share=0.2,
        tank_share=0.1,
        web_share=0.3,
        text_share=0.5,
        image_every=15,
        tank_every=10,
        web_every=5,
        detector_images=2,
        render_workers=1,
    )
    digests = []
    for run, workers in (("a", 1), ("b", 2)):
        world = simulate_world(
            WorldConfig(tickers=10, start=START, days=30, seed=9, regime_break=date(2024, 1, 25))
        )
        root = tmp_path / run
        write_world(world, root)
        write_alt_data(world, root, AltDataConfig(**{**cfg.__dict__, "render_workers": workers}))
        digests.append(_digest(root))
    assert digests[0] == digests[1]
    names = set(digests[0])
    assert {
        "ground_truth/oracle.parquet",
        "ground_truth/oracle_ic.json",
        "ground_truth/deliveries.parquet",
    } <= names
    assert any(n.startswith("landing/parking/") for n in names) and any(
        n.startswith("landing/tanks/") for n in names
    )
    meta = json.loads((tmp_path / "a" / "ground_truth" / "world.json").read_text())
    assert meta["regime_break"] == "2024-01-25" and meta["regime_mode"] == "flip"


def test_the_detector_set_comes_first_and_says_so(tmp_path) -> None:
    """The demo starts training the car detector from ``after_detector_set``: the labelled set is complete then, and
    the world's other images are drawn after it."""
    seen: list[tuple[int, int]] = []
    world = simulate_world(WorldConfig(tickers=10, start=START, days=30, seed=9))
    write_world(world, tmp_path)
    landing = tmp_path / "landing"

    def started() -> None:
        seen.append(
            (
                len(list((landing / "detector_training").rglob("*.png"))),
                len(list((landing / "parking").rglob("*.png"))) if (landing / "parking").exists() else 0,
            )
        )

    cfg = AltDataConfig(**{**SMALL.__dict__, "detector_images": 3})
    write_alt_data(world, tmp_path, cfg, after_detector_set=started)
    assert seen == [(3, 0)]
    assert list((landing / "parking").rglob("*.png"))  # drawn afterwards
