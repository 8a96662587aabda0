"""raw.universe, raw.prices and raw.price_reconciliation."""

from datetime import date, datetime, timezone

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    BackfillPolicy,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from alpha_assets.intake import Intake, NotReadYet, keep_table_rows
from alpha_assets.keys import RAW_PRICE_RECONCILIATION, RAW_PRICES, RAW_UNIVERSE
from alpha_assets.lib.ingestion.checks import contradicted_rows, price_problems
from alpha_assets.lib.ingestion.contracts import completeness
from alpha_assets.lib.ingestion.deliveries import split_deliveries
from alpha_assets.lib.ingestion.prices import (
    BLOCK_TOLERANCE,
    HISTORY_RETURNS,
    PRICES_SCHEMA,
    DayInputs,
    History,
    choose_day,
)
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
    key=RAW_UNIVERSE,
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="raw",
    kinds={"polars", "delta"},
    check_specs=[AssetCheckSpec("universe_not_empty", asset=RAW_UNIVERSE)],
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
            except NotReadYet:
                pass  # still being written: the day keeps its snapshot now, the sensor re-runs it when complete
            except VendorFileError as e:
                intake.quarantine(REFERENCE, files[d], e.reason, e.details())
        if snap is None and d in existing:  # the table's own snapshot for the day beats carrying one forward
            snap = existing[d]
        if snap is None and previous is not None:
            snap, _ = previous, carried.append(d.isoformat())
        if snap is None:
            continue
        previous = snap
        frames.append(snap.with_columns(pl.lit(d).alias("trade_date")))
    schema = {
        "ticker": pl.Utf8,
        "name": pl.Utf8,
        "sector": pl.Utf8,
        "country": pl.Utf8,
        "adv_usd": pl.Float64,
        "shares_outstanding": pl.Float64,
        "snapshot_date": pl.Date,
        "trade_date": pl.Date,
    }
    df = pl.concat(frames).cast(schema) if frames else pl.DataFrame(schema=schema)
    intake.add_partition_fingerprints(context, RAW_UNIVERSE)
    df = df.select("trade_date", *[c for c in schema if c != "trade_date"])
    yield Output(
        df,
        metadata={
            "rows": df.height,
            "days_carried_forward": MetadataValue.json(carried),
            **intake.metadata(),
        },
    )
    yield AssetCheckResult(
        check_name="universe_not_empty",
        passed=df.height > 0 or not sessions_between(start, end),
        metadata={"rows": df.height},
    )


