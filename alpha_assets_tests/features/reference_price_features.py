"""A frozen copy of alpha_assets/lib/features/price_features.py before the scale work (issue 11 item 6).

The test in test_price_features_scale.py holds today's implementation to this one's values, bit for bit: speed
work must not move a feature. Do not edit (besides this docstring it is the code as it was).

Temporal price features and forward-return labels, computed per ticker on the trading-session grid.

A day's features read only its lookback (``FEATURE_LOOKBACK`` sessions before it), so the cost of a day does not
grow with history, and computing a window incrementally gives the same rows as a full recompute (values equal to
machine precision). Windows count sessions, not rows: prices are laid out as a sessions x tickers matrix, each
ticker forward-filled between its first and last print (filled rows are flagged ``is_filled``), so a missing
print does not silently stretch a 20-day window. Rolling statistics run column by column (one column = one
ticker) with polars' kernels, on batches of tickers in parallel threads: the working set is a few T x batch arrays,
each batch is copied straight into the output's (session, ticker) layout, and the output arrays become the
frame's columns without another copy, so memory is the result plus the price grid.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

LAGS = (1, 5, 20, 60)
WINDOWS = (5, 20, 60)
RETURNS = (1, 5, 20)
FEATURE_LOOKBACK = 125  # sessions: covers mom_120_5 (121) and ret_20 lagged 60 (80)
LABEL_HORIZONS = (1, 5, 20)
ANNUALIZE = 252**0.5
# Cells (sessions x tickers) computed together: 53 features of this many float64 cells is ~0.15 GB of working set.
BATCH_CELLS = 320_000
THREADS = min(4, os.cpu_count() or 1)  # batches in flight: each holds one batch's working set


@dataclass
class Grid:
    sessions: np.ndarray  # (T,) datetime64[D]
    tickers: pl.Series  # (N,) sorted tickers
    live: np.ndarray  # (T, N) bool: between the ticker's first and last print
    filled: np.ndarray  # (T, N) bool: live but no print that day (forward-filled)
    cols: dict[str, np.ndarray]  # (T, N) float arrays, forward-filled within the live span


def build_grid(prices: pl.DataFrame) -> Grid:
    day_num = prices["trade_date"].cast(pl.Int32).to_numpy()
    # Days are small integers: a lookup table indexes them in one pass (no sort).
    lo_day = int(day_num.min())
    seen_day = np.zeros(int(day_num.max()) - lo_day + 1, dtype=bool)
    seen_day[day_num - lo_day] = True
    uniq_days = np.flatnonzero(seen_day) + lo_day
    lut = np.cumsum(seen_day) - 1
    d_idx = lut[day_num - lo_day]
    sessions = uniq_days.astype("datetime64[D]")
    tick = prices["ticker"].cast(pl.Utf8)
    tickers = tick.unique().sort()
    t_idx = tick.cast(pl.Enum(tickers)).to_physical().to_numpy()  # position in the sorted tickers
    t_len, n = len(sessions), len(tickers)
    present = np.zeros((t_len, n), dtype=bool)
    present[d_idx, t_idx] = True
    rows = np.arange(t_len)[:, None]
    seen = np.maximum.accumulate(np.where(present, rows, -1), axis=0)  # last printed row so far
    last_print = np.where(present.any(axis=0), t_len - 1 - np.argmax(present[::-1], axis=0), -1)
    live = (seen >= 0) & (rows <= last_print[None, :])
    gaps = live & ~present
    has_gaps = bool(gaps.any())  # usually no live ticker misses a print: then nothing to forward-fill
    src = np.where(seen >= 0, seen, 0)
    col_idx = np.broadcast_to(np.arange(n), (t_len, n))
    cols = {}
    for c in ("open", "high", "low", "close", "volume"):
        m = np.full((t_len, n), np.nan)
        m[d_idx, t_idx] = prices[c].cast(pl.Float64).to_numpy()
        if c == "volume":
            m[gaps] = 0.0  # no trading on a filled day
        elif has_gaps:
            m = np.where(live, m[src, col_idx], np.nan)
        cols[c] = m  # NaN outside the live span: never printed there
    return Grid(sessions, tickers, live, gaps, cols)


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(a, np.nan)
    if k > 0:
        out[k:] = a[:-k]
    elif k < 0:
        out[:k] = a[-k:]
    else:
        out[:] = a
    return out


class _Roller:
    """Rolling statistics down each column (ticker) of a T x B matrix, with polars' kernels."""

    def __init__(self, a: np.ndarray):
        # One Series per ticker column (contiguous in the batch's column-major layout: no copy to build).
        self.df = pl.DataFrame([pl.Series(f"c{i}", a[:, i], nan_to_null=True) for i in range(a.shape[1])])

    def __call__(self, fn: str, w: int) -> np.ndarray:
        # to_numpy of an all-float frame is column-major (T x B, Fortran order): the batch's own layout.
        out = self.df.select(getattr(pl.all(), f"rolling_{fn}")(w)).to_numpy()
        return out.astype(np.float64, copy=False)


