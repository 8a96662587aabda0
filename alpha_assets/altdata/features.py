"""features.alt_features: every alt-data source joined onto ticker-days, point in time.

Trading day D's row holds, per source, the latest value whose ``published_at`` is at or before D's decision
cut-off (22:00 UTC), the time it was published and its age in days. A value older than the source's maximum age
reads null. Values are never forward-filled past their publication: a call made after D's close is first
visible on D+1.

A fund without any alt-data vendor (no raw alt table holds a row, ever) gets an empty but typed table: the feature
matrix is then built from the price features alone, rather than from columns that are null on every day. Once
any vendor has delivered, every day has its rows and a source that goes quiet reads null (a stable schema for
the models trained on it).
"""

from datetime import timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MetadataValue,
    Output,
    asset,
)

from alpha_assets.automation import downstream
from alpha_assets.keys import (
    FEATURES_ALT_FEATURES,
    RAW_CALL_SENTIMENT,
    RAW_FILING_FEATURES,
    RAW_OIL_TANK_LEVELS,
    RAW_PARKING_LOT_COUNTS,
    RAW_UNIVERSE,
    RAW_WEB_SIGNALS,
)
from alpha_assets.lib.altdata.point_in_time import MAX_AGE_DAYS, TS, point_in_time, session_cutoffs
from partitions import trading_days, window_dates
from partitions.calendar import sessions_between
from resources.lake_resource import DeltaLakeResource

# (prefix in the feature table, raw table's asset key, source name for lags/ages, value columns)
SOURCES: list[tuple[str, AssetKey, str, list[str]]] = [
    ("parking", RAW_PARKING_LOT_COUNTS, "parking", ["cars_per_store", "total_cars"]),
    ("tanks", RAW_OIL_TANK_LEVELS, "tanks", ["mean_fill_ratio", "oil_m3", "utilisation"]),
    (
        "call",
        RAW_CALL_SENTIMENT,
        "transcripts",
        ["call_sentiment", "management_sentiment", "prepared_sentiment", "qa_sentiment"],
    ),
    (
        "filing",
        RAW_FILING_FEATURES,
        "filings",
        [
            "risk_factors_sentiment",
            "mdna_sentiment",
            "risk_factors_words_change",
            "document_similarity",
            "mdna_fog",
        ],
    ),
    ("web", RAW_WEB_SIGNALS, "web", ["web_price_change", "mean_log_price", "out_of_stock_share"]),
]


class AltFeaturesConfig(Config):
    max_age_days: dict[str, float] = {k: float(v) for k, v in MAX_AGE_DAYS.items()}


def alt_sources_delivered(lake) -> list[str]:
    """The alt sources (feature prefixes) whose raw table holds at least one row, at any date."""
    return [
        p
        for p, table, _, _ in SOURCES
        if lake.exists(*table.path) and lake.scan(*table.path).select("ticker").head(1).collect().height
    ]


def alt_feature_frame(lake, start, end, max_age_days: dict[str, float]) -> tuple[pl.DataFrame, dict]:
    """The alt_features rows for sessions in [start, end] from the raw tables in ``lake`` (pure: no Dagster);
    no rows (every column typed) when no alt source has ever delivered."""
    sessions = sessions_between(start, end)
    no_vendor = not alt_sources_delivered(lake)
    grid = None
    if lake.exists("raw", "universe"):
        grid = lake.read("raw", "universe", start, end, columns=["trade_date", "ticker"]).unique()
    frames, stats = [], {}
    for prefix, table, source, values in SOURCES:
        age = max_age_days.get(source, MAX_AGE_DAYS[source])
        # raw column -> name after the source prefix (call_sentiment -> call_sentiment, mdna_fog -> filing_mdna_fog)
        short = {v: v.removeprefix(f"{prefix}_") for v in values}
        cols = [f"{prefix}_{x}" for x in short.values()]
        if lake.exists(*table.path):
            lo = start - timedelta(days=int(age) + 2)
            events = lake.read(*table.path, lo, end, columns=["ticker", "published_at", *values])
        else:
            events = pl.DataFrame(
                schema={"ticker": pl.String, "published_at": TS, **dict.fromkeys(values, pl.Float64)}
            )
        events = events.cast({v: pl.Float64 for v in values}).rename(short)
        frame = point_in_time(sessions, None, events, list(short.values()), prefix, age)
        frames.append(frame)
        stats[prefix] = {
            "events_read": events.height,
            "ticker_days_filled": frame[cols[0]].is_not_null().sum(),
        }
    keys = pl.concat([f.select("trade_date", "ticker") for f in frames]).unique()
    if grid is not None:
        keys = grid if grid.height else keys
    if no_vendor:  # no alt-data vendor at all: the typed columns, no rows
        keys = keys.clear()
    out = keys
    for f in frames:
        out = out.join(f, on=["trade_date", "ticker"], how="left")
    return out.sort("trade_date", "ticker"), stats


@asset(
    key=FEATURES_ALT_FEATURES,
    deps=[table for _, table, _, _ in SOURCES] + [RAW_UNIVERSE],
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="features",
    kinds={"polars", "delta"},
    automation_condition=downstream,
    check_specs=[
        AssetCheckSpec(
            "alt_features_point_in_time",
            asset=FEATURES_ALT_FEATURES,
            blocking=True,
            description="every value was published at or before its day's cut-off",
        ),
    ],
)
def alt_features(context: AssetExecutionContext, config: AltFeaturesConfig, lake_store: DeltaLakeResource):
    """Parking, tank, call, filing and web values per ticker-day as of 22:00 UTC, with publication time and age
    (``<source>_published_at``, ``<source>_age_days``) per source."""
    start, end = window_dates(*context.partition_time_window)
    df, stats = alt_feature_frame(lake_store.lake, start, end, config.max_age_days)
    with_cut = df.join(session_cutoffs(sessions_between(start, end)), on="trade_date", how="left")
    late = sum(with_cut.filter(pl.col(f"{p}_published_at") > pl.col("cutoff")).height for p, *_ in SOURCES)
    delivered = [p for p, s in stats.items() if s["ticker_days_filled"]]
    if df.height == 0:
        context.log.info(
            "no alt-data vendor has delivered yet: features.alt_features holds no rows and the "
            "feature matrix uses the price features alone"
        )
    yield Output(
        df,
        metadata={
            "rows": df.height,
            "alt_sources": MetadataValue.json(delivered),
            **{f"{p}_filled": int(s["ticker_days_filled"]) for p, s in stats.items()},
        },
    )
    yield AssetCheckResult(
        check_name="alt_features_point_in_time",
        passed=late == 0,
        metadata={"values_published_after_cutoff": late},
    )