@multi_asset(
    outs={
        "prices": AssetOut(
            key=RAW_PRICES,
            metadata={"partition_expr": "trade_date"},
            kinds={"polars", "delta"},
        ),
        "price_reconciliation": AssetOut(
            key=RAW_PRICE_RECONCILIATION,
            metadata={"partition_expr": "trade_date"},
            kinds={"polars", "delta"},
        ),
    },
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="raw",
    check_specs=[
        AssetCheckSpec(
            "every_session_has_prices",
            asset=RAW_PRICES,
            description="each trading day in the window has prices from some provider",
        ),
        AssetCheckSpec(
            "prices_valid",
            asset=RAW_PRICES,
            description="blocking: well-formed tickers, positive finite prices, one row per ticker-day (a window "
            "that breaks it fails the step and writes nothing)",
        ),
        AssetCheckSpec(
            "prices_plausible",
            asset=RAW_PRICES,
            description=f"blocking: no row the other provider contradicts beyond {BLOCK_TOLERANCE:.0%} is used "
            "(a window that breaks it fails the step and writes nothing)",
        ),
        AssetCheckSpec(
            "providers_agree",
            asset=RAW_PRICE_RECONCILIATION,
            description="disagreements above tolerance stay under the configured share of rows",
        ),
    ],
)
def prices(
    context: AssetExecutionContext,
    config: PriceIngestionConfig,
    landing: VendorLanding,
    lake_store: DeltaLakeResource,
):
    """Daily OHLCV from provider A, failing over to provider B **name by name** where A is missing, late, refused
    (its contract, completeness against the day's universe and B) or implausible (B disagrees and history sides
    with B, or a lone jump no provider corroborates).

    Each row records its ``source``; bad files are quarantined with every reason; a day or name with no usable
    row keeps the rows the table already had for it (nothing is lost)."""
    start, end = window_dates(*context.partition_time_window)
    intake = Intake(landing, context.log)
    files_a = {d: f.name for d, f in intake.by_date(PROVIDER_A, start, end).items()}
    files_b = {d: f.name for d, f in intake.by_date(PROVIDER_B, start, end).items()}
    today = _today()
    lake = lake_store.lake
    has_table = lake.exists("raw", "prices")
    old = lake.read("raw", "prices", start, end) if has_table else None
    before = (
        lake.read("raw", "prices", shift_sessions(start, -(HISTORY_RETURNS + 1)), shift_sessions(start, -1))
        if has_table
        else None
    )
    history = History(before)
    universes = _universes(landing, lake, start, end)
    day_rows, recon_rows, failovers, missing, read_days, dropped, full_days = [], [], [], [], [], [], []
    for d in sessions_between(start, end):
        universe = universes.get(d)
        inp = DayInputs(d)
        bad: dict[str, VendorFileError] = {}
        for prefix, files, parse in (
            (PROVIDER_A, files_a, parse_provider_a),
            (PROVIDER_B, files_b, parse_provider_b),
        ):
            name = files.get(d) or _delivery_name(prefix, d)
            if d not in files:
                why = intake.previous_reason(prefix, name)  # quarantined by an earlier run: the same reason
                _set_error(inp, prefix, f"refused file {name} ({why})" if why else None)
                continue
            try:
                parsed = parse(name, intake.read_bytes(prefix, name), today, universe)
            except NotReadYet as e:
                _set_error(inp, prefix, f"file {name} not read yet: {e.reason}")
                continue
            except VendorFileError as e:
                bad[prefix] = e
                continue
            if prefix == PROVIDER_A:
                inp.a, inp.a_late = parsed, is_late(parsed, shift_sessions(d, 1))
            else:
                inp.b = parsed
        # Completeness: against the day's universe, then against the other provider's (complete) file.
        for prefix in (PROVIDER_A, PROVIDER_B):
            mine, other = (inp.a, inp.b) if prefix == PROVIDER_A else (inp.b, inp.a)
            if mine is None:
                continue
            gap = completeness(mine.file, mine.rows["ticker"], universe, None) or completeness(
                mine.file,
                mine.rows["ticker"],
                None,
                other.rows["ticker"] if other is not None else None,
                other.file if other is not None else None,
            )
            if gap is not None:
                bad[prefix] = VendorFileError(mine.file, gap.reason, [gap])
                if prefix == PROVIDER_A:
                    inp.a = None
                else:
                    inp.b = None
        for prefix, e in bad.items():
            _set_error(inp, prefix, f"refused file {e.file} ({e.reason})")
            intake.quarantine(prefix, e.file, e.reason, e.details())
        choice = choose_day(inp, config.reconciliation_tolerance, history)
        for x in choice.dropped:
            dropped.append({"trade_date": d.isoformat(), **x})
            context.log.warning(f"raw.prices {d}: {x['ticker']} not used: {x['reason']}")
        if choice.rows.height == 0:
            missing.append({"trade_date": d.isoformat(), "reason": choice.reason})
            context.log.warning(f"no usable prices for {d}: {choice.reason}")
            if old is not None:
                history.add(old.filter(pl.col("trade_date") == d))
            continue
        if choice.source != "A":
            failovers.append(
                {
                    "trade_date": d.isoformat(),
                    "source": choice.source,
                    "reason": choice.reason,
                    "names": len(choice.replaced),
                }
            )
            context.log.warning(
                f"raw.prices {d}: {len(choice.replaced)} name(s) failed over: {choice.reason}"
            )
        if not choice.dropped and _covers(choice.rows, universe, inp):
            full_days.append(d)  # a complete day replaces the table's rows of the day
        history.add(choice.rows)
        day_rows.append(choice.rows)
        read_days.append(d)
        recon_rows.append(choice.reconciliation)
    df = pl.concat(day_rows) if day_rows else pl.DataFrame(schema=PRICES_SCHEMA)
    # Names (and days) we cannot read now keep the rows the table already holds: name by name, except on a day
    # whose rows came whole from complete files (a name they no longer list is gone).
    covered = pl.concat(
        [
            df.select("trade_date", "ticker"),
            old.filter(pl.col("trade_date").is_in(full_days)).select("trade_date", "ticker")
            if old is not None
            else pl.DataFrame(schema={"trade_date": pl.Date, "ticker": pl.Utf8}),
        ]
    ).unique()
    df, kept = keep_table_rows(
        lake, "raw", "prices", df, start, end, on=["trade_date", "ticker"], covered=covered
    )
    if kept:
        context.log.warning(
            f"raw.prices: kept {kept} existing row(s) for names or days without a usable file now"
        )
    df = df.sort("trade_date", "ticker")
    recon = pl.concat(recon_rows) if recon_rows else choose_day(DayInputs(start)).reconciliation
    recon, _ = keep_table_rows(
        lake,
        "raw",
        "price_reconciliation",
        recon,
        start,
        end,
        on=["trade_date"],
        covered=pl.DataFrame({"trade_date": read_days}, schema={"trade_date": pl.Date}),
    )
    # The checks that protect the book are verified before anything is written: a window that breaks one fails the
    # step, so nothing downstream runs. (Dagster's `blocking=True` on a multi-asset's check specs would say the same
    # but makes op-selection subsets of the job invalid: `dagster job launch -o prices,...` failed to build.)
    invalid = price_problems(df)
    contradicted = contradicted_rows(df, recon, before)
    if invalid or contradicted.height:
        raise Failure(
            description=f"raw.prices {start}..{end} refused (nothing written): "
            + (f"{len(invalid)} invalid row(s), e.g. {invalid[0]}; " if invalid else "")
            + (f"{contradicted.height} row(s) the other provider contradicts" if contradicted.height else ""),
            metadata={
                "problems": MetadataValue.json(invalid[:20]),
                "contradicted_rows": MetadataValue.json(contradicted.head(20).to_dicts()),
            },
        )
    intake.add_partition_fingerprints(context, RAW_PRICES, RAW_PRICE_RECONCILIATION)
    yield Output(
        df,
        output_name="prices",
        metadata={
            "rows": df.height,
            "failovers": len(failovers),
            "failover_days": MetadataValue.json(failovers),
            "missing_days": MetadataValue.json(missing),
            "rows_kept_from_table": kept,
            **intake.metadata(),
            "names_not_used": MetadataValue.json(dropped[-50:]),
            "sources": MetadataValue.json(df.group_by("source").len().sort("source").to_dicts()),
        },
    )
    yield Output(
        recon,
        output_name="price_reconciliation",
        metadata={
            "disagreements": recon.height,
        },
    )
    yield AssetCheckResult(
        check_name="every_session_has_prices",
        asset_key=RAW_PRICES,
        passed=not missing,
        severity=AssetCheckSeverity.WARN,
        metadata={"missing_days": MetadataValue.json(missing)},
    )
    yield AssetCheckResult(
        check_name="prices_valid",
        asset_key=RAW_PRICES,
        passed=not invalid,
        metadata={"problems": MetadataValue.json(invalid[:20])},
    )
    yield AssetCheckResult(
        check_name="prices_plausible",
        asset_key=RAW_PRICES,
        passed=contradicted.height == 0,
        metadata={
            "contradicted_rows": MetadataValue.json(contradicted.head(20).to_dicts()),
            "names_not_used": len(dropped),
        },
    )
    share = recon.height / max(df.height, 1)
    yield AssetCheckResult(
        check_name="providers_agree",
        asset_key=RAW_PRICE_RECONCILIATION,
        passed=share <= config.max_disagreement_share,
        severity=AssetCheckSeverity.WARN,
        metadata={"disagreements": recon.height, "share_of_rows": round(share, 6)},
    )


