"""portfolio.target_weights (+ its audit table) and portfolio.orders (the daily trade list for execution)."""

import json
import subprocess
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    BackfillPolicy,
    Config,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)

from alpha_assets.automation import downstream
from alpha_assets.keys import (
    FEATURES_PRICE_FEATURES,
    MODELS_ALPHA_SCORES,
    PORTFOLIO_ORDERS,
    PORTFOLIO_TARGET_WEIGHTS,
    PORTFOLIO_WEIGHTS_AUDIT,
    RAW_PRICES,
    RAW_UNIVERSE,
    RISK_RISK_REPORT,
)
from alpha_assets.lib.portfolio import InfeasibleLimitsError, PortfolioLimits, check_limits, invested_share
from alpha_assets.lib.portfolio.daily import COV_WINDOW, WEIGHT_SCHEMA, day_target_weights
from alpha_assets.lib.portfolio.orders import ORDER_FILE_COLUMNS, ORDERS_SCHEMA, book_orders
from alpha_assets.lib.settings import NAV_USD
from alpha_assets.lib_config import config_of
from alpha_assets.metadata import plot_metadata, run_partition
from partitions import FEATURE_LOOKBACK_SESSIONS, feature_lookback, model_days, window_dates, window_overrun
from partitions.calendar import sessions_between
from resources.io_manager import input_versions
from resources.lake_resource import DeltaLakeResource
from resources.outbox import OutboxResource

previous_day = TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)


# The fund's book rules are PortfolioLimits' defaults (lib/portfolio/limits.py), defined there once; the launchpad
# fields are derived from it (lib_config.config_of), so the asset and the lib cannot disagree.
# The PortfolioLimits fields a PM tunes in the launchpad (the rest stay at the lib's values).
TUNABLE_LIMITS = (
    "long_quantile",
    "short_quantile",
    "max_name_weight",
    "max_sector_weight",
    "max_country_weight",
    "max_corr_group_weight",
    "min_adv_usd",
    "gross_leverage",
    "hold_cash",
    "hold_band",
)


class PortfolioConfig(config_of(PortfolioLimits, TUNABLE_LIMITS)):
    """Limits and book construction a PM tunes (shown in the launchpad); defaults are the fund's rules. The limits
    (``PortfolioLimits``' fields in ``TUNABLE_LIMITS``) include ``hold_cash`` (when the limits cannot hold full
    books: invest what they allow, dollar-neutral, the rest in cash) and ``hold_band`` (trading the forecast net of
    costs: a name held yesterday keeps its side while it ranks within its side's quantile + hold_band; 0 rebuilds
    the quantile books every day)."""

    # "alpha_scores": the model ensemble (models.alpha_scores). Any other value names a column of
    # features.price_features to trade instead: a research baseline, and how the portfolio tests run without models.
    alpha_source: str = "alpha_scores"
    cov_window: int = COV_WINDOW

    def limits(self) -> PortfolioLimits:
        return self.lib()


def alpha_table_of(alpha_source: str) -> tuple[str, str]:
    return ("models", "alpha_scores") if alpha_source == "alpha_scores" else ("features", "price_features")


def read_alpha(lake, alpha_source: str, start, end, version: int | None) -> pl.DataFrame:
    """trade_date, ticker, alpha_score (+ model_versions for the ensemble) at the given Delta version."""
    table = alpha_table_of(alpha_source)
    df = lake.read(*table, start, end, version=version)
    if alpha_source == "alpha_scores":
        return df.select("trade_date", "ticker", "alpha_score", "model_versions")
    if alpha_source not in df.columns:
        raise Failure(
            f"alpha_source '{alpha_source}' is neither 'alpha_scores' nor a column of features.price_features"
        )
    return df.select("trade_date", "ticker", pl.col(alpha_source).alias("alpha_score"))


def code_version() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "alpha_assets"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if sha.returncode == 0:
            return sha.stdout.strip()[:12] + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import version

    return f"alpha-assets=={version('alpha-assets')}"


