"""Temporal price features and forward-return labels, computed per ticker on the trading-session grid.

A day's features read only its lookback (``FEATURE_LOOKBACK`` sessions before it), so the cost of a day does not
grow with history, and computing a window incrementally gives the same rows as a full recompute (values equal to
machine precision). Windows count sessions, not rows: prices are laid out as a sessions x tickers matrix, each
ticker forward-filled between its first and last print (filled rows are flagged ``is_filled``), so a missing
print does not silently stretch a 20-day window. Rolling means and standard deviations run column by column (one
column = one ticker) with polars' kernels, rolling min/max by exact doubling windows in numpy, on batches of
tickers in parallel threads: the working set is a few T x batch arrays, each feature is copied into the output's
(session, ticker) layout as soon as it is computed, and the output arrays become the frame's columns without another
copy, so memory is the result plus the price grid. ``iter_price_features`` yields the same rows in chunks of
sessions (each from its own lookback), so memory is bounded by a chunk: the asset writes long windows that way.
"""

from __future__ import annotations

import functools
import mmap
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import cast

import numpy as np
import polars as pl
import pyarrow as pa

from alpha_assets.lib.settings import FEATURE_LOOKBACK_SESSIONS, LABEL_HORIZONS, SESSIONS_PER_YEAR

LAGS = (1, 5, 20, 60)
WINDOWS = (5, 20, 60)
RETURNS = (1, 5, 20)
FEATURE_LOOKBACK = FEATURE_LOOKBACK_SESSIONS  # covers mom_120_5 (121) and ret_20 lagged 60 (80)
ANNUALIZE = SESSIONS_PER_YEAR**0.5
# Cells (sessions x tickers) computed together: 53 features of this many float64 cells is ~0.15 GB of working set.
BATCH_CELLS = 320_000
# Batches in flight, one per core (the previous 4 threads on 2 cores measured no faster: polars' rolling kernels
# also use its own thread pool).
THREADS = os.cpu_count() or 1
COPY_TILE = 128  # rows per tile of the batch -> output copy
# Cells (sessions x tickers) per chunk of iter_price_features: 53 float64 features of 4 M cells are ~1.7 GB.
CHUNK_CELLS = 4_000_000


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


def _lagged(a: np.ndarray, b: np.ndarray, k: int, op: np.ufunc) -> np.ndarray:
    """``op(a[t], b[t - k])`` down the rows, NaN for the first k rows."""
    out = np.empty_like(a)
    out[:k] = np.nan
    op(a[k:], b[:-k], out=out[k:])
    return out


def _rolling_extremes(x: np.ndarray, op: np.ufunc) -> dict[int, np.ndarray]:
    """Rolling min (``np.minimum``) or max (``np.maximum``) over 5, 20 and 60 rows, by doubling windows.

    A min is exact whatever the order it is taken in, so these equal polars' ``rolling_min``/``rolling_max`` bit for
    bit, with the same nulls: NaN propagates through ``np.minimum``, so a window holding a NaN (a null for polars)
    or reaching before the first row is NaN. Seven elementwise passes instead of three rolling kernels: about 5x
    less work."""
    w2 = _lagged(x, x, 1, op)  # rows t-1..t
    w4 = _lagged(w2, w2, 2, op)  # t-3..t
    w5 = _lagged(w4, x, 4, op)  # t-4..t
    w10 = _lagged(w5, w5, 5, op)  # t-9..t
    w20 = _lagged(w10, w10, 10, op)  # t-19..t
    w40 = _lagged(w20, w20, 20, op)  # t-39..t
    return {5: w5, 20: w20, 60: _lagged(w40, w20, 40, op)}  # t-59..t


class _Roller:
    """Rolling means and standard deviations down each column (ticker) of a T x B matrix, with polars' kernels
    (their running sums set the values' last bits: kept as they are)."""

    def __init__(self, a: np.ndarray):
        # One Series over the whole column-major batch (NaN as null), one zero-copy slice per ticker: the kernels
        # then read one contiguous buffer, about 30% faster than over a Series per ticker.
        t = a.shape[0]
        whole = pl.Series("batch", a.ravel(order="F"), nan_to_null=True)
        self.df = pl.DataFrame({f"c{i}": whole.slice(i * t, t) for i in range(a.shape[1])})

    def __call__(self, fn: str, w: int) -> np.ndarray:
        # to_numpy of an all-float frame is column-major (T x B, Fortran order): the batch's own layout.
        out = self.df.select(getattr(pl.all(), f"rolling_{fn}")(w)).to_numpy()
        return out.astype(np.float64, copy=False)


