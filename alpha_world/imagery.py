"""Satellite-imagery vendor of the demo world: parking-lot and oil-tank-farm PNGs drawn to known truth.

The simulator plays the imagery vendor. For every trading date it writes one aerial PNG per store parking lot
and per tank farm into the landing zone, each with a JSON sidecar carrying the acquisition metadata a real
vendor delivers (capture time, ground sample distance, sun angles). The numbers the pipeline must recover
(cars per lot, fill ratio per tank) go to the ground-truth folder, which the pipeline never reads.

Geometry conventions shared with `alpha_assets.lib.altdata.vision`: image coordinates in pixels, origin at the
top-left corner of the top-left pixel, x to the right (east), y down (south); north is up. Sun azimuth is in
degrees clockwise from north, so the unit vector pointing towards the sun in image coordinates is
``(sin(az), -cos(az))``.

Parking lots: the number of cars is ``round(base_count × exp(0.25 × store_traffic))`` with a per-store base of
15-40, drawn as small rotated cars with windscreens among trees (which partly hide some cars), lamp posts,
painted lines and shopping carts, under varying light. Tank farms: floating-roof tanks whose roof sits at
``fill × height``; the tank wall casts a crescent on the roof of width ``(1 - fill) × height / tan(elevation)``
and a stadium-shaped shadow on the ground of length ``height / tan(elevation)``, so ``fill = 1 - crescent /
ground shadow``.

Only numpy, polars and OpenCV (imported inside the drawing functions) are used; everything is seeded.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl

PARKING_GSD_M = 0.22
TANK_GSD_M = 0.5
CAR_TRAFFIC_ELASTICITY = 0.25
BASE_CARS_RANGE = (15, 40)
TANK_FILL_CENTER = 0.55
TANK_FILL_BETA = 0.15
TANK_FILL_NOISE = 0.03
TANK_FILL_RANGE = (0.1, 0.95)
TANK_SUN_ELEVATION_DEG = (38.0, 58.0)
TANK_SUN_AZIMUTH_DEG = (135.0, 225.0)

# Parking-lot dimensions in metres (a typical US retail lot).
_STALL_WIDTH_M = 2.6
_STALL_DEPTH_M = 5.3
_AISLE_M = 7.0
_STRIP_M = 1.6
_CAR_LENGTH_M = (4.2, 4.9)
_CAR_WIDTH_M = (1.75, 1.95)
_CAR_HEIGHT_M = 1.5
_LOT_MARGIN_PX = 8
_SUPERSAMPLE_PARKING = 2
_SUPERSAMPLE_TANKS = 4

# (RGB colour, probability) of car paints seen from above.
_CAR_PAINTS: tuple[tuple[tuple[int, int, int], float], ...] = (
    ((228, 228, 224), 0.24),
    ((176, 178, 182), 0.18),
    ((128, 130, 134), 0.12),
    ((34, 35, 40), 0.18),
    ((156, 32, 30), 0.09),
    ((38, 62, 132), 0.10),
    ((44, 80, 54), 0.04),
    ((196, 180, 142), 0.05),
)


def _rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (stable across processes and runs)."""
    entropy = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        if isinstance(key, date):
            entropy.append(key.toordinal())
        elif isinstance(key, int):
            entropy.append(key & 0xFFFFFFFF)
        else:
            entropy.append(zlib.crc32(str(key).encode()))
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _smooth_noise(rng: np.random.Generator, size: int, scale_px: float) -> np.ndarray:
    """Zero-mean, unit-std low-frequency noise field (size × size) with features about scale_px wide."""
    import cv2

    coarse = max(2, int(round(size / max(scale_px, 1.0))))
    field = cv2.resize(
        rng.standard_normal((coarse, coarse)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
    )
    field -= field.mean()
    return field / (field.std() + 1e-6)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f"could not write {path}")


def _write_sidecar(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))


def _captured_at(day: date, rng: np.random.Generator, hour_utc: float) -> str:
    minutes = int(rng.integers(-40, 41))
    stamp = datetime.combine(day, time(0, 0), tzinfo=UTC) + timedelta(hours=hour_utc, minutes=minutes)
    return stamp.isoformat()


def _lookup(frame: pl.DataFrame, value_col: str) -> dict[tuple[date, str], float]:
    rows = frame.select(pl.col("trade_date").cast(pl.Date), "ticker", value_col).drop_nulls().iter_rows()
    return {(d, t): float(v) for d, t, v in rows}


# --------------------------------------------------------------------------------------------------------------
# Parking lots
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stall:
    cx: float
    cy: float
    heading: float  # radians; direction the car's nose points, image coordinates


@dataclass(frozen=True)
class _ParkingLayout:
    """The static scene of one lot in its canonical frame (rows of stalls run along x)."""

    size: int
    gsd_m: float
    rotation: int  # number of 90° counter-clockwise turns applied to the rendered image
    asphalt_rgb: tuple[float, float, float]
    stalls: tuple[_Stall, ...]
    corral_stalls: tuple[int, ...]  # stalls holding a cart corral instead of a car
    trees: tuple[tuple[float, float, float], ...]  # cx, cy, canopy radius (px)
    lamps: tuple[tuple[float, float], ...]
    strips: tuple[tuple[float, float, float, float], ...]  # planting strips x0, y0, x1, y1
    aisle_centres: tuple[float, ...]  # y of each driving aisle's centre line
    entrance_x: float  # cars cluster near the store entrance
    row_x_range: tuple[float, float]