def hrp_picture(
    book: pl.DataFrame,
    prices: pl.DataFrame,
    cov_window: int,
    limits: PortfolioLimits,
    partition: str | None = None,
) -> dict[str, MetadataValue]:
    """The metadata of the cluster tree HRP sized the run's last long book on: the picture (``hrp_dendrogram``,
    the asset page shows it) and its link on the dashboard's Reports page, where it is stored
    (``metadata.plot_metadata``). A long book of fewer than two names has no tree: a line says so."""

    import numpy as np

    from alpha_assets.lib.portfolio.daily import trailing_returns
    from alpha_assets.lib.portfolio.plots import hrp_dendrogram_png

    day = book["trade_date"][0]
    longs = sorted(book.filter(pl.col("side") == "long")["ticker"].to_list())  # HRP's own column order
    wide = trailing_returns(prices.filter(pl.col("ticker").is_in(longs)), day, cov_window + 1).slice(1)
    if len(longs) < 2:
        note = f"{day}: the long book holds {len(longs)} name(s), no tree to draw"
        return {"hrp_dendrogram": MetadataValue.md(note)}
    png = hrp_dendrogram_png(
        wide.select(longs).to_numpy().astype(np.float64),
        longs,
        f"HRP cluster tree of the long book, {day}",
        linkage=limits.linkage,
    )
    return plot_metadata(
        "hrp_dendrogram",
        png,
        f"HRP cluster tree, long book {day}",
        "/".join(PORTFOLIO_TARGET_WEIGHTS.path),
        partition=partition,
        day=day,
    )


