"""Floating-roof oil tanks: find each tank in an aerial image and read its fill ratio from shadow geometry.

A floating roof rides on the oil. Seen from above, the tank wall casts two shadows: a crescent on the roof, on
the sun side, as wide (along the sun's azimuth) as ``(1 - fill) × height / tan(elevation)``; and a shadow on the
ground, away from the sun, as long as ``height / tan(elevation)``. Their ratio gives the fill without knowing the
tank's height: ``fill = 1 - crescent / ground_shadow``. The ground shadow, with the sun elevation and the ground
sample distance, also gives the height, hence the capacity.

Both widths are measured along lines parallel to the sun's azimuth: for a disc translated along that axis every
such line crosses the crescent (and the ground shadow) over the same length, so a median over several lines is
robust to roof fittings and noise. The crescent is integrated as a soft shadow fraction (robust to partial-pixel
edges, even for a crescent thinner than a pixel); the ground shadow is measured from the fitted tank edge to the
half-level crossing at its far end.

Coordinates follow the vendor convention: pixels, origin at the top-left corner of the image, x right (east),
y down (south); sun azimuth clockwise from north.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from alpha_assets.lib.altdata.vision.images import read_gray

_STEP_PX = 0.25  # sampling step along profiles


def analyze_tank_image(
    path: Path,
    sun_elevation_deg: float,
    sun_azimuth_deg: float,
    gsd_m: float,
    min_diameter_m: float = 10.0,
    max_diameter_m: float = 100.0,
) -> list[dict]:
    """Tanks found in the image at `path`, each as a dict (see `analyze_tank_array`).

    Raises ImageReadError (naming the file) when the image cannot be decoded.
    """
    return analyze_tank_array(
        read_gray(path), sun_elevation_deg, sun_azimuth_deg, gsd_m, min_diameter_m, max_diameter_m
    )


def analyze_tank_array(
    gray: np.ndarray,
    sun_elevation_deg: float,
    sun_azimuth_deg: float,
    gsd_m: float,
    min_diameter_m: float = 10.0,
    max_diameter_m: float = 100.0,
) -> list[dict]:
    """Tanks in a float luminance image, ordered top to bottom then left to right.

    Each dict: ``center_x_px``, ``center_y_px``, ``radius_px``, ``diameter_m``, ``crescent_px`` (internal roof
    shadow width), ``ground_shadow_px``, ``height_m``, ``fill_ratio`` (0-1, NaN when a shadow could not be
    measured, e.g. cut by the image border), ``capacity_m3`` (cylinder volume), ``oil_m3`` (fill × capacity),
    ``edge_rms_px`` (circle-fit residual, a quality figure).
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D luminance image, got shape {gray.shape}")
    if not (0.0 < sun_elevation_deg < 90.0):
        raise ValueError(f"sun elevation must be in (0, 90) degrees, got {sun_elevation_deg}")
    min_r = max(4.0, min_diameter_m / 2.0 / gsd_m)
    max_r = min(max_diameter_m / 2.0 / gsd_m, min(gray.shape) / 2.0)
    az = math.radians(sun_azimuth_deg)
    to_sun = np.array([math.sin(az), -math.cos(az)])
    tanks = []
    for cx, cy, radius, rms in _find_tanks(gray, min_r, max_r):
        crescent, ground = _shadow_widths(gray, cx, cy, radius, to_sun)
        fill = 1.0 - crescent / ground if ground > 0 and np.isfinite(crescent) else float("nan")
        height_m = ground * gsd_m * math.tan(math.radians(sun_elevation_deg))
        diameter_m = 2.0 * radius * gsd_m
        capacity = math.pi * (diameter_m / 2.0) ** 2 * height_m
        fill = float(np.clip(fill, 0.0, 1.0)) if np.isfinite(fill) else float("nan")
        tanks.append(
            {
                # +0.5: sample indices are pixel centres; the vendor convention puts the origin at a corner.
                "center_x_px": cx + 0.5,
                "center_y_px": cy + 0.5,
                "radius_px": radius,
                "diameter_m": diameter_m,
                "crescent_px": crescent,
                "ground_shadow_px": ground,
                "height_m": height_m,
                "fill_ratio": fill,
                "capacity_m3": capacity,
                "oil_m3": fill * capacity,
                "edge_rms_px": rms,
            }
        )
    tanks.sort(key=lambda t: (round(t["center_y_px"] / max(t["radius_px"], 1.0)), t["center_x_px"]))
    return tanks


def _analyze_or_reason(job: tuple) -> list[dict] | str:
    try:
        return analyze_tank_array(*job)
    except ValueError as e:  # a bad sidecar value (e.g. a sun elevation outside (0, 90)): the image's reason
        return str(e)


def _analyze_chunk(jobs: list[tuple]) -> list[list[dict] | str]:
    return [_analyze_or_reason(job) for job in jobs]


