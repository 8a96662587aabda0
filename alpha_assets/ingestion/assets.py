"""raw.universe, raw.prices and raw.price_reconciliation."""

from datetime import date, datetime, timezone

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    BackfillPolicy,
    Config,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from alpha_assets.intake import Intake, keep_table_rows
from alpha_assets.lib.ingestion.prices import PRICES_SCHEMA, DayInputs, choose_day
from alpha_assets.lib.ingestion.vendor_files import (
    VendorFileError,
    is_late,
    parse_provider_a,
    parse_provider_b,
    parse_universe,
)
from partitions import trading_days, window_dates
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource
from resources.landing import VendorLanding

PROVIDER_A, PROVIDER_B, REFERENCE = "prices_a", "prices_b", "reference"


class PriceIngestionConfig(Config):
    reconciliation_tolerance: float = 0.005  # relative difference above which A and B disagree
    max_disagreement_share: float = 0.01  # check warns above this share of rows


def _today() -> date:
    return datetime.now(timezone.utc).date()


@asset(
    key=AssetKey(["raw", "universe"]),
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="raw",
    kinds={"polars", "delta"},
    check_specs=[AssetCheckSpec("universe_not_empty", asset=AssetKey(["raw", "universe"]))],
)
def universe(context: AssetExecutionContext, landing: VendorLanding, lake_store: DeltaLakeResource):
    """Point-in-time universe: the reference vendor's daily snapshot (sector, country, ADV).

    A missing or bad snapshot falls back to the latest earlier good one (``snapshot_date`` says which)."""
    start, end = window_dates(*context.partition_time_window)
    intake = Intake(landing, context.log)
    files = {d: f.name for d, f in intake.by_date(REFERENCE, start, end).items()}
    frames, carried = [], []
    previous: pl.DataFrame | None = None
    lake = lake_store.lake
    existing: dict[date, pl.DataFrame] = {}
    if lake.exists("raw", "universe"):
        have = lake.read("raw", "universe", start, end)
        existing = {
            d: have.filter(pl.col("trade_date") == d).drop("trade_date")
            for d in have["trade_date"].unique().to_list()
        }
        prior = lake.read("raw", "universe", shift_sessions(start, -10), shift_sessions(start, -1))
        if prior.height:
            last = prior["trade_date"].max()
            previous = (
                prior.filter(pl.col("trade_date") == last)
                .drop("trade_date", "snapshot_date")
                .with_columns(pl.lit(last).alias("snapshot_date"))
            )
    for d in sessions_between(start, end):
        snap = None
        if d in files:
            try:
                snap = parse_universe(files[d], intake.read_bytes(REFERENCE, files[d]), _today())
                snap = snap.drop("trade_date").with_columns(pl.lit(d).alias("snapshot_date"))
            except VendorFileError as e:
                intake.quarantine(REFERENCE, files[d], e.reason)
        if snap is None and d in existing:  # the table's own snapshot for the day beats carrying one forward
            snap = existing[d]
        if snap is None and previous is not None:
            snap, _ = previous, carried.append(d.isoformat())
        if snap is None:
            continue
        previous = snap
        frames.append(snap.with_columns(pl.lit(d).alias("trade_date")))
    schema = {"ticker": pl.Utf8, "name": pl.Utf8, "sector": pl.Utf8, "country": pl.Utf8, "adv_usd": pl.Float64,
              "shares_outstanding": pl.Float64, "snapshot_date": pl.Date, "trade_date": pl.Date}  # fmt: skip
    df = pl.concat(frames).cast(schema) if frames else pl.DataFrame(schema=schema)
    df = df.select("trade_date", *[c for c in schema if c != "trade_date"])
    yield Output(df, metadata={"rows": df.height, "days_carried_forward": MetadataValue.json(carried),
                               **intake.metadata()})  # fmt: skip
    yield AssetCheckResult(
        check_name="universe_not_empty", passed=df.height > 0 or not sessions_between(start, end),
        metadata={"rows": df.height},
    )  # fmt: skip