@multi_asset(
    outs={
        "target_weights": AssetOut(
            key=PORTFOLIO_TARGET_WEIGHTS,
            metadata={"partition_expr": "trade_date"},
            kinds={"polars", "delta"},
            automation_condition=downstream,
        ),
        "weights_audit": AssetOut(
            key=PORTFOLIO_WEIGHTS_AUDIT,
            metadata={"partition_expr": "trade_date"},
            kinds={"polars", "delta"},
            automation_condition=downstream,
        ),
    },
    ins={
        "prices": AssetIn(key=RAW_PRICES, partition_mapping=feature_lookback),
        "universe": AssetIn(key=RAW_UNIVERSE),
    },
    # The alpha is read from the lake (below) so the recorded Delta version is exactly the one used.
    deps=[MODELS_ALPHA_SCORES, FEATURES_PRICE_FEATURES],
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="portfolio",
    check_specs=[
        AssetCheckSpec(
            "limits_hold",
            asset=PORTFOLIO_TARGET_WEIGHTS,
            blocking=True,
            description="name, sector, country, correlation-group, liquidity and leverage limits",
        ),
        AssetCheckSpec(
            "weights_finite_and_balanced",
            asset=PORTFOLIO_TARGET_WEIGHTS,
            blocking=True,
            description="no NaN; long book sums to +gross/2 and short book to -gross/2 (with hold_cash: a "
            "smaller book, still dollar-neutral, the rest in cash)",
        ),
        AssetCheckSpec(
            "every_day_has_a_book",
            asset=PORTFOLIO_TARGET_WEIGHTS,
            description="the limits were feasible on every day (infeasible days get no book)",
        ),
        AssetCheckSpec(
            "books_fully_invested",
            asset=PORTFOLIO_TARGET_WEIGHTS,
            description="the limits left no capital in cash (states the invested share of the binding days)",
        ),
    ],
)
def target_weights(
    context: AssetExecutionContext,
    config: PortfolioConfig,
    prices: pl.DataFrame,
    universe: pl.DataFrame,
    lake_store: DeltaLakeResource,
):
    """Long/short books from the alpha score, sized by HRP inside each book, then capped by the limits.

    The audit table records, for each day, the Delta versions of every input, the signal/model version and the
    code version, so the day's weights can be rebuilt exactly (``rebuild_weights``)."""
    # cov_window returns need cov_window + 1 closes; feature_lookback reads FEATURE_LOOKBACK_SESSIONS + 1 sessions
    if why := window_overrun(
        "cov_window",
        config.cov_window,
        FEATURE_LOOKBACK_SESSIONS,
        "returns of raw/prices, partitions.feature_lookback",
    ):
        raise Failure(why)
    start, end = window_dates(*context.partition_time_window)
    limits = config.limits()
    lake = lake_store.lake
    alpha_table = alpha_table_of(config.alpha_source)
    if not lake.exists(*alpha_table):
        raise Failure(
            f"{'.'.join(alpha_table)} does not exist yet: materialize it first"
            + (" (train the models: `alpha train --alpha`)" if alpha_table[1] == "alpha_scores" else "")
        )
    # The versions the rows were actually read at: prices and universe by the IO manager before this body ran (a
    # version asked of the lake now could be a newer one committed since), the alpha pinned here and read at it.
    versions = input_versions(context.run.run_id, context.op_def.name)
    alpha_version = lake.version(*alpha_table)
    versions[".".join(alpha_table)] = alpha_version
    alpha = read_alpha(lake, config.alpha_source, start, end, alpha_version)
    # The same for every day of the run: computed once (code_version runs git).
    provenance = {
        "input_versions": json.dumps(versions, sort_keys=True),
        "alpha_source": config.alpha_source,
        "code_version": code_version(),
        "config": json.dumps(config.model_dump(), sort_keys=True),
    }
    frames, audit, infeasible, breaches, in_cash = [], [], [], [], []
    held = _previous_book(lake, start) if limits.hold_band > 0 else {}
    for day in sessions_between(start, end):
        f = alpha.filter(pl.col("trade_date") == day)
        scores = f.select("ticker", "alpha_score").drop_nulls()
        model_version = (
            f["model_versions"][0]
            if "model_versions" in f.columns and f.height
            else f"price-signal:{config.alpha_source}"
        )
        u = universe.filter(pl.col("trade_date") == day)
        if scores.height == 0 or u.height == 0:
            continue
        try:
            w = day_target_weights(day, scores, prices, u, limits, config.cov_window, held)
        except InfeasibleLimitsError as e:
            infeasible.append(f"{day}: {e}")
            context.log.error(f"{day}: {e}")
            continue
        breaches += [f"{day}: {b}" for b in check_limits(w, u, limits)]
        share = invested_share(w, limits)
        if share < 1 - 1e-6:
            in_cash.append({"trade_date": str(day), "invested_share": round(share, 6)})
        frames.append(w)
        audit.append(
            {
                "trade_date": day,
                **provenance,
                "model_version": model_version,
                "names": w.height,
                "held_book": json.dumps(held, sort_keys=True),
            }
        )
        held = dict(zip(w["ticker"], w["side"], strict=True)) if limits.hold_band > 0 else {}
    df = pl.concat(frames) if frames else pl.DataFrame(schema=WEIGHT_SCHEMA)
    audit_df = pl.DataFrame(
        audit,
        schema={
            "trade_date": pl.Date,
            "input_versions": pl.Utf8,
            "alpha_source": pl.Utf8,
            "model_version": pl.Utf8,
            "code_version": pl.Utf8,
            "config": pl.Utf8,
            "names": pl.Int64,
            "held_book": pl.Utf8,
        },
    )
    min_share = min((d["invested_share"] for d in in_cash), default=1.0 if frames else 0.0)
    pictures = (
        hrp_picture(frames[-1], prices, config.cov_window, limits, run_partition(context)) if frames else {}
    )
    yield Output(
        df,
        output_name="target_weights",
        metadata={
            "rows": df.height,
            "days": len(frames),
            "infeasible_days": MetadataValue.json(infeasible),
            "gross": float(df["weight"].abs().sum() / max(len(frames), 1)) if df.height else 0.0,
            "days_partly_in_cash": len(in_cash),
            "min_invested_share": min_share,
            **pictures,
        },
    )
    yield Output(audit_df, output_name="weights_audit", metadata={"rows": audit_df.height})
    # Written books must comply (blocking). A day whose limits are infeasible gets no book at all: nothing
    # wrong reaches risk or orders, and the day is reported (warning check, error log, metadata).
    yield AssetCheckResult(
        check_name="limits_hold",
        asset_key=PORTFOLIO_TARGET_WEIGHTS,
        passed=not breaches,
        metadata={"breaches": MetadataValue.json(breaches[:50])},
    )
    yield AssetCheckResult(
        check_name="every_day_has_a_book",
        asset_key=PORTFOLIO_TARGET_WEIGHTS,
        passed=not infeasible,
        severity=AssetCheckSeverity.WARN,
        metadata={"infeasible_days": MetadataValue.json(infeasible[:50])},
    )
    yield AssetCheckResult(
        check_name="books_fully_invested",
        asset_key=PORTFOLIO_TARGET_WEIGHTS,
        passed=not in_cash,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{len(in_cash)} of {len(frames)} days held part of the capital in cash: the limits allow "
            f"{min_share:.1%} invested at least"
            if in_cash
            else "every book fully invested"
        ),
        metadata={
            "days_partly_in_cash": len(in_cash),
            "min_invested_share": min_share,
            "days": MetadataValue.json(in_cash[:50]),
        },
    )
    nan = df.filter(pl.col("weight").is_nan() | pl.col("weight").is_null()).height
    sums = df.group_by("trade_date").agg(
        pl.col("weight").filter(pl.col("weight") > 0).sum().alias("long"),
        pl.col("weight").filter(pl.col("weight") < 0).sum().alias("short"),
    )
    if limits.hold_cash:  # a smaller book is allowed, but it must stay dollar-neutral and within gross
        bad_sums = sums.filter(
            (pl.col("long") > limits.book_gross + 1e-9) | ((pl.col("long") + pl.col("short")).abs() > 1e-9)
        ).height
    else:
        bad_sums = sums.filter(
            ((pl.col("long") - limits.book_gross).abs() > 1e-9)
            | ((pl.col("short") + limits.book_gross).abs() > 1e-9)
        ).height
    yield AssetCheckResult(
        check_name="weights_finite_and_balanced",
        asset_key=PORTFOLIO_TARGET_WEIGHTS,
        passed=nan == 0 and bad_sums == 0,
        metadata={"nan_weights": nan, "unbalanced_days": bad_sums},
    )


