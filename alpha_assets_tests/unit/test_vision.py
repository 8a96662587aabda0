"""Satellite-imagery library: the NMS shim, tank fills from shadow geometry, car counting, corrupt images."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.altdata.vision.images import ImageReadError, read_rgb
from alpha_assets.lib.altdata.vision.tank_analyzer import analyze_tank_image
from alpha_assets.lib.altdata.vision.torchvision_shim import ensure_torchvision_ops, nms_reference_kernel

DATES = [date(2024, 2, 1) + timedelta(days=i) for i in range(3)]
# Training the detector and its count error on the vendor's lots are tested through the asset, on the demo
# world: alpha_assets_tests/altdata/test_vision_assets.py.


def _numpy_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Textbook greedy NMS, one pair at a time, in float32 like torchvision's CPU kernel."""
    boxes = boxes.astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for rank, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        for j in order[rank + 1 :]:
            w = max(np.float32(0), min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(np.float32(0), min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = np.float32(w * h)
            if inter / (areas[i] + areas[j] - inter) > np.float32(threshold):
                suppressed[j] = True
    return keep


def _random_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.uniform(0, 200, (n // 10, 2))[rng.integers(0, n // 10, n)] + rng.normal(0, 6, (n, 2))
    sizes = rng.uniform(5, 40, (n, 2))
    boxes = np.hstack([centres - sizes / 2, centres + sizes / 2]).astype(np.float32)
    scores = np.round(rng.uniform(0, 1, n), 2).astype(np.float32)  # rounded: ties must keep input order
    return boxes, scores


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_shim_nms_keeps_the_same_boxes_as_a_numpy_reference(threshold: float) -> None:
    import torch

    assert ensure_torchvision_ops() in {"shim", "compiled"}
    import torchvision

    rng = np.random.default_rng(int(threshold * 10))
    for n in (1, 7, 300):
        boxes, scores = _random_boxes(rng, max(n, 10))
        boxes, scores = boxes[:n], scores[:n]
        expected = _numpy_nms(boxes, scores, threshold)
        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        assert nms_reference_kernel(tb, ts, threshold).tolist() == expected
        assert torchvision.ops.nms(tb, ts, threshold).tolist() == expected


def test_shim_nms_of_no_boxes_is_empty_and_batched_nms_separates_classes() -> None:
    import torch

    ensure_torchvision_ops()
    import torchvision

    empty = torchvision.ops.nms(torch.zeros((0, 4)), torch.zeros(0), 0.5)
    assert empty.dtype == torch.long and empty.numel() == 0
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [1.0, 1.0, 11.0, 11.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert torchvision.ops.nms(boxes, scores, 0.5).tolist() == [0]
    assert torchvision.ops.batched_nms(boxes, scores, torch.tensor([0, 1, 1]), 0.5).tolist() == [0, 1]


def test_ensure_torchvision_ops_is_idempotent() -> None:
    assert ensure_torchvision_ops() == ensure_torchvision_ops()


@pytest.fixture(scope="module")
def tank_images(tmp_path_factory) -> Path:
    from alpha_world.imagery import generate_tank_images

    root = tmp_path_factory.mktemp("tank_images")
    farms = pl.DataFrame({"farm_id": [f"F{i}" for i in range(4)], "ticker": ["AAA", "BBB", "CCC", "DDD"]})
    rng = np.random.default_rng(1)
    inventory = pl.DataFrame(
        {
            "trade_date": [d for d in DATES for _ in range(4)],
            "ticker": ["AAA", "BBB", "CCC", "DDD"] * len(DATES),
            "tank_inventory": rng.normal(0, 1.5, 4 * len(DATES)),
        }
    )
    generate_tank_images(root / "landing", root / "truth", farms, DATES, inventory, seed=21)
    return root


def _matched_tanks(root: Path) -> tuple[pl.DataFrame, int]:
    truth = pl.read_parquet(root / "truth" / "tank_fills.parquet")
    rows, extra = [], 0
    for (day, farm), expected in truth.group_by(["trade_date", "farm_id"]):
        png = root / "landing" / "tanks" / day.isoformat() / f"{farm}.png"
        meta = json.loads(png.with_suffix(".json").read_text())
        found = analyze_tank_image(png, meta["sun_elevation_deg"], meta["sun_azimuth_deg"], meta["gsd_m"])
        extra += max(0, len(found) - expected.height)
        for tank in expected.iter_rows(named=True):
            near = [
                f
                for f in found
                if np.hypot(f["center_x_px"] - tank["center_x_px"], f["center_y_px"] - tank["center_y_px"])
                < 2
            ]
            rows.append(
                {
                    "true_fill": tank["fill_ratio"],
                    "true_height_m": tank["height_m"],
                    "true_radius_px": tank["radius_px"],
                    "fill": near[0]["fill_ratio"] if near else None,
                    "height_m": near[0]["height_m"] if near else None,
                    "radius_px": near[0]["radius_px"] if near else None,
                }
            )
    return pl.DataFrame(rows), extra


def test_tank_fill_is_read_from_roof_and_ground_shadows(tank_images: Path) -> None:
    tanks, extra = _matched_tanks(tank_images)
    assert tanks.height >= 30
    assert tanks["fill"].null_count() == 0 and extra == 0  # every tank found, nothing else taken for one
    mae = (tanks["fill"] - tanks["true_fill"]).abs().mean()
    assert mae <= 0.05
    # Height and size come out of the same geometry: the capacity of each tank is known too.
    assert ((tanks["height_m"] / tanks["true_height_m"] - 1).abs() < 0.05).all()
    assert ((tanks["radius_px"] - tanks["true_radius_px"]).abs() < 1.0).all()


def test_a_farm_without_tanks_yields_no_tanks(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    ground = np.clip(120 + rng.normal(0, 3, (160, 160, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(ground).save(tmp_path / "empty.png")
    assert analyze_tank_image(tmp_path / "empty.png", 45.0, 180.0, 0.5) == []


@pytest.fixture
def corrupt_png(tmp_path: Path) -> Path:
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(good)
    data = good.read_bytes()
    bad = tmp_path / "2024-02-01" / "S-042.png"
    bad.parent.mkdir()
    bad.write_bytes(data[: len(data) // 2])
    return bad


def test_a_corrupt_png_raises_an_error_naming_the_file(corrupt_png: Path) -> None:
    with pytest.raises(ImageReadError, match="S-042.png") as err:
        read_rgb(corrupt_png)
    assert err.value.path == corrupt_png
    with pytest.raises(ImageReadError, match="S-042.png"):
        analyze_tank_image(corrupt_png, 45.0, 180.0, 0.5)
    not_an_image = corrupt_png.with_name("notes.png")
    not_an_image.write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.png"):
        read_rgb(not_an_image)


def test_count_cars_gives_one_row_per_image_and_rejects_a_corrupt_one(
    tmp_path: Path, corrupt_png: Path
) -> None:
    from alpha_assets.lib.altdata.vision.car_detector import count_cars, new_car_detector
    from alpha_world.imagery import generate_detector_training_set

    generate_detector_training_set(tmp_path / "ds", n_images=3, seed=1)
    images = sorted((tmp_path / "ds" / "images").rglob("*.png"))
    model = new_car_detector()  # untrained: the plumbing, not the accuracy, is under test here
    counts = count_cars(model, images, conf=0.5, batch_size=2)
    assert counts.columns == ["path", "n_cars", "mean_conf"]
    assert counts["path"].to_list() == [str(p) for p in images]
    assert counts["n_cars"].dtype == pl.Int32 and (counts["n_cars"] >= 0).all()
    with pytest.raises(ImageReadError, match="S-042.png"):
        count_cars(model, [images[0], corrupt_png])


def test_count_cars_picks_the_class_named_car() -> None:
    from alpha_assets.lib.altdata.vision.car_detector import car_class_ids_of

    class Coco:
        names = {0: "person", 1: "bicycle", 2: "car", 7: "truck"}

    class Generated:
        names = {0: "car"}

    assert car_class_ids_of(Coco()) == [2]
    assert car_class_ids_of(Generated()) == [0]


def test_tank_images_analysed_in_worker_processes_give_the_same_tanks_in_order(tank_images: Path) -> None:
    from alpha_assets.lib.altdata.vision import analyze_tank_arrays, read_gray

    jobs = []
    for png in sorted((tank_images / "landing" / "tanks").glob("*/*.png"))[:6]:
        meta = json.loads(png.with_suffix(".json").read_text())
        jobs.append((read_gray(png), meta["sun_elevation_deg"], meta["sun_azimuth_deg"], meta["gsd_m"]))
    jobs.insert(2, (jobs[0][0], 95.0, 180.0, 0.5))  # a bad sidecar value: its reason, in its place
    alone = analyze_tank_arrays(jobs, workers=1)
    spread = analyze_tank_arrays(jobs, workers=2, chunk=2)
    assert isinstance(alone[2], str) and "sun elevation" in alone[2]
    assert all(isinstance(r, list) and r for i, r in enumerate(alone) if i != 2)
    # NaN (an unmeasurable shadow) compares unequal to itself: compare the rows' reprs
    assert [repr(r) for r in spread] == [repr(r) for r in alone]
