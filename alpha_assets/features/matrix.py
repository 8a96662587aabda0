"""features.feature_matrix: the model-ready rows per ticker-day, and the blocking leakage check that guards them.

Price features + point-in-time alt features, alt values also against each name's own history, normalised across
names per day, with missing indicators and a neutral fill (``lib/features/matrix.py`` holds the maths). Before the
rows are written the asset proves they peek nowhere: every alt value was published by its day's cut-off, and no
feature tracks the next day's return implausibly well (a copy of tomorrow's return fails the run and nothing is
written). Alt features are also checked against the same day's return; price features are not, because the day's
close is known at the 22:00 UTC cut-off by construction (``ret_1`` *is* the same-day return).

Alt data is optional: a fund keeps trading when an alt vendor is down or absent. The asset reads
features.alt_features itself (its lookback window through the same partition mapping) so that a lake without
that table yet — a prices-only fund, or an automation run that got here first — builds the matrix from the price
features alone instead of failing; the output's ``alt_sources`` metadata names the alt sources the rows carry.
"""

from datetime import timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    BackfillPolicy,
    Config,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from alpha_assets.automation import downstream
from alpha_assets.lib.features.matrix import (
    MatrixConfig,
    build_feature_matrix,
    feature_columns,
    leakage_report,
    matrix_lookback_sessions,
    publication_violations,
    source_of,
)
from partitions import trading_days, window_dates
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource

FEATURE_MATRIX = AssetKey(["features", "feature_matrix"])
ALT_FEATURES = AssetKey(["features", "alt_features"])
alt_history = TimeWindowPartitionMapping(
    start_offset=-matrix_lookback_sessions(), end_offset=0, allow_nonexistent_upstream_partitions=True
)


class FeatureMatrixConfig(Config):
    normalise: str = "rank"  # "rank" or "robust_z"
    history_sessions: int = MatrixConfig.history_sessions
    # |mean daily rank IC| above this with the next day's return cannot be an honest daily feature (real alphas
    # are ~0.02-0.1); a copy of tomorrow's return scores ~1.
    max_abs_ic: float = 0.5
    # Below this many names a day's rank IC is too noisy for the test to mean anything.
    min_names_for_leakage_test: int = 20


def alt_window(lake, start, end) -> pl.DataFrame:
    """features.alt_features for [start, end] and the matrix's lookback before it; empty when the table does not
    exist yet (no alt vendor, or an automation run that reached the matrix first)."""
    if not lake.exists(*ALT_FEATURES.path):
        return pl.DataFrame()
    return lake.read(*ALT_FEATURES.path, shift_sessions(start, -matrix_lookback_sessions()), end)


def day_returns(lake, start, end) -> pl.DataFrame:
    """Same-day (close D-1 -> D) and next-day (close D -> D+1) returns per ticker-day, for the leakage test."""
    if not lake.exists("raw", "prices"):
        return pl.DataFrame()
    px = lake.read("raw", "prices", start - timedelta(days=10), end + timedelta(days=10),
                   columns=["trade_date", "ticker", "close"])  # fmt: skip
    px = px.unique(["trade_date", "ticker"]).sort("ticker", "trade_date")
    return px.with_columns(
        (pl.col("close") / pl.col("close").shift(1).over("ticker") - 1).alias("ret_same_day"),
        (pl.col("close").shift(-1).over("ticker") / pl.col("close") - 1).alias("ret_next_day"),
    ).filter(pl.col("trade_date").is_between(start, end))


@asset(
    key=FEATURE_MATRIX,
    ins={
        "price_features": AssetIn(key=AssetKey(["features", "price_features"])),
    },
    deps=[AssetDep(ALT_FEATURES, partition_mapping=alt_history)],
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="features",
    kinds={"polars", "delta"},
    automation_condition=downstream,
    check_specs=[
        AssetCheckSpec(
            "no_leakage",
            asset=FEATURE_MATRIX,
            blocking=True,
            description="every alt value published by its day's cut-off; no feature tracks the next day's "
            "return (or, for alt data, the same day's) implausibly well",
        )
    ],
)
def feature_matrix(context: AssetExecutionContext, config: FeatureMatrixConfig, price_features: pl.DataFrame,
                   lake_store: DeltaLakeResource):  # fmt: skip
    """One row per ticker-day: normalised price and alt features, alt changes and z-scores against each name's own
    history, ``<source>__missing`` indicators, neutral fill."""
    start, end = window_dates(*context.partition_time_window)
    alt_features = alt_window(lake_store.lake, start, end)
    if alt_features.height == 0:
        context.log.info(f"no alt-data rows for {start}..{end} (features.alt_features "
                         f"{'holds none' if alt_features.width else 'does not exist yet'}): the matrix is built "
                         "from the price features alone")  # fmt: skip
    if price_features.height == 0:
        raise Failure(
            f"features.price_features has no rows in {start}..{end}: materialize the price layer first "
            f"(alpha materialize --from {start} --to {end})"
        )
    cfg = MatrixConfig(history_sessions=config.history_sessions, normalise=config.normalise)
    matrix = build_feature_matrix(price_features, alt_features, start, end, cfg)
    in_window = (
        alt_features.filter(pl.col("trade_date").is_between(start, end)) if alt_features.height else None
    )
    late = (
        publication_violations(in_window, sessions_between(start, end))["total"]
        if in_window is not None
        else 0
    )
    returns = day_returns(lake_store.lake, start, end)
    names_per_day = matrix.group_by("trade_date").len()["len"].mean() if matrix.height else 0
    leaks: list[dict] = []
    if returns.height and names_per_day >= config.min_names_for_leakage_test:
        leaks = leakage_report(matrix, returns, max_abs_ic=config.max_abs_ic)
        # The day's close is known at the cut-off: a price feature may track the same day's return (ret_1 is it).
        leaks = [x for x in leaks if not (x["return"] == "ret_same_day" and source_of(x["feature"]) is None)]
    if late or leaks:
        what = "; ".join(f"{x['feature']} has mean IC {x['ic']:+.2f} with {x['return']}" for x in leaks[:5])
        raise Failure(
            description=f"features.feature_matrix {start}..{end} refused (nothing written): "
            + (f"{late} alt values published after their day's cut-off; " if late else "")
            + (f"look-ahead suspected: {what}" if leaks else ""),
            metadata={"late_values": late, "leaky_features": MetadataValue.json(leaks[:20])},
        )
    feats = feature_columns(matrix)
    alt_sources = sorted({src for c in feats if (src := source_of(c)) is not None})
    yield Output(matrix, metadata={
        "alt_sources": MetadataValue.json(alt_sources),
        "rows": matrix.height, "feature_columns": len(feats), "days": matrix["trade_date"].n_unique(),
        "names_per_day": float(names_per_day or 0),
        "missing_share": MetadataValue.json({c: round(float(matrix[c].mean()), 3) for c in feats
                                             if c.endswith("__missing")}),
    })  # fmt: skip
    yield AssetCheckResult(
        check_name="no_leakage",
        passed=True,
        metadata={"late_values": 0, "leakage_test": "run" if returns.height and names_per_day >=
                  config.min_names_for_leakage_test else f"skipped: fewer than "
                  f"{config.min_names_for_leakage_test} names per day or no prices"},
    )  # fmt: skip