@multi_asset(
    outs={
        "prices": AssetOut(
            key=AssetKey(["raw", "prices"]),
            metadata={"partition_expr": "trade_date"},
            kinds={"polars", "delta"},
        ),
        "price_reconciliation": AssetOut(
            key=AssetKey(["raw", "price_reconciliation"]),
            metadata={"partition_expr": "trade_date"},
            kinds={"polars", "delta"},
        ),
    },  # fmt: skip
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="raw",
    check_specs=[
        AssetCheckSpec(
            "every_session_has_prices",
            asset=AssetKey(["raw", "prices"]),
            description="each trading day in the window has prices from some provider",
        ),
        AssetCheckSpec(
            "prices_valid",
            asset=AssetKey(["raw", "prices"]),
            description="positive finite prices, one row per ticker-day",
        ),
        AssetCheckSpec(
            "providers_agree",
            asset=AssetKey(["raw", "price_reconciliation"]),
            description="disagreements above tolerance stay under the configured share of rows",
        ),
    ],  # fmt: skip
)
def prices(context: AssetExecutionContext, config: PriceIngestionConfig, landing: VendorLanding,
           lake_store: DeltaLakeResource):  # fmt: skip
    """Daily OHLCV from provider A, failing over to provider B when A is missing, late or corrupt.

    Each row records its ``source``; bad files are quarantined with a reason; a day with no usable file keeps the
    rows the table already had for it (nothing is lost)."""
    start, end = window_dates(*context.partition_time_window)
    intake = Intake(landing, context.log)
    files_a = {d: f.name for d, f in intake.by_date(PROVIDER_A, start, end).items()}
    files_b = {d: f.name for d, f in intake.by_date(PROVIDER_B, start, end).items()}
    today = _today()
    day_rows, recon_rows, failovers, missing, read_days = [], [], [], [], []
    for d in sessions_between(start, end):
        inp = DayInputs(d)
        if d in files_a:
            try:
                inp.a = parse_provider_a(files_a[d], intake.read_bytes(PROVIDER_A, files_a[d]), today)
                inp.a_late = is_late(inp.a, shift_sessions(d, 1))
            except VendorFileError as e:
                inp.a_error = f"corrupt file {files_a[d]} ({e.reason})"
                intake.quarantine(PROVIDER_A, files_a[d], e.reason)
        if d in files_b:
            try:
                inp.b = parse_provider_b(files_b[d], intake.read_bytes(PROVIDER_B, files_b[d]), today)
            except VendorFileError as e:
                inp.b_error = f"corrupt file {files_b[d]} ({e.reason})"
                intake.quarantine(PROVIDER_B, files_b[d], e.reason)
        choice = choose_day(inp, config.reconciliation_tolerance)
        if choice.source is None:
            missing.append({"trade_date": d.isoformat(), "reason": choice.reason})
            context.log.warning(f"no usable prices for {d}: {choice.reason}")
            continue
        if choice.source != "A":
            failovers.append({"trade_date": d.isoformat(), "source": choice.source, "reason": choice.reason})
        day_rows.append(choice.rows)
        read_days.append(d)
        recon_rows.append(choice.reconciliation)
    df = pl.concat(day_rows) if day_rows else pl.DataFrame(schema=PRICES_SCHEMA)
    # Days we cannot read now keep the rows the table already holds.
    df, kept = keep_table_rows(lake_store.lake, "raw", "prices", df, start, end, on=["trade_date"])
    if kept:
        context.log.warning(f"raw.prices: kept {kept} existing row(s) for day(s) without a usable file now")
    df = df.sort("trade_date", "ticker")
    recon = pl.concat(recon_rows) if recon_rows else choose_day(DayInputs(start)).reconciliation
    recon, _ = keep_table_rows(lake_store.lake, "raw", "price_reconciliation", recon, start, end, on=["trade_date"],
                               covered=pl.DataFrame({"trade_date": read_days}, schema={"trade_date": pl.Date}))  # fmt: skip
    yield Output(df, output_name="prices", metadata={
        "rows": df.height, "failovers": len(failovers), "failover_days": MetadataValue.json(failovers),
        "missing_days": MetadataValue.json(missing), "rows_kept_from_table": kept, **intake.metadata(),
        "sources": MetadataValue.json(df.group_by("source").len().sort("source").to_dicts()),
    })  # fmt: skip
    yield Output(recon, output_name="price_reconciliation", metadata={
        "disagreements": recon.height, "source_fingerprints": intake.metadata()["source_fingerprints"],
    })  # fmt: skip
    yield AssetCheckResult(
        check_name="every_session_has_prices", asset_key=AssetKey(["raw", "prices"]), passed=not missing,
        severity=AssetCheckSeverity.WARN, metadata={"missing_days": MetadataValue.json(missing)},
    )  # fmt: skip
    bad = df.filter((pl.col("close") <= 0) | pl.col("close").is_nan()).height
    dups = df.height - df.select("trade_date", "ticker").unique().height
    yield AssetCheckResult(
        check_name="prices_valid", asset_key=AssetKey(["raw", "prices"]), passed=bad == 0 and dups == 0,
        metadata={"bad_prices": bad, "duplicates": dups},
    )  # fmt: skip
    share = recon.height / max(df.height, 1)
    yield AssetCheckResult(
        check_name="providers_agree", asset_key=AssetKey(["raw", "price_reconciliation"]),
        passed=share <= config.max_disagreement_share, severity=AssetCheckSeverity.WARN,
        metadata={"disagreements": recon.height, "share_of_rows": round(share, 6)},
    )  # fmt: skip
