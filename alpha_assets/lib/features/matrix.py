"""The model-ready feature matrix: price features + alt values against each name's own history, normalised
across names per day, with an explicit missing-value policy, and the checks that it does not peek ahead.

One row per (trade_date, ticker) for the trading days in [start, end]. Alternative data says little in levels
(a store's car count depends on the store), so each alt value also enters as its change over ``change_lags``
sessions and as a z-score against the name's own trailing ``history_sessions``; every feature is then made
comparable across names by a per-day cross-sectional normalisation (rank to [-0.5, 0.5], or a robust z-score).

Missing values, explicitly: each source (``price`` and the alt prefixes ``parking``, ``tanks``, ``call``,
``filing``, ``web``, plus ``fused`` when embeddings are joined) gets a 0/1 column ``<src>__missing`` that is 1
when every value column of that source is null for the ticker-day; then every null is filled with 0, which after
normalisation is the cross-sectional middle. The models can thus tell "no data" from "average".

The matrix only reads what is known at a day's cut-off (alt_features is point in time; changes and z-scores
look backwards). ``publication_violations`` and the statistical leakage gate (``leakage.py``) check that claim on
the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.altdata.point_in_time import TS, session_cutoffs
from alpha_assets.lib.determinism import stable_round

KEYS = ("trade_date", "ticker")
ALT_SOURCES = ("parking", "tanks", "call", "filing", "web")
PRICE_SOURCE = "price"
FUSED_SOURCE = "fused"
MISSING_SUFFIX = "__missing"

# The value columns of features.alt_features, per source (the rest are <src>_published_at / <src>_age_days).
ALT_VALUE_COLUMNS: list[str] = [
    "parking_cars_per_store",
    "parking_total_cars",
    "tanks_mean_fill_ratio",
    "tanks_oil_m3",
    "tanks_utilisation",
    "call_sentiment",
    "call_management_sentiment",
    "call_prepared_sentiment",
    "call_qa_sentiment",
    "filing_risk_factors_sentiment",
    "filing_mdna_sentiment",
    "filing_risk_factors_words_change",
    "filing_document_similarity",
    "filing_mdna_fog",
    "web_price_change",
    "web_mean_log_price",
    "web_out_of_stock_share",
]

# Price-table columns that are not features: the raw close is a level, is_filled a data-quality flag.
PRICE_NON_FEATURES = ("trade_date", "ticker", "close", "is_filled")
LABEL_PREFIX = "fwd_ret_"
Z_MIN_SAMPLES = 10  # a z-score against fewer observations is noise
ROBUST_Z_CLIP = 5.0
_Z_CHUNK_CELLS = 4_000_000  # window cells (names x sessions x window) per chunk of trailing_z: ~32 MB each


@dataclass(frozen=True)
class MatrixConfig:
    history_sessions: int = 60  # own-history window for alt z-scores
    change_lags: tuple[int, ...] = (5, 20)
    # "rank" (uniform in [-0.5, 0.5]), "robust_z" (median/MAD, clipped at +-5), "none" (raw, for inspection)
    normalise: str = "rank"
    price_columns: tuple[str, ...] | None = None  # None: every numeric price feature column
    keep_age_columns: bool = True  # <src>_age_days are known at the cut-off: staleness is information


def matrix_lookback_sessions(cfg: MatrixConfig = MatrixConfig()) -> int:
    """Sessions of alt_features the caller must pass before ``start`` for the first day's changes/z-scores."""
    return max(cfg.history_sessions, *cfg.change_lags)


def source_of(alt_column: str) -> str | None:
    """The alt source prefix of a column of alt_features (None for keys and foreign columns)."""
    for src in ALT_SOURCES:
        if alt_column.startswith(f"{src}_"):
            return src
    return None


def alt_value_columns(alt_features: pl.DataFrame) -> list[str]:
    """The value columns present in an alt_features frame (numeric, a known source prefix, not a timestamp/age)."""
    out = []
    for name, dtype in alt_features.schema.items():
        if name in KEYS or source_of(name) is None or not dtype.is_numeric():
            continue
        if name.endswith("_published_at") or name.endswith("_age_days"):
            continue
        out.append(name)
    return out


def feature_columns(df: pl.DataFrame) -> list[str]:
    """The feature names of a matrix: everything but the keys and any joined ``fwd_ret_*`` label."""
    return [c for c in df.columns if c not in KEYS and not c.startswith(LABEL_PREFIX)]


def _price_columns(price_features: pl.DataFrame, cfg: MatrixConfig) -> list[str]:
    if cfg.price_columns is not None:
        missing = [c for c in cfg.price_columns if c not in price_features.columns]
        if missing:
            raise ValueError(f"price_columns not in price_features: {missing}")
        return list(cfg.price_columns)
    return [c for c, t in price_features.schema.items() if c not in PRICE_NON_FEATURES and t.is_numeric()]