def _features(g: Grid, t_need: int, b0: int, b1: int) -> dict[str, np.ndarray]:
    """The 53 features of tickers b0..b1 over sessions 0..t_need (each a T x B column-major array)."""
    # Column-major copies of the batch: each ticker's history contiguous, as polars' kernels want it.
    c, o, h, lo, v = (
        np.asfortranarray(g.cols[k][:t_need, b0:b1]) for k in ("close", "open", "high", "low", "volume")
    )
    f: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in RETURNS:
            f[f"ret_{k}"] = c / _shift(c, k) - 1
        f["log_ret_1"] = np.log(c / _shift(c, 1))
        r1 = f["ret_1"]
        for k in LAGS:
            f[f"ret_1_lag_{k}"] = _shift(r1, k)
        for k in (5, 20, 60):
            f[f"ret_5_lag_{k}"] = _shift(f["ret_5"], k)
        for k in (20, 60):
            f[f"ret_20_lag_{k}"] = _shift(f["ret_20"], k)
        rr, rc = _Roller(r1), _Roller(c)
        means, stds = {}, {}
        for w in WINDOWS:
            f[f"ret_mean_{w}"] = rr("mean", w)
            f[f"ret_std_{w}"] = rr("std", w)
            f[f"ret_min_{w}"] = rr("min", w)
            f[f"ret_max_{w}"] = rr("max", w)
            means[w], stds[w] = rc("mean", w), rc("std", w)
            f[f"close_to_mean_{w}"] = c / means[w] - 1
            f[f"close_to_min_{w}"] = c / rc("min", w) - 1
            f[f"close_to_max_{w}"] = c / rc("max", w) - 1
            f[f"close_cv_{w}"] = stds[w] / means[w]
        f["vol_20"] = f["ret_std_20"] * ANNUALIZE
        f["vol_60"] = f["ret_std_60"] * ANNUALIZE
        f["vol_ratio_20_60"] = f["ret_std_20"] / f["ret_std_60"]
        f["mom_20"] = c / _shift(c, 20) - 1
        f["mom_60_5"] = _shift(c, 5) / _shift(c, 60) - 1
        f["mom_120_5"] = _shift(c, 5) / _shift(c, 120) - 1
        f["zscore_20"] = (c - means[20]) / stds[20]
        f["zscore_60"] = (c - means[60]) / stds[60]
        f["log_volume"] = np.log(v + 1)
        rv = _Roller(v)
        f["volume_ratio_5_20"] = rv("mean", 5) / rv("mean", 20)
        dv = c * v
        f["log_dollar_volume_20"] = np.log(_Roller(dv)("mean", 20) + 1)
        f["amihud_20"] = _Roller(np.abs(r1) / (dv + 1))("mean", 20) * 1e6
        hl = (h - lo) / c
        f["hl_range"] = hl
        f["hl_range_mean_20"] = _Roller(hl)("mean", 20)
        f["overnight_gap"] = o / _shift(c, 1) - 1
        f["intraday_ret"] = c / o - 1
    return f


def _column(values: np.ndarray, name: str) -> pl.Series:
    """A float column with NaN (short lookback, missing data) stored as null, sharing ``values``' memory."""
    return pl.Series(name, pa.array(values, from_pandas=True))


