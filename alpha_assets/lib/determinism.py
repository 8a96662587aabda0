"""Deterministic results: the same inputs and code give the same bits, whether a day runs alone, in a range or again.

Two sources of run-to-run noise, and what this module gives against each:

- Inference whose last bits depend on the run's composition. A transformer's output for one sentence depended on
  which other sentences shared its padded batch; with more than one torch thread, even an unpadded batch's rows
  depend on the batch's size (the matrix kernels split their work by shape). ``torch_inference`` fixes the threads
  (``INFERENCE_THREADS``) and asks for deterministic kernels for the duration of an inference, restoring the
  process's settings after; the callers batch only rows of one shape (no padding), so a row's result is the same
  alone or among others.
- Float noise reordering names in a ranking. Values equal in exact arithmetic (two names with the same step
  pattern in a trailing z-score) come out a few ulps apart, and which is "larger" depends on summation order.
  ``stable_round`` rounds to ``RANK_SIG_DIGITS`` significant digits (and snaps near-zero noise to 0) before a
  rank, so such values tie; ties are then ranked symmetrically (``average``), which depends on no row order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "INFERENCE_THREADS",
    "RANK_SIG_DIGITS",
    "STORED_DECIMALS",
    "ZERO_ATOL",
    "round_sig",
    "stable_round",
    "torch_inference",
]

# One thread: with two, the per-row results of a transformer batch changed with the batch's size (~1e-7).
INFERENCE_THREADS = 1
# Significant digits kept before ranking: float noise is ~1e-16 relative, honest differences are far above 1e-12.
RANK_SIG_DIGITS = 12
# |x| below this is float noise around an exact zero (a difference of equal values computed two ways).
ZERO_ATOL = 1e-12
# Decimals of stored model scores (sentiment): the platform-dependent last bits do not reach the table.
STORED_DECIMALS = 9


@contextlib.contextmanager
def torch_inference(threads: int = INFERENCE_THREADS) -> Iterator[Any]:
    """torch with ``threads`` threads, deterministic algorithms (warn only where a kernel has no deterministic
    version) and inference mode; the caller's thread count and deterministic flag are restored after."""
    import torch

    before = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.inference_mode():
            yield torch
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
        torch.set_num_threads(before)


def round_sig(values: np.ndarray, digits: int = RANK_SIG_DIGITS, zero_atol: float = ZERO_ATOL) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits, |x| < ``zero_atol`` set to 0 (NaN/inf kept)."""
    x = np.asarray(values, dtype=np.float64)
    out = x.copy()
    ok = np.isfinite(x) & (np.abs(x) >= zero_atol)
    if ok.any():
        mag = np.floor(np.log10(np.abs(x[ok])))
        scale = 10.0 ** (digits - 1 - mag)
        out[ok] = np.round(x[ok] * scale) / scale
    out[np.isfinite(x) & (np.abs(x) < zero_atol)] = 0.0
    return out


def stable_round(expr: pl.Expr, digits: int = RANK_SIG_DIGITS, zero_atol: float = ZERO_ATOL) -> pl.Expr:
    """The polars form of ``round_sig``: what a cross-sectional rank should see (nulls stay null)."""
    x = expr.cast(pl.Float64)
    return pl.when(x.abs() < zero_atol).then(0.0).otherwise(x.round_sig_figs(digits))
