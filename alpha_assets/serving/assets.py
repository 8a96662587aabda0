"""Serving assets around the dbt marts: the pipeline log they read and the publication to the serving store.

``monitoring/pipeline_runs`` reads the Dagster instance (which run last materialized each asset's partition, its
step duration, rows written, when) and the quarantine folder, and writes a Delta table the ``pipeline_kpis`` mart
reads — dbt cannot reach the instance itself. ``serving/published`` copies each day of the marts to the serving
store (PostgreSQL when ALPHA_SERVING_URL is set, else SQLite under ALPHA_HOME) in one transaction per day.
"""

import re
from datetime import date
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from alpha_assets.keys import (
    MONITORING_PIPELINE_RUNS,
    RAW_CALL_SENTIMENT,
    RAW_FILING_FEATURES,
    RAW_OIL_TANK_LEVELS,
    RAW_PARKING_LOT_COUNTS,
    RAW_PRICES,
    RAW_UNIVERSE,
    RAW_WEB_PRODUCTS,
    SERVING_PUBLISHED,
)
from alpha_assets.serving import marts_db_path
from alpha_assets.serving.marts import MART_KEYS, MARTS
from partitions import model_days, window_dates
from partitions.calendar import sessions_between
from resources.io_manager import DeltaIOManager

# Landing prefix -> the asset its files feed (quarantined files are counted against that asset).
QUARANTINE_ASSETS = {
    "reference": RAW_UNIVERSE,
    "prices_a": RAW_PRICES,
    "prices_b": RAW_PRICES,
    "parking": RAW_PARKING_LOT_COUNTS,
    "tanks": RAW_OIL_TANK_LEVELS,
    "transcripts": RAW_CALL_SENTIMENT,
    "filings": RAW_FILING_FEATURES,
    "web": RAW_WEB_PRODUCTS,
}
_DATE_IN_PATH = re.compile(r"(\d{4}-\d{2}-\d{2})")

PIPELINE_RUNS_SCHEMA = {
    "trade_date": pl.Date,
    "asset": pl.Utf8,
    "run_id": pl.Utf8,
    "run_seconds": pl.Float64,
    "rows_written": pl.Int64,
    "materialized_at": pl.Datetime("us", "UTC"),
    "quarantined_files": pl.Int64,
}


def quarantined_per_day(quarantine_root: Path, days: set[date]) -> dict[tuple[date, str], int]:
    """Files in quarantine per (trading date in the file's path, asset); reason files are not counted."""
    counts: dict[tuple[date, str], int] = {}
    if not quarantine_root.is_dir():
        return counts
    for prefix_dir in (p for p in quarantine_root.iterdir() if p.is_dir()):
        fed = QUARANTINE_ASSETS.get(prefix_dir.name)
        asset_name = fed.to_user_string() if fed else f"landing/{prefix_dir.name}"
        for f in prefix_dir.rglob("*"):
            if not f.is_file() or f.name.endswith(".reason.json"):
                continue
            m = _DATE_IN_PATH.search(str(f.relative_to(prefix_dir)))
            if not m:
                continue
            try:
                day = date.fromisoformat(m.group(1))
            except ValueError:
                continue
            if day in days:
                counts[(day, asset_name)] = counts.get((day, asset_name), 0) + 1
    return counts


def partition_rows(lake, key: AssetKey) -> dict[date, int]:
    """Rows per trade_date of the asset's Delta table, from the table's log (each file's partition and record
    count: no data read). Empty when the table does not exist or is not partitioned by trade_date."""
    import pyarrow as pa

    layer, name = DeltaIOManager._table(key)  # where the IO manager wrote the asset
    if lake is None or not lake.exists(layer, name):
        return {}
    files = pl.from_arrow(pa.table(lake.table(layer, name).get_add_actions(flatten=True)))
    if "partition.trade_date" not in files.columns or files["num_records"].null_count():
        return {}
    per_day = files.group_by("partition.trade_date").agg(pl.col("num_records").sum())
    return dict(zip(per_day["partition.trade_date"].to_list(), per_day["num_records"].to_list(), strict=True))


def _run_sessions(instance, run_id: str) -> int:
    """How many sessions the run materialized: its partition range's, else 1 (a one-partition run)."""
    run = instance.get_run_by_id(run_id)
    tags = run.tags if run is not None else {}
    lo, hi = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if not (lo and hi):
        return 1
    return max(1, len(sessions_between(date.fromisoformat(lo), date.fromisoformat(hi))))