def _previous_book(lake, start) -> dict[str, str]:
    """ticker -> side of the last book written before ``start`` (empty when none): the hold band's state."""
    from partitions.calendar import shift_sessions

    if not lake.exists("portfolio", "target_weights"):
        return {}
    prev = lake.read(
        "portfolio",
        "target_weights",
        shift_sessions(start, -5),
        shift_sessions(start, -1),
        columns=["trade_date", "ticker", "side"],
    )
    if prev.height == 0:
        return {}
    last = prev.filter(pl.col("trade_date") == prev["trade_date"].max())
    return dict(zip(last["ticker"], last["side"], strict=True))


def rebuild_weights(lake, day, audit_row: dict) -> pl.DataFrame:
    """Rebuild a past day's target weights from the exact Delta versions its audit row recorded."""
    from partitions.calendar import shift_sessions

    versions = json.loads(audit_row["input_versions"])
    cfg = PortfolioConfig(**json.loads(audit_row["config"]))
    table = alpha_table_of(cfg.alpha_source)
    alpha = read_alpha(lake, cfg.alpha_source, day, day, versions[".".join(table)])
    prices = lake.read(
        "raw", "prices", shift_sessions(day, -FEATURE_LOOKBACK_SESSIONS), day, version=versions["raw.prices"]
    )
    uni = lake.read("raw", "universe", day, day, version=versions["raw.universe"])
    scores = alpha.select("ticker", "alpha_score").drop_nulls()
    held = json.loads(audit_row.get("held_book") or "{}")  # the previous book the hold band started from
    return day_target_weights(day, scores, prices, uni, cfg.limits(), cfg.cov_window, held)


class OrdersConfig(Config):
    nav_usd: float = NAV_USD  # capital the weights are applied to when sizing shares (the fund's NAV)


@asset(
    key=PORTFOLIO_ORDERS,
    ins={
        "weights": AssetIn(key=PORTFOLIO_TARGET_WEIGHTS, partition_mapping=previous_day),
        "risk": AssetIn(key=RISK_RISK_REPORT),
        "prices": AssetIn(key=RAW_PRICES, partition_mapping=previous_day),
        "universe": AssetIn(key=RAW_UNIVERSE),
    },
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="portfolio",
    kinds={"polars", "delta", "csv"},
    automation_condition=downstream,
)
def orders(
    context: AssetExecutionContext,
    config: OrdersConfig,
    weights: pl.DataFrame,
    risk: pl.DataFrame,
    prices: pl.DataFrame,
    universe: pl.DataFrame,
    outbox: OutboxResource,
):
    """The daily trade list: target weights scaled by the drawdown control's multiplier, minus yesterday's book,
    in whole shares and value. The table holds every name of the day's book and the previous one (``side`` is
    ``hold`` when no trade is needed), so the backtest sees the whole book, zeros included; one CSV per day with
    the trades only goes to the outbox. ``rounding_residual_value`` is the value the rounding to whole shares
    leaves out of each position (exact target value minus the whole-share value). No order trades more than
    ``MAX_ORDER_ADV_MULTIPLE`` times the name's liquidity (its ADV in USD): a larger one is cut to that and listed
    in ``orders_cut_to_liquidity``."""
    start, end = window_dates(*context.partition_time_window)
    multipliers = (
        dict(zip(risk["trade_date"].to_list(), risk["gross_multiplier_next"].to_list(), strict=True))
        if risk.height
        else {}
    )
    frames, cut = book_orders(
        weights, multipliers, prices, universe, config.nav_usd, sessions_between(start, end)
    )
    files, residuals = [], {}
    for o in frames:
        day = o["trade_date"][0]
        files.append(outbox.write_orders(day, o.filter(pl.col("side") != "hold").select(ORDER_FILE_COLUMNS)))
        residuals[str(day)] = round(float(o["rounding_residual_value"].sum()), 2)
    df = pl.concat(frames) if frames else pl.DataFrame(schema=ORDERS_SCHEMA)
    trades = df.filter(pl.col("side") != "hold")
    return Output(
        df,
        metadata={
            "rows": df.height,
            "trades": trades.height,
            "files": MetadataValue.json(files[-5:]),
            "traded_value": float(trades["order_value"].abs().sum()) if trades.height else 0.0,
            # Net value the whole-share rounding leaves out of (or adds to) each day's book, in USD.
            "rounding_residual_usd": MetadataValue.json(dict(list(residuals.items())[-20:])),
            "max_abs_rounding_residual_usd": max((abs(v) for v in residuals.values()), default=0.0),
            "orders_cut_to_liquidity": MetadataValue.json(cut[-50:]),
        },
    )
