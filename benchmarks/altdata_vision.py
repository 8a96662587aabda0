"""Satellite-imagery throughput on this machine: car counting (YOLO, CPU) and tank analysis, images per second.

Run: ``.venv/bin/python benchmarks/altdata_vision.py [--quick] [--weights PATH] [--threads 2]``.

Car detection: the platform's ``count_cars`` (decodes and validates every PNG, batched CPU inference) timed
against ultralytics' own ``model.predict`` on the same file paths (its loader, batch of one image at a time as
a sensor-driven pipeline would call it, and its batched mode), at the detector's training size (320) and at
ultralytics' default 640. Throughput does not depend on the weights' quality: without ``--weights`` an untrained
YOLOv8n built from its architecture file is timed (same network, same NMS). Each figure is the best of two
rounds that alternate the implementations; torch runs with ``--threads`` threads for all of them. Tank analysis
has no peer library; its throughput is reported alone. The simulator's rendering speed is reported for sizing
demo worlds. The last line of output is one JSON object with every figure. `measure` is also run by
``benchmarks/altdata.py``, the combined alt-data throughput table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl


def _timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(quick: bool = False, weights: Path | None = None, threads: int = 2) -> dict:
    """Render the images, time car detection (ours vs ultralytics) and tank analysis; return every figure."""
    import torch

    torch.set_num_threads(threads)
    from alpha_assets.lib.altdata.vision.car_detector import count_cars, load_car_detector, new_car_detector
    from alpha_assets.lib.altdata.vision.tank_analyzer import analyze_tank_image
    from alpha_assets.lib.altdata.vision.torchvision_shim import ensure_torchvision_ops
    from alpha_world.imagery import generate_parking_images, generate_tank_images

    # --quick: a smoke run (make bench, CI): the same calls and peers on a handful of images, one round
    n_parking = 4 if quick else 48
    n_tank_days = 2 if quick else 10
    sizes = [320] if quick else [320, 640]
    rounds = 1 if quick else 2
    nms_mode = ensure_torchvision_ops()

    with tempfile.TemporaryDirectory(prefix="bench-vision-") as tmp:
        root = Path(tmp)
        n_stores = 4 if quick else 8
        days = [date(2024, 1, 2) + timedelta(days=i) for i in range(max(1, n_parking // n_stores))]
        stores = pl.DataFrame(
            {"store_id": [f"S{i:03d}" for i in range(n_stores)], "ticker": ["AAA"] * n_stores}
        )
        traffic = pl.DataFrame(
            {"trade_date": days, "ticker": ["AAA"] * len(days), "store_traffic": [0.0] * len(days)}
        )
        render_parking_s = _timed(
            lambda: generate_parking_images(root / "landing", root / "truth", stores, days, traffic, seed=1)
        )
        parking = sorted((root / "landing" / "parking").rglob("*.png"))

        farms = pl.DataFrame({"farm_id": ["F0", "F1"], "ticker": ["OIL", "OIL"]})
        tank_days = [date(2024, 1, 2) + timedelta(days=i) for i in range(n_tank_days)]
        inventory = pl.DataFrame(
            {
                "trade_date": tank_days,
                "ticker": ["OIL"] * n_tank_days,
                "tank_inventory": np.linspace(-1, 1, n_tank_days),
            }
        )
        render_tanks_s = _timed(
            lambda: generate_tank_images(
                root / "landing", root / "truth", farms, tank_days, inventory, seed=1
            )
        )
        tank_pngs = sorted((root / "landing" / "tanks").rglob("*.png"))
        metas = [json.loads(p.with_suffix(".json").read_text()) for p in tank_pngs]

        model = load_car_detector(weights) if weights else new_car_detector()
        count_cars(model, parking[:2], imgsz=sizes[0])  # warm-up: first call builds the predictor
        # building the predictor runs ultralytics' select_device, which sets torch to cpu_count - 1 threads
        # (1 on 2 cores): put back the thread count asked for, for ours and the peer alike
        torch.set_num_threads(threads)
        rows = []
        for imgsz in sizes:
            candidates = {
                ("count_cars", "batch 16"): lambda s=imgsz: count_cars(
                    model, parking, imgsz=s, batch_size=16
                ),
                ("count_cars", "batch 1"): lambda s=imgsz: count_cars(model, parking, imgsz=s, batch_size=1),
                ("ultralytics predict", "batch 16"): lambda s=imgsz: [
                    model.predict(
                        [str(p) for p in parking[i : i + 16]], imgsz=s, conf=0.25, device="cpu", verbose=False
                    )
                    for i in range(0, len(parking), 16)
                ],
                ("ultralytics predict", "batch 1"): lambda s=imgsz: [
                    model.predict(str(p), imgsz=s, conf=0.25, device="cpu", verbose=False) for p in parking
                ],
            }
            # rounds alternate ours and the peer, best of each: load from other work on a shared machine comes
            # and goes, and timing one implementation after the other would charge it to whichever ran then
            best = dict.fromkeys(candidates, float("inf"))
            for _ in range(rounds):
                for key, fn in candidates.items():
                    best[key] = min(best[key], _timed(fn))
            for (impl, mode), seconds in best.items():
                rows.append(
                    {
                        "task": "car detection",
                        "impl": impl,
                        "mode": mode,
                        "imgsz": imgsz,
                        "images": len(parking),
                        "seconds": seconds,
                        "images_per_s": len(parking) / seconds,
                        "best_of": rounds,
                    }
                )

        def analyze_all() -> int:
            return sum(
                len(analyze_tank_image(p, m["sun_elevation_deg"], m["sun_azimuth_deg"], m["gsd_m"]))
                for p, m in zip(tank_pngs, metas, strict=True)
            )

        threads_timed = torch.get_num_threads()  # still `threads` unless a timed call reset it
        n_tanks = analyze_all()
        tank_s = _timed(analyze_all, repeat=2)
        rows.append(
            {
                "task": "tank analysis",
                "impl": "analyze_tank_image",
                "mode": "1 image",
                "imgsz": 320,
                "images": len(tank_pngs),
                "seconds": tank_s,
                "images_per_s": len(tank_pngs) / tank_s,
            }
        )

    machine = {
        "nproc": os.cpu_count(),
        "torch_threads": threads,
        "torch_threads_after_detection": threads_timed,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision_nms": nms_mode,
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews every figure
        "weights": str(weights) if weights else "untrained yolov8n.yaml",
    }
    return {
        "benchmark": "altdata_vision",
        "quick": quick,
        "machine": machine,
        "sizes": sizes,
        "tanks_found": n_tanks,
        "simulator_images_per_s": {
            "parking": len(parking) / render_parking_s,
            "tanks": len(tank_pngs) / render_tanks_s,
        },
        "results": rows,
    }


def headline(figures: dict, imgsz: int) -> tuple[dict, dict]:
    """At `imgsz`: count_cars batched (the platform's way) and ultralytics predict one image at a time."""
    rows = figures["results"]
    ours = next(
        r for r in rows if r["impl"] == "count_cars" and r["mode"] == "batch 16" and r["imgsz"] == imgsz
    )
    peer = next(
        r for r in rows if r["impl"] != "count_cars" and r["mode"] == "batch 1" and r["imgsz"] == imgsz
    )
    return ours, peer


def report(figures: dict) -> None:
    rows, sim = figures["results"], figures["simulator_images_per_s"]
    print(f"machine: {figures['machine']}")
    print(f"simulator: parking {sim['parking']:.1f} img/s, tanks {sim['tanks']:.1f} img/s")
    print(
        f"{'task':<15} {'implementation':<20} {'mode':<9} {'imgsz':>5} {'images':>6} {'seconds':>8} {'img/s':>7}"
    )
    for r in rows:
        print(
            f"{r['task']:<15} {r['impl']:<20} {r['mode']:<9} {r['imgsz']:>5} {r['images']:>6} "
            f"{r['seconds']:>8.2f} {r['images_per_s']:>7.1f}"
        )
    for imgsz in figures["sizes"]:
        ours, peer = headline(figures, imgsz)
        print(
            f"imgsz {imgsz}: count_cars (batch 16) is {ours['images_per_s'] / peer['images_per_s']:.2f}x "
            f"ultralytics predict one image at a time"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    parser.add_argument("--weights", type=Path, default=None, help="trained detector weights (optional)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    figures = measure(args.quick, args.weights, args.threads)
    report(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
