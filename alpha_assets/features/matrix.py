"""features.feature_matrix: the model-ready rows per ticker-day, and the blocking leakage check that guards them.

Price features + point-in-time alt features, alt values also against each name's own history, normalised across
names per day, with missing indicators and a neutral fill (``lib/features/matrix.py`` holds the maths). Before the
rows are written the asset proves they peek nowhere (``refuse_leaks``, shared with features.fused_embeddings): every
alt value was published by its day's cut-off, and the statistical leakage gate (``lib/features/leakage.py``) finds
no feature, and no in-window ridge on all of them, that predicts the forward returns the models may learn from
(1, 5 and 20 sessions; the training label is one of them) better than any honest signal could, given the window's
names and days. A refused window writes nothing and the failure names the column(s), the horizon and the statistic.
Alt features are also checked against the same day's return; price features are not, because the day's close is
known at the 22:00 UTC cut-off by construction (``ret_1`` *is* the same-day return). The gate reads raw/prices up
to 20 sessions after the window: it may see the future because it is a test; days whose future is not in the lake
yet skip those horizons, and the check's ``horizons_tested`` metadata says how many days each horizon covered.

Alt data is optional: a fund keeps trading when an alt vendor is down or absent. The asset reads
features.alt_features itself (its lookback window through the same partition mapping) so that a lake without
that table yet — a prices-only fund, or an automation run that got here first — builds the matrix from the price
features alone instead of failing; the output's ``alt_sources`` metadata names the alt sources the rows carry.
"""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from alpha_assets.automation import downstream
from alpha_assets.keys import (
    FEATURES_ALT_FEATURES,
    FEATURES_FEATURE_MATRIX,
    FEATURES_PRICE_FEATURES,
    RAW_PRICES,
)
from alpha_assets.lib.features.leakage import LeakageConfig, gate_returns, leakage_gate
from alpha_assets.lib.features.matrix import (
    MatrixConfig,
    build_feature_matrix,
    feature_columns,
    matrix_lookback_sessions,
    publication_violations,
    source_of,
)
from alpha_assets.lib.features.price_features import LABEL_HORIZONS
from alpha_assets.lib_config import config_of
from alpha_assets.models.common import TRAIN_LABEL
from partitions import trading_days, window_dates, window_overrun
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource

PRICE_COLUMNS = ("trade_date", "ticker", "open", "high", "low", "close", "volume")
alt_history = TimeWindowPartitionMapping(
    start_offset=-matrix_lookback_sessions(), end_offset=0, allow_nonexistent_upstream_partitions=True
)


class LeakageGateConfig(
    config_of(
        LeakageConfig, ("plausible_ic", "plausible_day_ic", "plausible_model_ic", "z"), rename={"z": "leak_z"}
    )
):
    """The statistical leakage gate's beliefs about what is plausible (lib/features/leakage.py derives each number):
    a feature is refused when its mean daily rank IC with a forward return is `leak_z` standard errors above
    `plausible_ic`, when too many of its days are `leak_z` standard errors above `plausible_day_ic`, or when a ridge
    on all features, fitted by day-blocks within the window, predicts out of fold `leak_z` standard errors above
    `plausible_model_ic`. A real market's honest daily IC rarely exceeds 0.10; a simulated world planted far above
    a fund's signal-to-noise (the demo's --signal-strength 0.25 and up) has honest features above it, and needs
    these raised (launchpad, or run config of features/feature_matrix and features/fused_embeddings)."""

    def leakage(self) -> LeakageConfig:
        return self.lib()


class FeatureMatrixConfig(LeakageGateConfig):
    normalise: str = "rank"  # "rank" or "robust_z"
    history_sessions: int = MatrixConfig.history_sessions


def alt_window(lake, start, end) -> pl.DataFrame:
    """features.alt_features for [start, end] and the matrix's lookback before it; empty when the table does not
    exist yet (no alt vendor, or an automation run that reached the matrix first)."""
    if not lake.exists(*FEATURES_ALT_FEATURES.path):
        return pl.DataFrame()
    return lake.read(*FEATURES_ALT_FEATURES.path, shift_sessions(start, -matrix_lookback_sessions()), end)


# What the leakage gate reads of raw/prices: a few sessions before the window to the longest label horizon after it.
GATE_BEFORE_SESSIONS = 5
gate_reach = TimeWindowPartitionMapping(
    start_offset=-GATE_BEFORE_SESSIONS,
    end_offset=max(LABEL_HORIZONS) + 1,
    allow_nonexistent_upstream_partitions=True,
)


def leakage_check(asset, what: str) -> AssetCheckSpec:
    """The blocking ``no_leakage`` check of an asset gated by ``refuse_leaks``. Its read of raw/prices (up to 21
    sessions after the window) is declared on the check, not on the asset: the rows themselves do not depend on
    those prices, so a new day's prices must not make the last 21 days' rows stale for the automation."""
    return AssetCheckSpec(
        "no_leakage",
        asset=asset,
        blocking=True,
        additional_deps=[AssetDep(RAW_PRICES, partition_mapping=gate_reach)],
        description=f"{what}: none (and no in-window ridge on all of them) predicts the 1/5/20-session forward "
        "return beyond chance and beyond any honest signal",
    )