def _features(g: Grid, ta: int, tb: int, b0: int, b1: int) -> Iterator[tuple[str, np.ndarray]]:
    """The 53 features of tickers b0..b1 over grid rows ta..tb, each a (tb - ta) x B column-major array.

    Each feature is yielded as soon as it is computed, so the caller copies it into the output while it is still
    in cache (copying them all at the end of the batch, from memory, took longer than computing them)."""
    # Column-major copies of the batch: each ticker's history contiguous, as polars' kernels want it.
    c, o, h, lo, v = (
        np.asfortranarray(g.cols[k][ta:tb, b0:b1]) for k in ("close", "open", "high", "low", "volume")
    )
    past = {k: _shift(c, k) for k in (1, 5, 20, 60, 120)}  # closes k sessions back, each shifted once
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = {}
        for k in RETURNS:
            ret[k] = c / past[k] - 1
            yield f"ret_{k}", ret[k]
        yield "log_ret_1", np.log(c / past[1])
        r1 = ret[1]
        for k in LAGS:
            yield f"ret_1_lag_{k}", _shift(r1, k)
        for k in (5, 20, 60):
            yield f"ret_5_lag_{k}", _shift(ret[5], k)
        for k in (20, 60):
            yield f"ret_20_lag_{k}", _shift(ret[20], k)
        rr, rc = _Roller(r1), _Roller(c)
        means, stds, ret_stds = {}, {}, {}
        r_min, r_max = _rolling_extremes(r1, np.minimum), _rolling_extremes(r1, np.maximum)
        c_min, c_max = _rolling_extremes(c, np.minimum), _rolling_extremes(c, np.maximum)
        for w in WINDOWS:
            yield f"ret_mean_{w}", rr("mean", w)
            ret_stds[w] = rr("std", w)
            yield f"ret_std_{w}", ret_stds[w]
            yield f"ret_min_{w}", r_min[w]
            yield f"ret_max_{w}", r_max[w]
            means[w], stds[w] = rc("mean", w), rc("std", w)
            yield f"close_to_mean_{w}", c / means[w] - 1
            yield f"close_to_min_{w}", c / c_min[w] - 1
            yield f"close_to_max_{w}", c / c_max[w] - 1
            yield f"close_cv_{w}", stds[w] / means[w]
        yield "vol_20", ret_stds[20] * ANNUALIZE
        yield "vol_60", ret_stds[60] * ANNUALIZE
        yield "vol_ratio_20_60", ret_stds[20] / ret_stds[60]
        yield "mom_20", ret[20]  # the same formula as ret_20: the same values
        yield "mom_60_5", past[5] / past[60] - 1
        yield "mom_120_5", past[5] / past[120] - 1
        yield "zscore_20", (c - means[20]) / stds[20]
        yield "zscore_60", (c - means[60]) / stds[60]
        yield "log_volume", np.log(v + 1)
        rv = _Roller(v)
        yield "volume_ratio_5_20", rv("mean", 5) / rv("mean", 20)
        dv = c * v
        yield "log_dollar_volume_20", np.log(_Roller(dv)("mean", 20) + 1)
        yield "amihud_20", _Roller(np.abs(r1) / (dv + 1))("mean", 20) * 1e6
        hl = (h - lo) / c
        yield "hl_range", hl
        yield "hl_range_mean_20", _Roller(hl)("mean", 20)
        yield "overnight_gap", o / past[1] - 1
        yield "intraday_ret", c / o - 1


def _column(values: np.ndarray, name: str) -> pl.Series:
    """A float column over ``values`` (no copy) with NaN (short lookback, missing data) stored as null.

    The validity bitmap is built with numpy (isnan + packbits, about 4x faster than pyarrow's ``from_pandas``
    conversion) and the values buffer is shared, not copied: at 5,000 names x 10 years a copy of the result is
    another 5.3 GB of fresh pages to fault in."""
    nan = np.isnan(values)
    nulls = int(np.count_nonzero(nan))
    validity = None if nulls == 0 else pa.py_buffer(np.packbits(~nan, bitorder="little"))
    del nan
    arr = pa.Array.from_buffers(pa.float64(), len(values), [validity, pa.py_buffer(values)], null_count=nulls)
    return pl.Series(name, arr)