def pipeline_log(instance, days: list[date], quarantine_root: Path | None, lake=None) -> pl.DataFrame:
    """One row per (day, asset) materialized for that day: the last run's step duration, rows, time.

    ``run_seconds`` is the wall time of the step that wrote the partition, from Dagster's step stats (its start
    and end in the run's event log). A run over a range of sessions (a single-run backfill, ``alpha materialize
    --from --to``) records one event per session: each of its days shows the whole step's seconds (what the step
    took, not a share of it), and its ``rows_written`` the day's rows in the table (from the Delta log of
    ``lake``; None without one), not the run's total."""
    keys = {d.isoformat(): d for d in days}
    step_seconds: dict[tuple[str, str], float] = {}
    run_sessions: dict[str, int] = {}
    rows = []
    for key in instance.get_asset_keys():
        if key.path[0] in ("marts", "serving") or key == MONITORING_PIPELINE_RUNS:
            continue
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=list(keys)), limit=len(keys) * 20
        )
        seen: set[str] = set()
        table_rows: dict[date, int] | None = None
        for rec in result.records:  # newest first: the first event of a partition is the last run's
            entry = rec.event_log_entry
            mat = entry.asset_materialization
            if mat is None or mat.partition not in keys or mat.partition in seen:
                continue
            seen.add(mat.partition)
            if entry.run_id not in run_sessions:
                run_sessions[entry.run_id] = _run_sessions(instance, entry.run_id)
            sessions = run_sessions[entry.run_id]
            run_step = (entry.run_id, entry.step_key or "")
            if run_step not in step_seconds:
                stats = instance.get_run_step_stats(
                    entry.run_id, step_keys=[entry.step_key] if entry.step_key else None
                )
                durations = [s.end_time - s.start_time for s in stats if s.start_time and s.end_time]
                step_seconds[run_step] = float(max(durations)) if durations else None
            rows_meta = mat.metadata.get("rows")
            if sessions == 1:
                written = int(rows_meta.value) if rows_meta is not None else None
            else:
                if table_rows is None:
                    table_rows = partition_rows(lake, key)
                written = table_rows.get(keys[mat.partition])
            rows.append(
                {
                    "trade_date": keys[mat.partition],
                    "asset": "/".join(key.path),
                    "run_id": entry.run_id,
                    "run_seconds": step_seconds[run_step],
                    "rows_written": written,
                    "materialized_at": entry.timestamp,
                    "quarantined_files": 0,
                }
            )
    frame = pl.DataFrame(rows, schema={**PIPELINE_RUNS_SCHEMA, "materialized_at": pl.Float64})
    frame = frame.with_columns(
        (pl.col("materialized_at") * 1e6).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    )
    if quarantine_root is not None:
        counts = quarantined_per_day(quarantine_root, set(days))
        if counts:
            q = pl.DataFrame(
                [{"trade_date": d, "asset": a, "q": n} for (d, a), n in counts.items()],
                schema={"trade_date": pl.Date, "asset": pl.Utf8, "q": pl.Int64},
            )
            frame = (
                frame.join(q, on=["trade_date", "asset"], how="full", coalesce=True)
                .with_columns(pl.col("q").fill_null(0).alias("quarantined_files"))
                .drop("q")
            )
    return frame.select(list(PIPELINE_RUNS_SCHEMA)).cast(PIPELINE_RUNS_SCHEMA).sort("trade_date", "asset")


@asset(
    key=MONITORING_PIPELINE_RUNS,
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="serving",
    kinds={"polars", "delta"},
    required_resource_keys={"landing", "lake_store"},
)
def pipeline_runs(context: AssetExecutionContext) -> pl.DataFrame:
    """Per asset and trading day: the run that last materialized it (step seconds, rows written, time) and the
    files quarantined for that day, read from the Dagster instance and the quarantine folder."""
    start, end = window_dates(*context.partition_time_window)
    days = sessions_between(start, end)
    root = getattr(context.resources.landing, "quarantine_root", None)
    # An S3 landing keeps its quarantine in the bucket: not counted here (0), see README.
    frame = pipeline_log(
        context.instance, days, Path(root) if root else None, context.resources.lake_store.lake
    )
    context.add_output_metadata({"assets": frame["asset"].n_unique(), "days": len(days)})
    return frame


def mart_rows(marts_db: Path, day: date) -> dict[str, pl.DataFrame]:
    """Every mart's rows for ``day`` from the marts file (opened read-only)."""
    import duckdb

    from alpha_assets.serving.store import SERVING_TABLES

    con = duckdb.connect(str(marts_db), read_only=True)
    try:
        out = {}
        for name in MARTS:
            cols = ", ".join(f'"{c}"' for c, _ in SERVING_TABLES[name])
            arrow = con.execute(
                f"SELECT {cols} FROM main.{name} WHERE trade_date = ?", [day]
            ).to_arrow_table()
            out[name] = pl.from_arrow(arrow)
        return out
    finally:
        con.close()


def publish_window(marts_db: Path, url: str, days: list[date]) -> dict[str, int]:
    """Publish each day of the window (one transaction per day); returns rows per table over the window."""
    from alpha_assets.serving.store import create_schema, publish_day, serving_engine

    engine = serving_engine(url)
    create_schema(engine)
    totals: dict[str, int] = {}
    for day in days:
        for table, n in publish_day(engine, day, mart_rows(marts_db, day)).items():
            totals[table] = totals.get(table, 0) + n
    return totals


@asset(
    key=SERVING_PUBLISHED,
    deps=MART_KEYS,
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="serving",
    kinds={"duckdb", "postgres", "sqlite"},
)
def published(context: AssetExecutionContext) -> MaterializeResult:
    """The window's marts and book copied to the serving store, one transaction per day (a re-run replaces the
    day; a failure keeps what was published before)."""
    from alpha_assets.serving.store import redacted_url, serving_url

    start, end = window_dates(*context.partition_time_window)
    days = sessions_between(start, end)
    url = serving_url()
    totals = publish_window(marts_db_path(), url, days)
    return MaterializeResult(
        metadata={
            "serving_url": redacted_url(url),
            "days": len(days),
            **{f"rows_{t}": MetadataValue.int(n) for t, n in sorted(totals.items())},
        }
    )


SERVING_ASSETS = [pipeline_runs, published]