def _long(
    g: Grid,
    compute: Callable[[Grid, int, int, int], dict[str, np.ndarray]],
    start: date,
    end: date,
    extra: bool = True,
    batch: int | None = None,
    looks_ahead: bool = False,
) -> pl.DataFrame:
    """The long (trade_date, ticker)-sorted frame of ``compute``'s T x N outputs for the live cells in [start, end].

    Tickers are computed ``batch`` at a time (about ``BATCH_CELLS`` cells by default), so the working set is a few
    T x batch arrays rather than one T x N array per feature; each batch's rows for the window are copied straight
    into the output's (session, ticker) layout, and the output arrays become the frame's columns without a copy.
    """
    in_window = (g.sessions >= np.datetime64(start)) & (g.sessions <= np.datetime64(end))
    rows = np.flatnonzero(in_window)
    t_len, n = g.live.shape
    t0, t1 = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
    mask = g.live[t0:t1]
    whole = bool(mask.all())  # every cell kept: no compaction
    # Features read only sessions up to the window's last one; labels read forward.
    t_need = t_len if looks_ahead else t1
    batch = batch or max(1, BATCH_CELLS // max(t_need, 1))
    out: dict[str, np.ndarray] = {}
    allocating = threading.Lock()

    def run_batch(b0: int) -> None:
        b1 = min(n, b0 + batch)
        for k, a in compute(g, t_need, b0, b1).items():
            with allocating:
                if k not in out:
                    out[k] = np.empty((t1 - t0, n), dtype=np.float64)
            out[k][:, b0:b1] = a[t0:t1]  # each batch owns its columns of the output: no lock needed

    starts = range(0, n if t1 > t0 else 0, batch)
    # numpy and polars release the GIL in their kernels: batches on threads use every core.
    with ThreadPoolExecutor(max_workers=min(THREADS, len(starts)) or 1) as pool:
        list(pool.map(run_batch, starts))

    session_days = g.sessions[t0:t1].astype(np.int32)
    if whole:
        flat = None
        day_of_row = np.repeat(session_days, n)
        ticker_of_row = np.tile(np.arange(n, dtype=np.uint32), t1 - t0)
    else:
        flat = np.flatnonzero(mask.ravel())  # row-major: already sorted by (trade_date, ticker)
        ti, ni = np.divmod(flat, n)
        day_of_row, ticker_of_row = session_days[ti], ni
        del ti, ni

    def pick(a: np.ndarray) -> np.ndarray:
        return a.ravel() if flat is None else a.ravel()[flat]

    cols = [
        pl.Series("trade_date", day_of_row).cast(pl.Date),
        g.tickers.gather(ticker_of_row).alias("ticker"),
    ]
    del day_of_row, ticker_of_row
    if extra:
        cols += [
            pl.Series("close", pick(g.cols["close"][t0:t1])),
            pl.Series("is_filled", pick(g.filled[t0:t1])),
        ]
    for k in list(out):
        cols.append(_column(pick(out.pop(k)), k))  # pop: a compacted copy frees the full array at once
    return pl.DataFrame(cols)


def compute_price_features(
    prices: pl.DataFrame, start: date, end: date, batch: int | None = None
) -> pl.DataFrame:
    """Features for every ticker-session in [start, end]; ``prices`` must cover the lookback before ``start``.

    ``batch`` (tickers computed together) only bounds memory: the values do not depend on it."""
    g = build_grid(prices)
    return _long(g, _features, start, end, batch=batch)


def feature_columns(df: pl.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ("trade_date", "ticker", "close", "is_filled")]


def compute_labels(
    prices: pl.DataFrame, start: date, end: date, known_until: date | None = None
) -> pl.DataFrame:
    """Forward close-to-close returns over 1/5/20 sessions for days in [start, end].

    A label for day D and horizon h is filled only if the ticker is live at session D+h and that session is within
    the known data (``known_until`` defaults to the last date in ``prices``); otherwise it is null and a later run
    fills it.
    """
    g = build_grid(prices)
    last = np.datetime64(known_until or prices["trade_date"].max()).astype("datetime64[D]").astype(np.float64)
    due = {
        h: _shift(g.sessions.astype("datetime64[D]").astype(np.float64), -h) <= last for h in LABEL_HORIZONS
    }

    def forward_returns(g: Grid, t_need: int, b0: int, b1: int) -> dict[str, np.ndarray]:
        c, live = g.cols["close"][:, b0:b1], g.live[:, b0:b1].astype(np.float64)
        labels = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            for h in LABEL_HORIZONS:
                # known: session D+h exists within the known data and the ticker is live then
                known = due[h][:, None] & _shift(live, -h).astype(bool)
                labels[f"fwd_ret_{h}"] = np.where(known, _shift(c, -h) / c - 1, np.nan)
        return labels

    return _long(g, forward_returns, start, end, extra=False, looks_ahead=True)