def analyze_tank_arrays(jobs: list[tuple], workers: int = 1, chunk: int = 16) -> list[list[dict] | str]:
    """`analyze_tank_array(*job)` for each job (gray, sun elevation, sun azimuth, gsd), in order: each image's
    tanks, or the message of the ValueError it raised. With ``workers`` > 1 the images are spread over that many
    processes in chunks of ``chunk``; each image is analysed alone, so the results are the same for any number."""
    if workers <= 1 or len(jobs) <= chunk:
        return _analyze_chunk(jobs)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    # spawn, not fork: the parent holds polars' and torch's thread pools, which a forked child must not inherit
    with ProcessPoolExecutor(
        min(workers, len(chunks)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return [r for part in pool.map(_analyze_chunk, chunks) for r in part]


def _sample(gray: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples at index coordinates (pixel centres at integers); NaN outside the image."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(gray, [ys.ravel(), xs.ravel()], order=1, mode="constant", cval=np.nan).reshape(
        xs.shape
    )


def _find_tanks(gray: np.ndarray, min_r: float, max_r: float) -> list[tuple[float, float, float, float]]:
    """Circle candidates from a Hough transform, refined on the tank's outer edge, validated and de-duplicated."""
    import cv2

    g8 = np.clip(gray, 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(g8, (0, 0), 1.2)
    found = cv2.HoughCircles(
        blurred,
        cv2.HOUGH_GRADIENT,
        dp=1,
        minDist=max(4.0, min_r * 0.5),
        param1=90,
        param2=18,
        minRadius=int(math.floor(min_r)),
        maxRadius=int(math.ceil(max_r)),
    )
    if found is None:
        return []
    accepted: list[tuple[float, float, float, float, float]] = []
    for hx, hy, hr in found[0][:200]:
        fit = _fit_outer_edge(gray, float(hx), float(hy), float(hr))
        if fit is None:
            continue
        cx, cy, r, rms, score = fit
        if not (min_r * 0.9 <= r <= max_r * 1.1):
            continue
        accepted.append((cx, cy, r, rms, score))
    # A circle inside another is the lit part of a roof, not a tank: consider the larger circles first. Two
    # tanks cannot overlap, so of two overlapping circles the weaker is a shadow arc or a duplicate.
    accepted.sort(key=lambda c: -c[4])
    tanks: list[tuple[float, float, float, float]] = []
    for cx, cy, r, rms, _ in accepted:
        inside_other = any(
            math.hypot(cx - ox, cy - oy) + r <= o_r + 2.0 and o_r > r for ox, oy, o_r, _, _ in accepted
        )
        if inside_other:
            continue
        if all(math.hypot(cx - tx, cy - ty) > (r + tr) - 2.0 for tx, ty, tr, _ in tanks):
            tanks.append((cx, cy, r, rms))
    return tanks


def _fit_outer_edge(
    gray: np.ndarray, cx: float, cy: float, r: float, n_angles: int = 96
) -> tuple[float, float, float, float, float] | None:
    """Least-squares circle through the tank's outer edge (bright wall to darker ground), or None if not a tank.

    Along each ray the edge is the outermost clear bright-to-dark step near the candidate radius. The crescent
    boundary on the roof is a stronger bright-to-dark step but lies further in, so taking the outermost step
    (not the strongest) avoids it; rays that still land on something else are dropped as outliers.
    """
    for _ in range(2):  # a second pass re-centres the rays on the refined circle
        theta = np.linspace(0.0, 2 * math.pi, n_angles, endpoint=False)
        rho = np.arange(0.8 * r, 1.2 * r + 2.0, _STEP_PX)
        xs = cx + np.cos(theta)[:, None] * rho[None, :]
        ys = cy + np.sin(theta)[:, None] * rho[None, :]
        profile = _sample(gray, xs, ys)
        if np.isnan(profile).mean() > 0.2:
            return None
        drop = -np.gradient(np.nan_to_num(profile, nan=float(np.nanmedian(profile))), _STEP_PX, axis=1)
        strongest = drop.max(axis=1, keepdims=True)
        n = drop.shape[1]
        clear = drop >= 0.3 * strongest
        last = n - 1 - np.argmax(clear[:, ::-1], axis=1)
        # The peak of that step: the largest drop within ±1 px of where it was first seen from outside.
        window = np.clip(last[:, None] + np.arange(-4, 5)[None, :], 0, n - 1)
        j = np.take_along_axis(
            window, np.argmax(np.take_along_axis(drop, window, axis=1), axis=1)[:, None], 1
        )[:, 0]
        j = np.clip(j, 1, n - 2)
        a, b, c = (np.take_along_axis(drop, (j + k)[:, None], 1)[:, 0] for k in (-1, 0, 1))
        denom = a - 2 * b + c
        offset = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1.0), 0.0)
        radius_k = rho[j] + np.clip(offset, -1.0, 1.0) * _STEP_PX
        valid = strongest[:, 0] > 0
        ex, ey = cx + np.cos(theta) * radius_k, cy + np.sin(theta) * radius_k
        ex, ey, st = ex[valid], ey[valid], b[valid]
        keep = np.ones(len(ex), bool)
        for _ in range(3):
            if keep.sum() < n_angles * 0.6:
                return None
            fit = _kasa_circle(ex[keep], ey[keep])
            if fit is None:
                return None
            cx, cy, r = fit
            resid = np.abs(np.hypot(ex - cx, ey - cy) - r)
            keep = resid < max(1.0, 3.0 * float(np.median(resid[keep])))
    inlier_share = keep.sum() / n_angles
    rms = float(np.sqrt(np.mean(resid[keep] ** 2)))
    contrast = float(np.median(st[keep]))
    if inlier_share < 0.75 or rms > 1.0 or contrast < 8.0:
        return None
    return cx, cy, r, rms, contrast * inlier_share


def _kasa_circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float] | None:
    if len(x) < 3:
        return None
    a = np.column_stack([x, y, np.ones_like(x)])
    b = x**2 + y**2
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = sol[0] / 2.0, sol[1] / 2.0
    r2 = sol[2] + cx**2 + cy**2
    if r2 <= 0:
        return None
    return float(cx), float(cy), float(math.sqrt(r2))