def _output_array(rows: int, cols: int) -> np.ndarray:
    """An uninitialised float64 array in its own anonymous memory map, unmapped when the last column using it goes.

    From malloc, arrays just under glibc's dynamic mmap threshold (32 MiB) land in the heap once a larger one has
    been freed, and freed heap memory is kept: iterating 800-session chunks at 5,000 names grew RSS by about a
    chunk per chunk (2.9, 4.3, 5.6 GB after each was dropped) instead of returning to 2 GB."""
    nbytes = max(rows * cols * 8, 8)
    if nbytes < 1 << 20:
        return np.empty((rows, cols), dtype=np.float64)
    # Private memory, and no MADV_HUGEPAGE: here the kernel's compaction for huge pages made the copy 2x slower.
    mem = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(mem, dtype=np.float64, count=rows * cols).reshape(rows, cols)


def _copy_rows(dst: np.ndarray, src: np.ndarray, r0: int, b0: int, b1: int) -> None:
    """``dst[:, b0:b1] = src[r0:r0 + len(dst)]``: a column-major batch into the row-major output, in row tiles.

    A tile of rows x batch stays in cache while it is transposed, which roughly halves the cost of the copy."""
    for i in range(0, dst.shape[0], COPY_TILE):
        j = min(dst.shape[0], i + COPY_TILE)
        dst[i:j, b0:b1] = src[r0 + i : r0 + j]


def _long(
    g: Grid,
    compute: Callable[[Grid, int, int, int, int], Iterable[tuple[str, np.ndarray]]],
    t0: int,
    t1: int,
    ta: int,
    tb: int,
    extra: bool = True,
    batch: int | None = None,
) -> pl.DataFrame:
    """The long (trade_date, ticker)-sorted frame of ``compute``'s outputs for the live cells of grid rows t0..t1.

    ``compute`` reads grid rows ta..tb (``ta <= t0``: the lookback; ``tb >= t1``: what labels look ahead to).
    Tickers are computed ``batch`` at a time (about ``BATCH_CELLS`` cells by default), so the working set is a few
    (tb - ta) x batch arrays rather than one array per feature; each batch's rows for the window are copied straight
    into the output's (session, ticker) layout.
    """
    n = g.live.shape[1]
    mask = g.live[t0:t1]
    whole = bool(mask.all())  # every cell kept: no compaction
    batch = batch or max(1, BATCH_CELLS // max(tb - ta, 1))
    out: dict[str, np.ndarray] = {}
    allocating = threading.Lock()

    def run_batch(b0: int) -> None:
        b1 = min(n, b0 + batch)
        for k, a in compute(g, ta, tb, b0, b1):
            with allocating:
                if k not in out:
                    out[k] = _output_array(t1 - t0, n)
            _copy_rows(
                out[k], a, t0 - ta, b0, b1
            )  # each batch owns its columns of the output: no lock needed

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

    def column(k: str) -> pl.Series:
        return _column(pick(out.pop(k)), k)  # pop: a compacted copy frees the full array at once

    with ThreadPoolExecutor(max_workers=THREADS) as pool:  # the validity bitmaps, one column per core
        cols += list(pool.map(column, list(out)))
    return pl.DataFrame(cols)


def _rows(g: Grid, start: date, end: date) -> tuple[int, int]:
    """Grid rows t0..t1 of the sessions in [start, end]."""
    rows = np.flatnonzero((g.sessions >= np.datetime64(start)) & (g.sessions <= np.datetime64(end)))
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)


def compute_price_features(
    prices: pl.DataFrame, start: date, end: date, batch: int | None = None
) -> pl.DataFrame:
    """Features for every ticker-session in [start, end]; ``prices`` must cover the lookback before ``start``.

    ``batch`` (tickers computed together) only bounds memory: the values do not depend on it."""
    g = build_grid(prices)
    t0, t1 = _rows(g, start, end)
    return _long(g, _features, t0, t1, 0, t1, batch=batch)