def gate_prices(lake, start, end) -> pl.DataFrame:
    """raw/prices from a few sessions before ``start`` to the longest label horizon after ``end`` (as far as the lake
    knows it; ``gate_reach``): the leakage gate's returns. Reading the future is allowed here because the gate is a
    test."""
    if not lake.exists(*RAW_PRICES.path):
        return pl.DataFrame()
    hi = shift_sessions(end, gate_reach.end_offset)
    return lake.read(
        *RAW_PRICES.path,
        shift_sessions(start, gate_reach.start_offset),
        hi,
        columns=list(PRICE_COLUMNS),
    )


def refuse_leaks(
    asset: str,
    frame: pl.DataFrame,
    features: list[str],
    lake,
    start,
    end,
    cfg: LeakageConfig = LeakageConfig(),
    same_day_features: list[str] | None = None,
    late: int = 0,
) -> dict:
    """Run the statistical leakage gate on ``frame`` before it is written; raise a ``Failure`` naming the column(s),
    the horizon and the statistic when it refuses (or when ``late`` alt values were published after their cut-off).
    Returns the check's metadata when it passes."""
    prices = gate_prices(lake, start, end)
    returns = gate_returns(prices, start, end) if prices.height else pl.DataFrame()
    result = None
    if returns.height and frame.height:
        result = leakage_gate(frame, returns, features, cfg, same_day_features=same_day_features or ())
    coverage = result.coverage if result else {"all": "skipped: raw/prices holds no prices for the window"}
    metadata = {
        "late_values": late,
        "training_label": TRAIN_LABEL,
        "horizons_tested": MetadataValue.json(coverage),
        "model_check": MetadataValue.json(result.model if result else {}),
        "thresholds": MetadataValue.json(
            {
                "plausible_ic": cfg.plausible_ic,
                "plausible_day_ic": cfg.plausible_day_ic,
                "plausible_model_ic": cfg.plausible_model_ic,
                "z": cfg.z,
            }
        ),
    }
    if late or (result and not result.passed):
        raise Failure(
            description=f"{asset} {start}..{end} refused (nothing written): "
            + (f"{late} alt values published after their day's cut-off; " if late else "")
            + (f"look-ahead suspected: {result.message()}" if result and not result.passed else ""),
            metadata={
                **metadata,
                "leaks": MetadataValue.json(_jsonable(result.findings[:20]) if result else []),
            },
        )
    return metadata


def _jsonable(findings: list[dict]) -> list[dict]:
    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items()} for f in findings]


@asset(
    key=FEATURES_FEATURE_MATRIX,
    ins={
        "price_features": AssetIn(key=FEATURES_PRICE_FEATURES),
    },
    deps=[AssetDep(FEATURES_ALT_FEATURES, partition_mapping=alt_history)],
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="features",
    kinds={"polars", "delta"},
    automation_condition=downstream,
    check_specs=[
        leakage_check(
            FEATURES_FEATURE_MATRIX,
            "every alt value published by its day's cut-off; the features (alt data: also against the same "
            "day's return)",
        )
    ],
)
def feature_matrix(
    context: AssetExecutionContext,
    config: FeatureMatrixConfig,
    price_features: pl.DataFrame,
    lake_store: DeltaLakeResource,
):
    """One row per ticker-day: normalised price and alt features, alt changes and z-scores against each name's own
    history, ``<source>__missing`` indicators, neutral fill."""
    # alt_history (the alt values read before the window) is built from the default history_sessions
    if why := window_overrun(
        "history_sessions",
        matrix_lookback_sessions(MatrixConfig(history_sessions=config.history_sessions)),
        matrix_lookback_sessions(),
        "features/alt_features, features.matrix.alt_history",
    ):
        raise Failure(why)
    start, end = window_dates(*context.partition_time_window)
    alt_features = alt_window(lake_store.lake, start, end)
    if alt_features.height == 0:
        context.log.info(
            f"no alt-data rows for {start}..{end} (features.alt_features "
            f"{'holds none' if alt_features.width else 'does not exist yet'}): the matrix is built "
            "from the price features alone"
        )
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
    feats = feature_columns(matrix)
    # The day's close is known at the cut-off: a price feature may track the same day's return (ret_1 is it).
    check = refuse_leaks(
        "features.feature_matrix",
        matrix,
        feats,
        lake_store.lake,
        start,
        end,
        config.leakage(),
        same_day_features=[c for c in feats if source_of(c) is not None],
        late=late,
    )
    names_per_day = matrix.group_by("trade_date").len()["len"].mean() if matrix.height else 0
    alt_sources = sorted({src for c in feats if (src := source_of(c)) is not None})
    yield Output(
        matrix,
        metadata={
            "alt_sources": MetadataValue.json(alt_sources),
            "rows": matrix.height,
            "feature_columns": len(feats),
            "days": matrix["trade_date"].n_unique(),
            "names_per_day": float(names_per_day or 0),
            "missing_share": MetadataValue.json(
                {c: round(float(matrix[c].mean()), 3) for c in feats if c.endswith("__missing")}
            ),
        },
    )
    yield AssetCheckResult(check_name="no_leakage", passed=True, metadata=check)