def alt_history_features(alt: pl.DataFrame, cfg: MatrixConfig) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """Levels, k-session changes and own-history z-scores of every alt value, per ticker in session order.

    Returns the frame (keys, levels, ``v__chg_k``, ``v__z<history>``, ages) for every day of ``alt`` and the
    derived column names per source.

    The frame is first completed to a full sessions x tickers grid so that "k sessions earlier" and the
    trailing window count sessions, not rows, even when a ticker has gaps.
    """
    values = alt_value_columns(alt)
    ages = (
        [f"{s}_age_days" for s in ALT_SOURCES if f"{s}_age_days" in alt.columns]
        if cfg.keep_age_columns
        else []
    )
    days = alt.select(pl.col("trade_date").unique())
    names = alt.select(pl.col("ticker").unique())
    grid = days.join(names, how="cross")
    frame = (
        grid.join(alt.select(*KEYS, *values, *ages), on=list(KEYS), how="left")
        .with_columns(pl.col(values + ages).cast(pl.Float64))
        .with_columns(pl.col(values + ages).fill_nan(None))
        .sort("ticker", "trade_date")
    )
    exprs: list[pl.Expr | pl.Series] = []
    by_source: dict[str, list[str]] = {}
    h = cfg.history_sessions
    n_names = frame["ticker"].n_unique()
    for v in values:
        x = pl.col(v)
        derived = [v]
        for k in cfg.change_lags:
            exprs.append((x - x.shift(k)).over("ticker").alias(f"{v}__chg_{k}"))
            derived.append(f"{v}__chg_{k}")
        z = trailing_z(frame[v].to_numpy(), n_names, h)
        exprs.append(pl.Series(f"{v}__z{h}", z, nan_to_null=True))
        derived.append(f"{v}__z{h}")
        src = source_of(v)
        assert src is not None  # alt_value_columns keeps only columns of a known source
        by_source.setdefault(src, []).extend(derived)
    for a in ages:
        src = source_of(a)
        assert src is not None  # "<source>_age_days" of a source in ALT_SOURCES
        by_source.setdefault(src, []).append(a)
    out = frame.with_columns(exprs) if exprs else frame
    return out, by_source