def chunk_sessions(n_tickers: int) -> int:
    """Sessions per chunk of ``iter_price_features`` so that a chunk holds about ``CHUNK_CELLS`` cells."""
    return max(1, CHUNK_CELLS // max(n_tickers, 1))


def iter_price_features(
    prices: pl.DataFrame,
    start: date,
    end: date,
    sessions: int | None = None,
    batch: int | None = None,
) -> Iterator[pl.DataFrame]:
    """``compute_price_features(prices, start, end)`` in consecutive chunks of at most ``sessions`` sessions.

    Each chunk is computed from its own ``FEATURE_LOOKBACK`` sessions, so memory is bounded by the chunk (about
    ``CHUNK_CELLS`` cells by default), not by the window. The chunks' rows, in order, are the full call's rows with
    the same nulls; values equal the full call's to machine precision (bit for bit while a chunk's lookback starts
    at the first session of ``prices``, as the first chunk's does when ``prices`` starts one lookback before
    ``start``) (polars' rolling mean and std keep running sums, so their last bits depend on where the series starts:
    the same tolerance as an incremental day against a full recompute).
    """
    g = build_grid(prices)
    t0, t1 = _rows(g, start, end)
    step = sessions or chunk_sessions(len(g.tickers))
    for c0 in range(t0, t1, step):
        c1 = min(t1, c0 + step)
        yield _long(g, _features, c0, c1, max(0, c0 - FEATURE_LOOKBACK), c1, batch=batch)


@functools.cache
def price_feature_names() -> tuple[str, ...]:
    """The feature columns ``compute_price_features`` produces, in order (from a one-ticker, two-session grid)."""
    one = np.ones((2, 1))
    g = Grid(
        np.array([0, 1], dtype="datetime64[D]"),
        pl.Series(["X"]),
        one > 0,
        one < 0,
        {k: one for k in ("open", "high", "low", "close", "volume")},
    )
    return tuple(k for k, _ in _features(g, 0, 2, 0, 1))


def feature_columns(df: pl.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ("trade_date", "ticker", "close", "is_filled")]


def _label_compute(
    g: Grid, known_until: date | None, last_price: date
) -> Callable[[Grid, int, int, int, int], Iterable[tuple[str, np.ndarray]]]:
    last = np.datetime64(known_until or last_price).astype("datetime64[D]").astype(np.float64)
    due = {
        h: _shift(g.sessions.astype("datetime64[D]").astype(np.float64), -h) <= last for h in LABEL_HORIZONS
    }

    def forward_returns(g: Grid, ta: int, tb: int, b0: int, b1: int) -> Iterable[tuple[str, np.ndarray]]:
        c, live = g.cols["close"][ta:tb, b0:b1], g.live[ta:tb, b0:b1].astype(np.float64)
        labels = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            for h in LABEL_HORIZONS:
                # known: session D+h exists within the known data and the ticker is live then
                known = due[h][ta:tb, None] & _shift(live, -h).astype(bool)
                labels[f"fwd_ret_{h}"] = np.where(known, _shift(c, -h) / c - 1, np.nan)
        return labels.items()

    return forward_returns


def compute_labels(
    prices: pl.DataFrame, start: date, end: date, known_until: date | None = None
) -> pl.DataFrame:
    """Forward close-to-close returns over 1/5/20 sessions for days in [start, end].

    A label for day D and horizon h is filled only if the ticker is live at session D+h and that session is within
    the known data (``known_until`` defaults to the last date in ``prices``); otherwise it is null and a later run
    fills it.
    """
    g = build_grid(prices)
    t0, t1 = _rows(g, start, end)
    compute = _label_compute(g, known_until, cast(date, prices["trade_date"].max()))
    return _long(g, compute, t0, t1, t0, len(g.sessions), extra=False)


def iter_labels(
    prices: pl.DataFrame,
    start: date,
    end: date,
    known_until: date | None = None,
    sessions: int | None = None,
) -> Iterator[pl.DataFrame]:
    """``compute_labels`` in consecutive chunks of at most ``sessions`` sessions (rows and values identical: a
    label is one division, it does not depend on where the chunk starts)."""
    g = build_grid(prices)
    t0, t1 = _rows(g, start, end)
    compute = _label_compute(g, known_until, cast(date, prices["trade_date"].max()))
    step = sessions or chunk_sessions(len(g.tickers))
    for c0 in range(t0, t1, step):
        c1 = min(t1, c0 + step)
        yield _long(g, compute, c0, c1, c0, min(len(g.sessions), c1 + max(LABEL_HORIZONS)), extra=False)
