"""The imagery vendor: files where a sensor expects them, truth that follows the drivers, seeded output."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alpha_world import imagery

DATES = [date(2024, 1, 2) + timedelta(days=i) for i in range(3)]


def _drivers(column: str, values: dict[str, list[float]]) -> pl.DataFrame:
    rows = [
        {"trade_date": day, "ticker": ticker, column: series[i]}
        for ticker, series in values.items()
        for i, day in enumerate(DATES)
    ]
    return pl.DataFrame(rows, schema={"trade_date": pl.Date, "ticker": pl.String, column: pl.Float64})


@pytest.fixture(scope="module")
def parking_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parking")
    stores = pl.DataFrame({"store_id": ["S-001", "S-002", "S-003"], "ticker": ["AAA", "AAA", "GONE"]})
    traffic = _drivers("store_traffic", {"AAA": [-2.0, 0.0, 2.0]})  # GONE is not listed: no rows
    imagery.generate_parking_images(root / "landing", root / "truth", stores, DATES, traffic, seed=7)
    return root


@pytest.fixture(scope="module")
def tank_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tanks")
    farms = pl.DataFrame({"farm_id": ["F-01"], "ticker": ["OIL"]})
    inventory = _drivers("tank_inventory", {"OIL": [-2.0, 0.0, 2.0]})
    imagery.generate_tank_images(root / "landing", root / "truth", farms, DATES, inventory, seed=7)
    return root


def test_parking_images_land_under_their_trading_date_with_a_sidecar(parking_world: Path) -> None:
    for day in DATES:
        folder = parking_world / "landing" / "parking" / day.isoformat()
        assert sorted(p.name for p in folder.iterdir()) == [
            "S-001.json",
            "S-001.png",
            "S-002.json",
            "S-002.png",
        ]
        meta = json.loads((folder / "S-001.json").read_text())
        assert meta["store_id"] == "S-001" and meta["ticker"] == "AAA"
        assert meta["gsd_m"] == imagery.PARKING_GSD_M
        assert meta["captured_at"].startswith(day.isoformat())
        with open(folder / "S-001.png", "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_car_counts_follow_store_traffic_from_a_store_base(parking_world: Path) -> None:
    truth = pl.read_parquet(parking_world / "truth" / "parking_counts.parquet").sort("store_id", "trade_date")
    assert truth.columns == ["trade_date", "store_id", "ticker", "true_count"]
    assert set(truth["store_id"]) == {"S-001", "S-002"}
    for _, rows in truth.group_by("store_id"):
        low, base, high = rows["true_count"].to_list()
        assert imagery.BASE_CARS_RANGE[0] <= base <= imagery.BASE_CARS_RANGE[1]
        assert low == round(base * math.exp(-0.5)) and high == round(base * math.exp(0.5))


def test_detector_training_set_labels_every_car_in_yolo_format(tmp_path: Path) -> None:
    yaml_path = imagery.generate_detector_training_set(tmp_path / "ds", n_images=5, seed=3)
    labels = sorted((tmp_path / "ds" / "labels").rglob("*.txt"))
    images = sorted((tmp_path / "ds" / "images").rglob("*.png"))
    assert len(labels) == len(images) == 5
    assert len(list((tmp_path / "ds" / "images" / "val").glob("*.png"))) == 1
    boxes = np.array(
        [[float(v) for v in line.split()] for f in labels for line in f.read_text().splitlines()]
    )
    assert len(boxes) > 5 * 10
    assert (boxes[:, 0] == 0).all() and ((boxes[:, 1:] >= 0) & (boxes[:, 1:] <= 1)).all()
    # A car is 4.2-4.9 m long; its box is at least that long in one direction.
    long_side_m = boxes[:, 3:5].max(axis=1) * 320 * imagery.PARKING_GSD_M
    assert long_side_m.min() > 4.0 and long_side_m.max() < 5.5
    spec = yaml_path.read_text()
    assert f"path: {(tmp_path / 'ds').resolve()}" in spec and "0: car" in spec


def test_truth_is_the_number_of_cars_drawn_even_when_the_lot_is_full(tmp_path: Path) -> None:
    stores = pl.DataFrame({"store_id": ["S-full"], "ticker": ["AAA"]})
    traffic = _drivers("store_traffic", {"AAA": [12.0, 12.0, 12.0]})  # exp(3) × base: more cars than stalls
    imagery.generate_parking_images(tmp_path, tmp_path / "truth", stores, DATES[:1], traffic, seed=5)
    drawn = pl.read_parquet(tmp_path / "truth" / "parking_counts.parquet")["true_count"].item()
    layout = imagery._parking_layout(imagery._rng(5, "parking-layout", "S-full"), 320, imagery.PARKING_GSD_M)
    assert drawn == imagery._parking_capacity(layout) < round(15 * math.exp(3.0))


def test_imagery_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    stores = pl.DataFrame({"store_id": ["S-9"], "ticker": ["AAA"]})
    traffic = _drivers("store_traffic", {"AAA": [0.3, 0.1, -0.4]})
    for run in ("a", "b"):
        imagery.generate_parking_images(
            tmp_path / run, tmp_path / run / "truth", stores, DATES[:1], traffic, seed=5
        )
    png = f"parking/{DATES[0].isoformat()}/S-9.png"
    assert (tmp_path / "a" / png).read_bytes() == (tmp_path / "b" / png).read_bytes()


def test_tank_sidecar_carries_sun_angles_but_no_tank_geometry(tank_world: Path) -> None:
    meta = json.loads((tank_world / "landing" / "tanks" / DATES[0].isoformat() / "F-01.json").read_text())
    assert set(meta) == {
        "farm_id",
        "ticker",
        "captured_at",
        "gsd_m",
        "sun_elevation_deg",
        "sun_azimuth_deg",
        "image_size_px",
    }
    lo, hi = imagery.TANK_SUN_ELEVATION_DEG
    assert lo <= meta["sun_elevation_deg"] <= hi


def test_tank_fills_track_inventory_within_bounds(tank_world: Path) -> None:
    truth = pl.read_parquet(tank_world / "truth" / "tank_fills.parquet")
    assert truth["tank_id"].n_unique() >= 3
    per_day = truth.group_by("trade_date").agg(pl.col("fill_ratio").mean()).sort("trade_date")["fill_ratio"]
    assert per_day[0] == pytest.approx(0.25, abs=0.05)
    assert per_day[1] == pytest.approx(0.55, abs=0.05)
    assert per_day[2] == pytest.approx(0.85, abs=0.05)
    assert truth["fill_ratio"].min() >= 0.1 and truth["fill_ratio"].max() <= 0.95


def test_a_fuller_tank_shows_less_shadow_on_its_roof(tank_world: Path) -> None:
    from alpha_assets.lib.altdata.vision.images import read_gray

    truth = pl.read_parquet(tank_world / "truth" / "tank_fills.parquet")
    tank = truth.filter(pl.col("tank_id") == truth["tank_id"][0]).sort("trade_date")
    dark_share = []
    for row in tank.iter_rows(named=True):
        gray = read_gray(tank_world / "landing" / "tanks" / row["trade_date"].isoformat() / "F-01.png")
        yy, xx = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]] + 0.5
        roof = (xx - row["center_x_px"]) ** 2 + (yy - row["center_y_px"]) ** 2 < (row["radius_px"] - 2) ** 2
        dark_share.append(float((gray[roof] < 0.6 * np.median(gray[roof])).mean()))
    assert dark_share[0] > dark_share[1] > dark_share[2]