def _shadow_widths(
    gray: np.ndarray, cx: float, cy: float, radius: float, to_sun: np.ndarray
) -> tuple[float, float]:
    """(crescent width, ground-shadow length) in pixels along the sun axis; NaN where not measurable."""
    across = np.array([-to_sun[1], to_sun[0]])

    def points(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cx + t * to_sun[0] + p * across[0], cy + t * to_sun[1] + p * across[1]

    # Lit ground on the sun side of the tank.
    theta = np.linspace(-1.2, 1.2, 25) + math.atan2(to_sun[1], to_sun[0])
    rho = np.arange(radius + 3.0, radius + 10.0, 1.0)
    ground_lit = np.nanmedian(
        _sample(gray, cx + np.cos(theta)[:, None] * rho, cy + np.sin(theta)[:, None] * rho)
    )
    # Shadowed ground just beyond the tank on the side away from the sun (the shadow is always longer).
    p = np.linspace(-0.5, 0.5, 11)[:, None] * radius
    chord = np.sqrt(radius**2 - p**2)
    t = -chord - np.arange(2.0, 5.0, 0.5)[None, :]
    ground_dark = np.nanmedian(_sample(gray, *points(t, np.broadcast_to(p, t.shape))))
    # Lit roof just inside the wall on the side away from the sun (the crescent never reaches it).
    p = np.linspace(-0.3, 0.3, 9)[:, None] * radius
    chord = np.sqrt(radius**2 - p**2)
    t = -chord + np.arange(3.0, 6.5, 0.5)[None, :]
    roof_lit = np.nanmedian(_sample(gray, *points(t, np.broadcast_to(p, t.shape))))
    if not (np.isfinite(ground_lit) and np.isfinite(ground_dark) and ground_lit > ground_dark > 0):
        return float("nan"), float("nan")
    # Shadows attenuate the sun's share of the light by the same factor on the roof as on the ground.
    roof_dark = roof_lit * ground_dark / ground_lit

    crescents = []
    for p_j in np.linspace(-0.5, 0.5, 11) * radius:
        half = math.sqrt(radius**2 - p_j**2)
        t = np.arange(-half, half + 1e-9, _STEP_PX)
        v = _sample(gray, *points(t, np.full_like(t, p_j)))
        share = np.clip((roof_lit - v) / (roof_lit - roof_dark), 0.0, 1.0)
        # Integrate only from just before the lit-to-shadow boundary: summed over the whole lit chord, sensor
        # noise clipped at zero would add a bias proportional to the chord's length.
        from_t = half - 5.0
        shadowed = np.flatnonzero(share >= 0.5)
        if len(shadowed):
            end = shadowed[-1]  # the crescent is the last shadowed run before the sun-side wall
            lit_before = np.flatnonzero(share[:end] < 0.5)
            start = lit_before[-1] + 1 if len(lit_before) else 0
            from_t = min(t[start], from_t) - 2.0
        width = float(np.nansum(share[t >= from_t]) * _STEP_PX)
        if width < 2.0 * half - 4.0:  # a chord wholly in shadow only bounds the crescent from below
            crescents.append(width)

    half_level = 0.5 * (ground_lit + ground_dark)
    lengths = []
    for p_j in np.linspace(-0.6, 0.6, 13) * radius:
        start = math.sqrt(radius**2 - p_j**2)
        tau = np.arange(1.5, 6.0 * radius, _STEP_PX)
        v = _sample(gray, *points(-start - tau, np.full_like(tau, p_j)))
        lit = np.flatnonzero(v > half_level)
        if len(lit) == 0 or np.isnan(v[: lit[0] + 1]).any():
            continue  # the shadow runs off the image
        j = int(lit[0])
        if j == 0:
            continue
        # Linear interpolation of the half-level crossing between the last dark and first lit sample.
        frac = (half_level - v[j - 1]) / (v[j] - v[j - 1])
        lengths.append(float(tau[j - 1] + frac * _STEP_PX))
    crescent = float(np.median(crescents)) if crescents else float("nan")
    ground = float(np.median(lengths)) if len(lengths) >= 3 else float("nan")
    return crescent, ground