def _delivery_name(prefix: str, d: date) -> str:
    return {PROVIDER_A: f"prices_a_{d.isoformat()}.csv", PROVIDER_B: f"prices_b_{d.isoformat()}.parquet"}[
        prefix
    ]


def _set_error(inp: DayInputs, prefix: str, error: str | None) -> None:
    if prefix == PROVIDER_A:
        inp.a_error = error
    else:
        inp.b_error = error


def _covers(rows: pl.DataFrame, universe: set[str] | None, inp: DayInputs) -> bool:
    """The day's rows come from a complete file: every name of the universe (or, unknown, of the files read)."""
    expected = (
        universe
        if universe is not None
        else {t for p in (inp.a, inp.b) if p is not None for t in p.rows["ticker"].to_list()}
    )
    return bool(expected) and expected <= set(rows["ticker"].to_list())


def _universes(landing: VendorLanding, lake, start: date, end: date) -> dict[date, set[str]]:
    """Each day's universe tickers: the reference vendor's snapshot of that day (as delivered; the universe asset
    quarantines a bad one), else raw.universe's own snapshot of the day. A day with neither is not in the dict
    (its price files are then checked against each other only)."""
    out: dict[date, set[str]] = {}
    names = {
        d.trade_date: d.name
        for d in split_deliveries(
            REFERENCE, [f.name for f in landing.list_files(REFERENCE, fingerprints=False)]
        )[0]
        if start <= d.trade_date <= end
    }
    for d, name in names.items():
        try:
            out[d] = set(parse_universe(name, landing.read_bytes(REFERENCE, name))["ticker"].to_list())
        except Exception:  # noqa: BLE001 - a bad snapshot is the universe asset's to quarantine
            continue
    if len(out) < len(sessions_between(start, end)) and lake.exists("raw", "universe"):
        have = lake.read("raw", "universe", start, end).filter(
            pl.col("snapshot_date") == pl.col("trade_date")
        )
        for (d,), rows in have.partition_by("trade_date", as_dict=True).items():
            out.setdefault(d, set(rows["ticker"].to_list()))
    return out