def trailing_z(values: np.ndarray, n_names: int, window: int, min_samples: int = Z_MIN_SAMPLES) -> np.ndarray:
    """Each value's z-score against its own trailing ``window`` (itself included; NaN = missing, ignored; fewer
    than ``min_samples`` values -> NaN; a flat window -> 0), for ``values`` laid out name-major on a full grid
    (``n_names`` blocks of the same number of sessions, in session order).

    Computed from each window's own values (two-pass mean and sample standard deviation over a sliding window,
    in a fixed order), never from running sums: polars' rolling kernels carry sums from the start of the frame,
    so the last bits depended on how much history a run had loaded, and values equal in exact arithmetic (two
    names with the same step pattern) reordered between a backfill and a day run."""
    x = np.asarray(values, dtype=np.float64).reshape(n_names, -1)
    t = x.shape[1]
    out = np.full_like(x, np.nan)
    if t == 0:
        return out.ravel()
    known_all = ~np.isnan(x)
    filled = np.concatenate([np.zeros((n_names, window - 1)), np.where(known_all, x, 0.0)], axis=1)
    flags = np.concatenate([np.zeros((n_names, window - 1)), known_all.astype(np.float64)], axis=1)
    rows = max(1, _Z_CHUNK_CELLS // max(1, t * window))
    view = np.lib.stride_tricks.sliding_window_view
    for r0 in range(0, n_names, rows):
        win, known = view(filled[r0 : r0 + rows], window, axis=1), view(flags[r0 : r0 + rows], window, axis=1)
        count = known.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = win.sum(axis=2) / count
            dev = (win - mean[..., None]) * known  # missing values (0 in ``filled``) contribute nothing
            std = np.sqrt((dev * dev).sum(axis=2) / (count - 1))
            cur = x[r0 : r0 + rows]
            enough = (count >= min_samples) & known_all[r0 : r0 + rows]
            z = np.where(std > 1e-12, (cur - mean) / std, 0.0)  # a flat window has no surprise: 0, not inf
        out[r0 : r0 + rows] = np.where(enough, z, np.nan)
    return out.ravel()


def _normalise(cols: list[str], how: str) -> list[pl.Expr]:
    """Per-day cross-sectional normalisation; nulls stay null (filled later with the neutral 0).

    Values are first rounded to ``RANK_SIG_DIGITS`` significant digits (``determinism.stable_round``): float
    noise (1e-16 relative, from summation order) must not reorder names, and values equal in exact arithmetic
    tie (average rank, which depends on no row order)."""
    exprs = []
    for c in cols:
        x = stable_round(pl.col(c))
        e: pl.Expr
        if how == "rank":
            n = x.count().over("trade_date")
            r = x.rank("average").over("trade_date")
            e = pl.when(n > 1).then((r - 1) / (n - 1) - 0.5).when(x.is_not_null()).then(0.0)
        elif how == "robust_z":
            med = x.median().over("trade_date")
            mad = (x - med).abs().median().over("trade_date") * 1.4826
            z = pl.when(mad > 1e-12).then(((x - med) / mad).clip(-ROBUST_Z_CLIP, ROBUST_Z_CLIP))
            e = z.when(x.is_not_null()).then(0.0)
        elif how == "none":  # raw values, for inspection and tests
            e = pl.col(c)
        else:
            raise ValueError(f"normalise must be 'rank', 'robust_z' or 'none', got {how!r}")
        exprs.append(e.alias(c))
    return exprs


def build_feature_matrix(
    price_features: pl.DataFrame,
    alt_features: pl.DataFrame,
    start: date,
    end: date,
    cfg: MatrixConfig = MatrixConfig(),
    extra: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """trade_date, ticker, then the sorted feature columns (Float32, no NaN/inf) for the days in [start, end].

    The row universe is price_features' ticker-days in [start, end] (a name without a price has no label to
    learn from). ``alt_features`` must cover ``matrix_lookback_sessions(cfg)`` sessions before ``start`` for the
    first days' changes and z-scores to be complete; earlier values only feed those, never appear as rows.
    ``extra`` (trade_date, ticker, emb_000..) adds more numeric features (the fused embeddings), source ``fused``.
    """
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    price_cols = _price_columns(price_features, cfg)
    in_window = pl.col("trade_date").is_between(start, end)
    base = (
        price_features.filter(in_window)
        .select(*KEYS, *price_cols)
        .with_columns(pl.col(price_cols).cast(pl.Float64))
        .with_columns(pl.col(price_cols).fill_nan(None))
    )
    sources: dict[str, list[str]] = {PRICE_SOURCE: price_cols}

    if alt_features.height and alt_value_columns(alt_features):
        alt, by_source = alt_history_features(alt_features, cfg)
        alt_cols = [c for cols in by_source.values() for c in cols]
        base = base.join(alt.filter(in_window).select(*KEYS, *alt_cols), on=list(KEYS), how="left")
        sources.update(by_source)
    if extra is not None:
        extra_cols = [c for c, t in extra.schema.items() if c not in KEYS and t.is_numeric()]
        clash = set(extra_cols) & set(base.columns)
        if clash:
            raise ValueError(f"extra columns clash with existing features: {sorted(clash)}")
        ex = (
            extra.filter(in_window)
            .select(*KEYS, *extra_cols)
            .with_columns(pl.col(extra_cols).cast(pl.Float64))
        )
        base = base.join(ex, on=list(KEYS), how="left")
        sources[FUSED_SOURCE] = extra_cols

    value_cols = [c for cols in sources.values() for c in cols]
    # inf (e.g. a ratio over zero) is as uninformative as NaN: null it before ranking
    base = base.with_columns([pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in value_cols])
    # indicator per source: every level column of the source null on that ticker-day
    missing = []
    for src, cols in sources.items():
        levels = [c for c in cols if "__" not in c] or cols
        if levels:
            missing.append(
                pl.all_horizontal([pl.col(c).is_null() for c in levels])
                .cast(pl.Float32)
                .alias(f"{src}{MISSING_SUFFIX}")
            )
    out = base.with_columns(missing).with_columns(_normalise(value_cols, cfg.normalise))
    out = out.with_columns(pl.col(value_cols).fill_null(0.0).cast(pl.Float32))
    feats = sorted(c for c in out.columns if c not in KEYS)
    return out.select(*KEYS, *feats).sort(*KEYS)


def publication_violations(
    alt_features: pl.DataFrame, cutoffs: pl.DataFrame | Sequence[date]
) -> dict[str, int]:
    """Per source, the ticker-days whose value was published after the day's cut-off (all zero when honest).

    ``cutoffs`` is ``session_cutoffs(sessions)`` (trade_date, cutoff UTC) or the sessions themselves. Also
    returns ``total``.
    """
    if not isinstance(cutoffs, pl.DataFrame):
        cutoffs = session_cutoffs(list(cutoffs))
    with_cut = alt_features.join(
        cutoffs.select("trade_date", pl.col("cutoff").cast(TS)), on="trade_date", how="left"
    )
    counts = {}
    for src in ALT_SOURCES:
        col = f"{src}_published_at"
        if col in with_cut.columns:
            late = with_cut.filter(pl.col(col).cast(TS) > pl.col("cutoff")).height
            counts[src] = int(late)
    counts["total"] = sum(counts.values())
    return counts