def _parking_layout(rng: np.random.Generator, size: int, gsd_m: float) -> _ParkingLayout:
    stall_w, stall_d = _STALL_WIDTH_M / gsd_m, _STALL_DEPTH_M / gsd_m
    aisle, strip = _AISLE_M / gsd_m, _STRIP_M / gsd_m
    margin = _LOT_MARGIN_PX
    n_cols = int((size - 2 * margin) // stall_w)
    x0 = (size - n_cols * stall_w) / 2.0
    bay = 2 * stall_d + strip + aisle
    n_bays = max(1, int((size - 2 * margin - aisle) // bay))
    y = (size - n_bays * bay - aisle) / 2.0 + aisle
    stalls: list[_Stall] = []
    strips: list[tuple[float, float, float, float]] = []
    trees: list[tuple[float, float, float]] = []
    lamps: list[tuple[float, float]] = []
    aisle_centres = [y - aisle / 2.0]
    max_canopy = strip / 2.0 + 0.35 * _CAR_LENGTH_M[0] / gsd_m  # a tree never hides more than ~35% of a car
    for _ in range(n_bays):
        row_a, strip_y0 = y, y + stall_d
        row_b = strip_y0 + strip
        for col in range(n_cols):
            cx = x0 + (col + 0.5) * stall_w
            stalls.append(_Stall(cx, row_a + stall_d / 2.0, -math.pi / 2))  # nose towards the aisle above
            stalls.append(_Stall(cx, row_b + stall_d / 2.0, math.pi / 2))  # nose towards the aisle below
        strips.append((x0, strip_y0, x0 + n_cols * stall_w, strip_y0 + strip))
        strip_cy = strip_y0 + strip / 2.0
        col = int(rng.integers(1, 4))
        while col < n_cols:
            tx = x0 + col * stall_w + rng.normal(0.0, 1.0)
            if rng.random() < 0.75:
                radius = float(np.clip(rng.uniform(2.0, 2.7) / gsd_m, 4.0, max_canopy))
                trees.append((tx, strip_cy + rng.normal(0.0, 0.5), radius))
            else:
                lamps.append((tx, strip_cy))
            col += int(rng.integers(3, 8))
        y = row_b + stall_d + aisle
        aisle_centres.append(y - aisle / 2.0)
    n_corrals = int(rng.integers(0, 3))
    corral_stalls = tuple(int(i) for i in rng.choice(len(stalls), size=n_corrals, replace=False))
    tone = rng.uniform(82, 112)
    asphalt = (tone, tone * rng.uniform(0.98, 1.01), tone * rng.uniform(0.98, 1.04))
    return _ParkingLayout(
        size=size,
        gsd_m=gsd_m,
        rotation=int(rng.integers(0, 4)),
        asphalt_rgb=asphalt,
        stalls=tuple(stalls),
        corral_stalls=corral_stalls,
        trees=tuple(trees),
        lamps=tuple(lamps),
        strips=tuple(strips),
        aisle_centres=tuple(aisle_centres),
        entrance_x=float(rng.uniform(x0, x0 + n_cols * stall_w)),
        row_x_range=(x0, x0 + n_cols * stall_w),
    )


def _parking_capacity(layout: _ParkingLayout) -> int:
    return len(layout.stalls) - len(layout.corral_stalls)


def _oriented_rect(
    cx: float, cy: float, heading: float, a0: float, a1: float, b0: float, b1: float
) -> np.ndarray:
    """Corners of the rectangle a∈[a0,a1] (along heading), b∈[b0,b1] (across) around (cx, cy)."""
    hx, hy = math.cos(heading), math.sin(heading)
    px, py = -hy, hx
    corners = [(a0, b0), (a1, b0), (a1, b1), (a0, b1)]
    return np.array([(cx + a * hx + b * px, cy + a * hy + b * py) for a, b in corners], dtype=np.float64)


def _fill(canvas: np.ndarray, poly: np.ndarray, colour, scale: int) -> None:
    import cv2

    pts = np.round(poly * scale * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], colour, lineType=cv2.LINE_AA, shift=4)


def _disc(canvas: np.ndarray, cx: float, cy: float, radius: float, colour, scale: int) -> None:
    import cv2

    cv2.circle(
        canvas,
        (int(round(cx * scale * 16)), int(round(cy * scale * 16))),
        int(round(radius * scale * 16)),
        colour,
        -1,
        lineType=cv2.LINE_AA,
        shift=4,
    )


@dataclass(frozen=True)
class _Car:
    cx: float
    cy: float
    heading: float
    length: float
    width: float
    paint: tuple[int, int, int]


def _car_polygon(car: _Car) -> np.ndarray:
    half_l, half_w = car.length / 2.0, car.width / 2.0
    return _oriented_rect(car.cx, car.cy, car.heading, -half_l, half_l, -half_w, half_w)


def _render_parking(
    layout: _ParkingLayout, n_cars: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw one acquisition of the lot with n_cars parked; returns RGB uint8 and each car's body polygon."""
    import cv2

    size, gsd, ss = layout.size, layout.gsd_m, _SUPERSAMPLE_PARKING
    big = size * ss
    # Asphalt with patchy wear and oil stains.
    img = np.empty((big, big, 3), np.float32)
    wear = _smooth_noise(rng, big, 40 * ss) * 4.0 + _smooth_noise(rng, big, 6 * ss) * 2.0
    for ch in range(3):
        img[..., ch] = layout.asphalt_rgb[ch] + wear
    img += rng.normal(0.0, 2.0, img.shape).astype(np.float32)
    for _ in range(int(rng.integers(6, 20))):
        _disc(
            img,
            rng.uniform(0, size),
            rng.uniform(0, size),
            rng.uniform(0.6, 2.0),
            tuple([layout.asphalt_rgb[0] * 0.8] * 3),
            ss,
        )

    paint_layer = np.zeros((big, big), np.float32)
    stall_w, stall_d = _STALL_WIDTH_M / gsd, _STALL_DEPTH_M / gsd
    line_w = 0.12 / gsd
    for stall in layout.stalls:
        for side in (-0.5, 0.5):
            poly = _oriented_rect(
                stall.cx,
                stall.cy,
                stall.heading,
                -stall_d / 2,
                stall_d / 2,
                side * stall_w - line_w,
                side * stall_w,
            )
            _fill(paint_layer, poly, 1.0, ss)
    for y in layout.aisle_centres:  # direction arrows and a crosswalk in the aisles
        for _ in range(int(rng.integers(1, 3))):
            ax = rng.uniform(*layout.row_x_range)
            direction = 0.0 if rng.random() < 0.5 else math.pi
            _fill(
                paint_layer,
                _oriented_rect(ax, y, direction, -2.0 / gsd, 0.6 / gsd, -0.12 / gsd, 0.12 / gsd),
                1.0,
                ss,
            )
            head = np.array(
                [
                    (ax + math.cos(direction) * 1.3 / gsd, y),
                    (ax + math.cos(direction) * 0.5 / gsd, y - 0.5 / gsd),
                    (ax + math.cos(direction) * 0.5 / gsd, y + 0.5 / gsd),
                ]
            )
            _fill(paint_layer, head, 1.0, ss)
    walk_x = layout.entrance_x
    walk_y = layout.aisle_centres[0]
    for k in range(6):
        stripe = _oriented_rect(
            walk_x + (k - 2.5) * 0.9 / gsd, walk_y, math.pi / 2, -3.0 / gsd, 3.0 / gsd, -0.2 / gsd, 0.2 / gsd
        )
        _fill(paint_layer, stripe, 1.0, ss)
    paint_alpha = rng.uniform(0.35, 0.7)  # faded paint
    img = img * (1 - paint_alpha * paint_layer[..., None]) + 215.0 * paint_alpha * paint_layer[..., None]

    for x0, y0, x1, y1 in layout.strips:
        strip = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)
        _fill(img, strip, (92, 84, 62), ss)  # mulch
        _fill(img, strip + np.array([[0, 0.4], [0, 0.4], [0, -0.4], [0, -0.4]]), (150, 146, 138), ss)  # curb

    # Sun for this acquisition: shadows fall away from the sun.
    sun_az = math.radians(rng.uniform(120, 240))
    sun_el = math.radians(rng.uniform(30, 65))
    shadow_dir = np.array([-math.sin(sun_az), math.cos(sun_az)])
    shadow_len = _CAR_HEIGHT_M / math.tan(sun_el) / gsd

    # Park the cars: nearer the entrance is more popular.
    free = [i for i in range(len(layout.stalls)) if i not in set(layout.corral_stalls)]
    n_cars = min(n_cars, len(free))
    distance = np.array([abs(layout.stalls[i].cx - layout.entrance_x) for i in free])
    weight = np.exp(-distance / (0.35 * size)) + 0.15
    chosen = rng.choice(len(free), size=n_cars, replace=False, p=weight / weight.sum()) if n_cars else []
    paints = np.array([p for p, _ in _CAR_PAINTS], dtype=np.float64)
    paint_p = np.array([w for _, w in _CAR_PAINTS])
    cars: list[_Car] = []
    for idx in chosen:
        stall = layout.stalls[free[int(idx)]]
        length = rng.uniform(*_CAR_LENGTH_M) / gsd
        width = rng.uniform(*_CAR_WIDTH_M) / gsd
        heading = stall.heading + math.radians(rng.normal(0.0, 3.0))
        if rng.random() < 0.12:  # some drivers back in
            heading += math.pi
        base = paints[rng.choice(len(paints), p=paint_p)] * rng.uniform(0.9, 1.08)
        cars.append(
            _Car(
                cx=stall.cx + rng.normal(0.0, 0.2 / gsd),
                cy=stall.cy + rng.normal(0.0, 0.25 / gsd) - 0.15 / gsd * math.sin(stall.heading),
                heading=heading,
                length=length,
                width=width,
                paint=tuple(float(c) for c in np.clip(base, 0, 255)),
            )
        )

    shadow = np.zeros((big, big), np.float32)
    for car in cars:
        _fill(shadow, _car_polygon(car) + shadow_dir * shadow_len, 1.0, ss)
    for stall_idx in layout.corral_stalls:
        s = layout.stalls[stall_idx]
        _fill(
            shadow,
            _oriented_rect(s.cx, s.cy, s.heading, -2.2 / gsd, 2.2 / gsd, -0.6 / gsd, 0.6 / gsd)
            + shadow_dir * 1.5,
            0.6,
            ss,
        )
    for lx, ly in layout.lamps:
        pole = np.array([(lx, ly), (lx, ly)]) + np.array([[0, 0], shadow_dir * 8.0 / gsd / math.tan(sun_el)])
        cv2.line(
            shadow,
            tuple(np.round(pole[0] * ss).astype(int)),
            tuple(np.round(pole[1] * ss).astype(int)),
            0.9,
            max(1, int(round(0.25 / gsd * ss))),
            cv2.LINE_AA,
        )
    img *= 1.0 - 0.5 * np.clip(shadow, 0, 1)[..., None]

    for car in cars:
        body = np.array(car.paint)
        half_l, half_w = car.length / 2.0, car.width / 2.0
        _fill(img, _car_polygon(car), tuple(body * 0.85), ss)  # body sides, slightly darker
        _fill(
            img,
            _oriented_rect(
                car.cx, car.cy, car.heading, -half_l * 0.95, half_l * 0.95, -half_w * 0.85, half_w * 0.85
            ),
            tuple(body),
            ss,
        )
        glass = (42.0, 50.0, 62.0)
        _fill(
            img,
            _oriented_rect(
                car.cx, car.cy, car.heading, 0.10 * car.length, 0.27 * car.length, -half_w * 0.8, half_w * 0.8
            ),
            glass,
            ss,
        )
        _fill(
            img,
            _oriented_rect(
                car.cx,
                car.cy,
                car.heading,
                -0.36 * car.length,
                -0.26 * car.length,
                -half_w * 0.75,
                half_w * 0.75,
            ),
            glass,
            ss,
        )
        roof = np.clip(body * 1.06 + 6, 0, 255)
        _fill(
            img,
            _oriented_rect(
                car.cx,
                car.cy,
                car.heading,
                -0.26 * car.length,
                0.10 * car.length,
                -half_w * 0.7,
                half_w * 0.7,
            ),
            tuple(roof),
            ss,
        )

    # Shopping carts: loose ones in the aisles and rows of carts in corrals.
    for _ in range(int(rng.integers(0, 7))):
        cx = rng.uniform(*layout.row_x_range)
        cy = layout.aisle_centres[int(rng.integers(0, len(layout.aisle_centres)))] + rng.normal(0, 1.5 / gsd)
        colour = (185.0, 188.0, 192.0) if rng.random() < 0.7 else (170.0, 40.0, 40.0)
        _fill(
            img,
            _oriented_rect(cx, cy, rng.uniform(0, math.pi), -0.45 / gsd, 0.45 / gsd, -0.28 / gsd, 0.28 / gsd),
            colour,
            ss,
        )
    for stall_idx in layout.corral_stalls:
        s = layout.stalls[stall_idx]
        _fill(
            img,
            _oriented_rect(s.cx, s.cy, s.heading, -2.2 / gsd, 2.2 / gsd, -0.6 / gsd, 0.6 / gsd),
            (150.0, 150.0, 150.0),
            ss,
        )
        n_carts = int(rng.integers(0, 5))
        for k in range(n_carts):
            _fill(
                img,
                _oriented_rect(
                    s.cx,
                    s.cy,
                    s.heading,
                    -2.0 / gsd + k * 0.9 / gsd,
                    -1.3 / gsd + k * 0.9 / gsd,
                    -0.28 / gsd,
                    0.28 / gsd,
                ),
                (190.0, 192.0, 196.0),
                ss,
            )

    # Trees over everything on the ground: canopies partly hide cars; their shadows fall on cars too.
    tree_shadow = np.zeros((big, big), np.float32)
    for tx, ty, radius in layout.trees:
        offset = shadow_dir * 6.0 / gsd / math.tan(sun_el) * 0.5
        _disc(tree_shadow, tx + offset[0], ty + offset[1], radius * 0.95, 1.0, ss)
    img *= 1.0 - 0.45 * tree_shadow[..., None]
    for tx, ty, radius in layout.trees:
        green = np.array([rng.uniform(38, 60), rng.uniform(72, 100), rng.uniform(34, 50)])
        _disc(img, tx, ty, radius, tuple(green), ss)
        for _ in range(7):
            ang, rad = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.55) * radius
            shade = green * rng.uniform(0.8, 1.3)
            _disc(
                img,
                tx + rad * math.cos(ang),
                ty + rad * math.sin(ang),
                radius * rng.uniform(0.3, 0.5),
                tuple(shade),
                ss,
            )
    for lx, ly in layout.lamps:
        _disc(img, lx, ly, 0.35 / gsd, (205.0, 205.0, 200.0), ss)

    small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    # Acquisition: global brightness/contrast, a slight colour cast, haze and sensor noise.
    gain, gamma = rng.uniform(0.75, 1.25), rng.uniform(0.8, 1.25)
    cast = rng.uniform(0.95, 1.05, 3)
    haze = rng.uniform(0, 18)
    out = 255.0 * np.power(np.clip(small / 255.0, 0, 1), gamma) * gain * cast + haze
    out += rng.normal(0.0, 2.5, out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    polygons = [_car_polygon(car) for car in cars]
    return out, polygons


def _rotate_ccw(
    img: np.ndarray, polygons: list[np.ndarray], turns: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    size = img.shape[0]
    out = np.ascontiguousarray(np.rot90(img, turns))
    rotated = []
    for poly in polygons:
        pts = poly.copy()
        for _ in range(turns % 4):
            pts = np.stack([pts[:, 1], size - pts[:, 0]], axis=1)
        rotated.append(pts)
    return out, rotated


def _draw_parking_scene(
    layout: _ParkingLayout, n_cars: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    img, polygons = _render_parking(layout, n_cars, rng)
    return _rotate_ccw(img, polygons, layout.rotation)


def _store_base_count(seed: int, store_id: str) -> int:
    return int(_rng(seed, "parking-base", store_id).integers(BASE_CARS_RANGE[0], BASE_CARS_RANGE[1] + 1))


def _map_sites(render, jobs: list[tuple], workers: int) -> list:
    """``render(*job)`` for every job, in order; spread over ``workers`` processes when more than one. Each image
    draws from its own (seed, site, day) stream, so the output is the same for any number of workers."""
    if workers <= 1 or len(jobs) <= 1:
        return [render(*job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent holds polars' thread pool, which a forked child must not inherit
    with ProcessPoolExecutor(
        min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return list(pool.map(render, *zip(*jobs, strict=True)))


def _render_store(
    landing: Path, store_id: str, ticker: str, levels: list[tuple[date, float]], seed: int, size: int
) -> list[tuple[date, str, str, int, str]]:
    layout = _parking_layout(_rng(seed, "parking-layout", store_id), size, PARKING_GSD_M)
    base = _store_base_count(seed, store_id)
    out = []
    for day, traffic in levels:
        rng = _rng(seed, "parking-shot", store_id, day)
        wanted = int(round(base * math.exp(CAR_TRAFFIC_ELASTICITY * traffic)))
        img, polygons = _draw_parking_scene(layout, wanted, rng)
        folder = landing / "parking" / day.isoformat()
        _write_png(folder / f"{store_id}.png", img)
        captured = _captured_at(day, rng, 15.5)
        _write_sidecar(
            folder / f"{store_id}.json",
            {
                "store_id": store_id,
                "ticker": ticker,
                "captured_at": captured,
                "gsd_m": PARKING_GSD_M,
                "image_size_px": size,
            },
        )
        out.append((day, store_id, ticker, len(polygons), captured))
    return out


def generate_parking_images(
    landing: Path,
    truth: Path,
    stores: pl.DataFrame,
    dates: list[date],
    traffic: pl.DataFrame,
    seed: int,
    size: int = 320,
    workers: int = 1,
) -> pl.DataFrame:
    """Write one aerial PNG + JSON sidecar per (date, store) and the true car counts; returns the deliveries
    (trade_date, store_id, ticker, captured_at) for the world's oracle.

    Files: ``landing/parking/<YYYY-MM-DD>/<store_id>.png`` and ``.json`` (store_id, ticker, captured_at,
    gsd_m, image_size_px); truth: ``truth/parking_counts.parquet`` (trade_date, store_id, ticker, true_count).
    A store gets no image on a date its ticker has no ``store_traffic`` row (not listed that day). ``workers``
    processes render the stores in parallel (same files for any number).
    """
    landing, truth = Path(landing), Path(truth)
    traffic_of = _lookup(traffic, "store_traffic")
    jobs = [
        (landing, store_id, t, [(d, traffic_of[(d, t)]) for d in dates if (d, t) in traffic_of], seed, size)
        for store_id, t in stores.select("store_id", "ticker").iter_rows()
    ]
    shots = [row for rows in _map_sites(_render_store, [j for j in jobs if j[3]], workers) for row in rows]
    truth.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        [row[:4] for row in shots],
        schema={"trade_date": pl.Date, "store_id": pl.String, "ticker": pl.String, "true_count": pl.Int32},
        orient="row",
    ).write_parquet(truth / "parking_counts.parquet")
    return _deliveries([(d, site, t, c) for d, site, t, _, c in shots], "store_id")


def _deliveries(rows: list[tuple[date, str, str, str]], site_col: str) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows,
        schema={"trade_date": pl.Date, site_col: pl.String, "ticker": pl.String, "captured_at": pl.String},
        orient="row",
    )
    return frame.with_columns(pl.col("captured_at").str.to_datetime(time_zone="UTC", time_unit="us"))


def _render_training_lots(out_dir: Path, indices: list[int], n_val: int, seed: int, size: int) -> None:
    for index in indices:
        split = "val" if index < n_val else "train"
        rng = _rng(seed, "detector-train", index)
        layout = _parking_layout(rng, size, PARKING_GSD_M)
        # Occupancy spread wider than the vendor feed's so the detector sees near-empty and packed lots.
        wanted = int(
            round(rng.uniform(*BASE_CARS_RANGE) * math.exp(CAR_TRAFFIC_ELASTICITY * 1.5 * rng.normal()))
        )
        img, polygons = _draw_parking_scene(layout, wanted, rng)
        name = f"lot_{index:05d}"
        _write_png(out_dir / "images" / split / f"{name}.png", img)
        lines = []
        for poly in polygons:
            x0, y0 = np.clip(poly.min(axis=0), 0, size)
            x1, y1 = np.clip(poly.max(axis=0), 0, size)
            lines.append(
                f"0 {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} {(x1 - x0) / size:.6f} {(y1 - y0) / size:.6f}"
            )
        label = out_dir / "labels" / split / f"{name}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("\n".join(lines) + ("\n" if lines else ""))


def generate_detector_training_set(
    out_dir: Path, n_images: int, seed: int, size: int = 320, workers: int = 1
) -> Path:
    """Write a YOLO-format car dataset drawn by the parking renderer; returns the path of its data.yaml.

    Layout: ``images/{train,val}/lot_NNNNN.png``, ``labels/{train,val}/lot_NNNNN.txt`` (``0 cx cy w h``,
    normalised, one axis-aligned box per car), ``data.yaml`` with the dataset's absolute path and one class,
    ``car``. Every image is a fresh random lot, so no lot of the vendor feed is in the training set. A fifth of
    the images (at least one) is the validation split. Each lot draws from its own (seed, index) stream, so the
    files are the same for any number of ``workers`` (processes drawing them).
    """
    out_dir = Path(out_dir).resolve()
    n_val = max(1, n_images // 5)
    parts = max(1, min(workers, n_images))
    jobs = [(out_dir, list(range(k, n_images, parts)), n_val, seed, size) for k in range(parts)]
    _map_sites(_render_training_lots, jobs, workers)
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(f"path: {out_dir}\ntrain: images/train\nval: images/val\nnames:\n  0: car\n")
    return data_yaml


# --------------------------------------------------------------------------------------------------------------
# Oil-tank farms
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tank:
    cx: float
    cy: float
    radius_px: float  # outer radius of the wall
    rim_px: float  # wall thickness seen from above
    height_m: float
    roof_albedo: float


@dataclass(frozen=True)
class _TankFarm:
    size: int
    gsd_m: float
    tanks: tuple[_Tank, ...]
    ground_albedo: np.ndarray  # (size*ss, size*ss) float32, static ground, roads and buildings
    building_shadow_height_m: tuple[tuple[np.ndarray, float], ...]  # roof polygon (px), height m
    ground_tint: tuple[float, float, float]


def _stadium_mask(
    xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, radius: float, dx: float, dy: float
) -> np.ndarray:
    """Points within `radius` of the segment from (cx, cy) to (cx + dx, cy + dy)."""
    seg2 = dx * dx + dy * dy
    if seg2 == 0:
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius * radius
    t = np.clip(((xs - cx) * dx + (ys - cy) * dy) / seg2, 0.0, 1.0)
    return (xs - cx - t * dx) ** 2 + (ys - cy - t * dy) ** 2 <= radius * radius


def _shadow_reach_px(height_m: float, gsd_m: float, elevation_deg: float) -> float:
    return height_m / gsd_m / math.tan(math.radians(elevation_deg))


def _tank_farm(rng: np.random.Generator, size: int, gsd_m: float) -> _TankFarm:
    import cv2

    ss = _SUPERSAMPLE_TANKS
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    occupied = np.zeros((size, size), bool)  # tank + every shadow it can cast over the season, with margin
    tanks: list[_Tank] = []
    target = int(rng.integers(3, 6))
    tan_low = math.tan(math.radians(TANK_SUN_ELEVATION_DEG[0]))
    for _ in range(400):
        if len(tanks) == target:
            break
        radius = rng.uniform(20.0, 34.0) / 2.0 / gsd_m
        rim = 0.6 / gsd_m
        inner = radius - rim
        # Keep the deepest roof's crescent inside 1.6 inner radii so part of the roof is always lit.
        max_reach = (1.6 * inner - 2.0) / (1.0 - TANK_FILL_RANGE[0])
        height_m = float(min(rng.uniform(10.0, 18.0), max_reach * tan_low * gsd_m))
        reach = _shadow_reach_px(height_m, gsd_m, TANK_SUN_ELEVATION_DEG[0])
        cx, cy = rng.uniform(radius + 6, size - radius - 6), rng.uniform(radius + 6, size - radius - 6)
        footprint = np.zeros((size, size), bool)
        for az in np.linspace(*TANK_SUN_AZIMUTH_DEG, 7):
            a = math.radians(az)
            footprint |= _stadium_mask(xx, yy, cx, cy, radius + 6, -math.sin(a) * reach, math.cos(a) * reach)
        sun_side = _stadium_mask(xx, yy, cx, cy, radius + 14, 0.0, 0.0)  # lit ground the analyzer samples
        footprint |= sun_side
        # The whole shadow must stay inside the image so the analyzer can measure it.
        ends = [
            (cx - math.sin(math.radians(az)) * reach, cy + math.cos(math.radians(az)) * reach)
            for az in TANK_SUN_AZIMUTH_DEG
        ]
        if any(
            not (radius + 4 < ex < size - radius - 4 and radius + 4 < ey < size - radius - 4)
            for ex, ey in ends
        ):
            continue
        if (footprint & occupied).any():
            continue
        occupied |= footprint
        tanks.append(_Tank(cx, cy, radius, rim, height_m, float(rng.uniform(0.78, 0.86))))

    big = size * ss
    albedo = 0.47 + 0.025 * _smooth_noise(rng, big, 60 * ss) + 0.012 * _smooth_noise(rng, big, 5 * ss)
    albedo = albedo.astype(np.float32)
    keep_out = cv2.resize(occupied.astype(np.uint8), (big, big), interpolation=cv2.INTER_NEAREST).astype(bool)
    distractors = np.zeros((big, big), np.float32)  # value = albedo where > 0
    buildings: list[tuple[np.ndarray, float]] = []
    n_roads = int(rng.integers(1, 3))
    for _ in range(40):  # access roads, routed clear of the tanks
        if n_roads == 0:
            break
        horizontal = rng.random() < 0.5
        pos, width = rng.uniform(0, size), rng.uniform(6.0, 9.0) / gsd_m
        lo, hi = int(max(0, pos - width / 2)), int(min(size, pos + width / 2))
        band = occupied[lo:hi, :] if horizontal else occupied[:, lo:hi]
        if hi <= lo or band.any():
            continue
        n_roads -= 1
        if horizontal:
            occupied[lo:hi, :] = True
            distractors[lo * ss : hi * ss, :] = 0.27
        else:
            occupied[:, lo:hi] = True
            distractors[:, lo * ss : hi * ss] = 0.27
    for _ in range(int(rng.integers(2, 6))):  # pipe runs
        p0 = rng.uniform(0, size, 2) * ss
        p1 = p0 + rng.uniform(-size, size, 2) * ss * 0.5
        layer = np.zeros((big, big), np.uint8)
        cv2.line(layer, tuple(p0.astype(int)), tuple(p1.astype(int)), 1, max(1, int(0.6 / gsd_m * ss)))
        layer[keep_out] = 0
        distractors = np.where(layer > 0, 0.36, distractors)
    for _ in range(60):  # pump houses and offices, kept clear of the tanks and their shadows
        if len(buildings) >= 3:
            break
        w, h = rng.uniform(6, 16) / gsd_m, rng.uniform(6, 12) / gsd_m
        x0, y0 = rng.uniform(2, size - w - 2), rng.uniform(2, size - h - 2)
        x_lo, x_hi = int(x0) - 12, int(x0 + w) + 12
        y_lo, y_hi = int(y0) - 12, int(y0 + h) + 12
        if occupied[max(0, y_lo) : max(0, y_hi), max(0, x_lo) : max(0, x_hi)].any():
            continue
        occupied[max(0, y_lo) : y_hi, max(0, x_lo) : x_hi] = True
        poly = np.array([(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)])
        layer = np.zeros((big, big), np.uint8)
        cv2.fillPoly(layer, [np.round(poly * ss).astype(np.int32)], 1)
        distractors = np.where(layer > 0, rng.uniform(0.58, 0.72), distractors)
        buildings.append((poly, float(rng.uniform(3.0, 6.0))))
    albedo = np.where(distractors > 0, distractors, albedo).astype(np.float32)
    tint = (1.06, 1.0, 0.86)
    return _TankFarm(size, gsd_m, tuple(tanks), albedo, tuple(buildings), tint)


def _render_tank_farm(
    farm: _TankFarm, fills: list[float], elevation_deg: float, azimuth_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """Radiance = albedo × (ambient + direct sun where not shadowed), then sensor gain, gamma and noise."""
    import cv2

    ss, size = _SUPERSAMPLE_TANKS, farm.size
    big = size * ss
    albedo = farm.ground_albedo.copy()
    shadow = np.zeros((big, big), bool)
    az = math.radians(azimuth_deg)
    to_sun = np.array([math.sin(az), -math.cos(az)])
    # Coordinates of supersampled pixel centres, in output-pixel units.
    coords = (np.arange(big, dtype=np.float32) + 0.5) / ss

    for poly, height_m in farm.building_shadow_height_m:
        reach = _shadow_reach_px(height_m, farm.gsd_m, elevation_deg)
        layer = np.zeros((big, big), np.uint8)
        for k in np.linspace(0, 1, 8):
            cv2.fillPoly(layer, [np.round((poly - to_sun * reach * k) * ss).astype(np.int32)], 1)
        roof = np.zeros((big, big), np.uint8)
        cv2.fillPoly(roof, [np.round(poly * ss).astype(np.int32)], 1)
        shadow |= layer.astype(bool) & ~roof.astype(bool)

    tank_masks = []
    for tank, fill in zip(farm.tanks, fills, strict=True):
        reach = _shadow_reach_px(tank.height_m, farm.gsd_m, elevation_deg)
        crescent = (1.0 - fill) * reach
        pad = tank.radius_px + reach + 2
        x_lo, x_hi = int(max(0, (tank.cx - pad) * ss)), int(min(big, (tank.cx + pad) * ss))
        y_lo, y_hi = int(max(0, (tank.cy - pad) * ss)), int(min(big, (tank.cy + pad) * ss))
        xs, ys = np.meshgrid(coords[x_lo:x_hi], coords[y_lo:y_hi])
        d2 = (xs - tank.cx) ** 2 + (ys - tank.cy) ** 2
        body = d2 <= tank.radius_px**2
        roof = d2 <= (tank.radius_px - tank.rim_px) ** 2
        # Sunlight enters through the rim opening and lands on the roof displaced away from the sun.
        lit_cx, lit_cy = tank.cx - to_sun[0] * crescent, tank.cy - to_sun[1] * crescent
        roof_lit = (xs - lit_cx) ** 2 + (ys - lit_cy) ** 2 <= (tank.radius_px - tank.rim_px) ** 2
        ground_shadow = _stadium_mask(
            xs, ys, tank.cx, tank.cy, tank.radius_px, -to_sun[0] * reach, -to_sun[1] * reach
        )
        window = (slice(y_lo, y_hi), slice(x_lo, x_hi))
        shadow[window] |= ground_shadow & ~body
        shadow[window] |= roof & ~roof_lit
        shadow[window] &= ~(body & ~roof)  # the top of the wall is always sunlit
        albedo[window] = np.where(body, 0.88, albedo[window])
        albedo[window] = np.where(roof, tank.roof_albedo, albedo[window])
        hatch = (xs - tank.cx) ** 2 + (ys - tank.cy) ** 2 <= (0.5 / farm.gsd_m) ** 2
        albedo[window] = np.where(hatch, tank.roof_albedo * 0.7, albedo[window])
        tank_masks.append((window, body))

    ambient = rng.uniform(0.32, 0.42)
    radiance = albedo * np.where(shadow, ambient, 1.0).astype(np.float32)
    small = cv2.resize(radiance, (size, size), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 0.45)
    is_tank = np.zeros((big, big), np.float32)
    for window, body in tank_masks:
        is_tank[window] = np.maximum(is_tank[window], body)
    tank_share = cv2.resize(is_tank, (size, size), interpolation=cv2.INTER_AREA)
    # Tanks are white-painted steel (neutral); the ground is sandy (warm tint).
    gain, gamma = rng.uniform(0.85, 1.05), rng.uniform(0.9, 1.12)
    rgb = np.empty((size, size, 3), np.float32)
    for ch in range(3):
        tinted = small * (tank_share + (1 - tank_share) * farm.ground_tint[ch])
        rgb[..., ch] = 255.0 * gain * np.power(np.clip(tinted, 0, 1), gamma)
    rgb += rng.normal(0.0, 2.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def tank_fill_ratio(inventory: float, noise: float) -> float:
    """The fill ratio of one tank given its ticker's standardized inventory driver and tank-level noise."""
    lo, hi = TANK_FILL_RANGE
    return float(np.clip(TANK_FILL_CENTER + TANK_FILL_BETA * inventory + noise, lo, hi))


def _render_farm(
    landing: Path, farm_id: str, ticker: str, levels: list[tuple[date, float]], seed: int, size: int
) -> tuple[list[dict], list[tuple[date, str, str, str]]]:
    farm = _tank_farm(_rng(seed, "tank-farm", farm_id), size, TANK_GSD_M)
    rows: list[dict] = []
    delivered: list[tuple[date, str, str, str]] = []
    for day, level in levels:
        rng = _rng(seed, "tank-shot", farm_id, day)
        elevation = float(rng.uniform(*TANK_SUN_ELEVATION_DEG))
        azimuth = float(rng.uniform(*TANK_SUN_AZIMUTH_DEG))
        fills = [tank_fill_ratio(level, rng.normal(0.0, TANK_FILL_NOISE)) for _ in farm.tanks]
        img = _render_tank_farm(farm, fills, elevation, azimuth, rng)
        folder = landing / "tanks" / day.isoformat()
        _write_png(folder / f"{farm_id}.png", img)
        captured = _captured_at(day, rng, 16.0)
        delivered.append((day, farm_id, ticker, captured))
        _write_sidecar(
            folder / f"{farm_id}.json",
            {
                "farm_id": farm_id,
                "ticker": ticker,
                "captured_at": captured,
                "gsd_m": TANK_GSD_M,
                "sun_elevation_deg": round(elevation, 4),
                "sun_azimuth_deg": round(azimuth, 4),
                "image_size_px": size,
            },
        )
        for k, (tank, fill) in enumerate(zip(farm.tanks, fills, strict=True)):
            rows.append(
                {
                    "trade_date": day,
                    "farm_id": farm_id,
                    "ticker": ticker,
                    "tank_id": f"{farm_id}-T{k}",
                    "center_x_px": tank.cx,
                    "center_y_px": tank.cy,
                    "radius_px": tank.radius_px,
                    "height_m": tank.height_m,
                    "fill_ratio": fill,
                }
            )
    return rows, delivered


def generate_tank_images(
    landing: Path,
    truth: Path,
    farms: pl.DataFrame,
    dates: list[date],
    inventory: pl.DataFrame,
    seed: int,
    size: int = 320,
    workers: int = 1,
) -> pl.DataFrame:
    """Write one tank-farm PNG + JSON sidecar per (date, farm) and each tank's true fill ratio; returns the
    deliveries (trade_date, farm_id, ticker, captured_at) for the world's oracle.

    Files: ``landing/tanks/<YYYY-MM-DD>/<farm_id>.png`` and ``.json`` (farm_id, ticker, captured_at, gsd_m,
    sun_elevation_deg, sun_azimuth_deg, image_size_px); tank positions and capacities are not given.
    Truth: ``truth/tank_fills.parquet`` (trade_date, farm_id, ticker, tank_id, center_x_px, center_y_px,
    radius_px, height_m, fill_ratio). ``workers`` processes render the farms in parallel (same files for any
    number).
    """
    landing, truth = Path(landing), Path(truth)
    inventory_of = _lookup(inventory, "tank_inventory")
    jobs = [
        (
            landing,
            farm_id,
            t,
            [(d, inventory_of[(d, t)]) for d in dates if (d, t) in inventory_of],
            seed,
            size,
        )
        for farm_id, t in farms.select("farm_id", "ticker").iter_rows()
    ]
    rendered = _map_sites(_render_farm, [j for j in jobs if j[3]], workers)
    rows = [row for farm_rows, _ in rendered for row in farm_rows]
    delivered = [d for _, farm_delivered in rendered for d in farm_delivered]
    truth.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        rows,
        schema={
            "trade_date": pl.Date,
            "farm_id": pl.String,
            "ticker": pl.String,
            "tank_id": pl.String,
            "center_x_px": pl.Float64,
            "center_y_px": pl.Float64,
            "radius_px": pl.Float64,
            "height_m": pl.Float64,
            "fill_ratio": pl.Float64,
        },
    ).write_parquet(truth / "tank_fills.parquet")
    return _deliveries(delivered, "farm_id")
