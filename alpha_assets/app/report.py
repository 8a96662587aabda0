"""What the CLI prints after a run: the lake's tables, the model report's out-of-sample summary beside the
oracle, the alt-data quality."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from alpha_assets.home import AlphaHome
from alpha_assets.lib.settings import SESSIONS_PER_YEAR


def lake_sql(home: AlphaHome):
    from alpha_assets.serving import marts_db_path
    from resources.lake import DeltaLake
    from resources.sql import LakeSQL

    def warn(name: str, why: str) -> None:  # one unreadable table: named once, the others still work
        print(f"warning: table {name} skipped (cannot be read: {why})", file=sys.stderr)

    # tables are opened when a query names them: `alpha sql "SELECT 1"` reads none
    return LakeSQL(DeltaLake(home.lake), marts_db=marts_db_path(home), on_skip=warn)


def model_summary(home: AlphaHome) -> None:
    """Out-of-sample IC (t-stat) of the ensemble and each model against the oracle IC, and the book's net Sharpe."""

    from alpha_assets.lib.backtest.validation import sharpe_ratio
    from resources.lake import DeltaLake

    lake = DeltaLake(home.lake)
    if not lake.exists("reports", "model_report"):
        return
    rep = lake.read("reports", "model_report")
    first, last = rep["first_day"][0], rep["last_day"][0]
    oracle = _oracle_ic(home, first, last)
    print(f"\nout-of-sample IC with the next-day return, {first}..{last} ({rep['n_days'].max()} sessions)")
    if oracle:
        print(f"  {'planted alpha (the whole truth)':44s} IC {oracle['planted_ic']:+.4f}")
        print(
            f"  {'oracle: every delivered channel (alt + prices)':44s} IC {oracle['ic']:+.4f}  "
            f"t {oracle['t_stat']:+.1f}"
        )
        print(
            f"  {'oracle: alt deliveries alone':44s} IC {oracle['alt_ic']:+.4f}  t {oracle['alt_t_stat']:+.1f}"
        )
    for r in rep.sort("name").to_dicts():
        share = f"  ({r['ic'] / oracle['ic']:.0%} of oracle)" if oracle and oracle["ic"] > 0 else ""
        print(f"  {r['name']:44s} IC {r['ic']:+.4f}  t {r['t_stat']:+.1f}{share}")
    summary_file = home.outbox / "reports" / "backtest" / "summary.json"
    if summary_file.exists() and lake.exists("reports", "backtest_pnl"):
        s = json.loads(summary_file.read_text())
        pnl = lake.read("reports", "backtest_pnl").sort("trade_date")
        gross = (pnl["gross_pnl"] / pnl["equity"].shift(1)).drop_nulls().drop_nans()
        gross_sharpe = (
            sharpe_ratio(gross.to_numpy(), periods_per_year=SESSIONS_PER_YEAR)
            if gross.len() > 2
            else float("nan")
        )
        costs = s.get("total_costs", {}).get("all", float("nan")) / s.get("start_equity", float("nan"))
        print(
            f"backtest of the model book, {s['start_date']}..{s['end_date']}: net Sharpe {s['sharpe']:.2f}, "
            f"gross Sharpe {gross_sharpe:.2f} before costs; average daily turnover "
            f"{s['avg_daily_turnover']:.0%}, costs {costs:.1%} of the starting NAV"
        )


def _oracle_ic(home: AlphaHome, start: date, end: date) -> dict | None:
    """The demo world's oracle IC over [start, end] against the same next-day returns the models are scored on
    (ground truth: None outside the demo)."""
    import polars as pl

    from resources.lake import DeltaLake

    path = home.ground_truth / "oracle.parquet"
    lake = DeltaLake(home.lake)
    if not path.exists() or not lake.exists("raw", "prices"):
        return None
    try:
        from alpha_world.oracle import oracle_ic

        px = lake.read("raw", "prices", start, None, columns=["trade_date", "ticker", "close"])
        res = oracle_ic(pl.read_parquet(path), px, start, end)
        return {
            "ic": float(res["oracle_all_z"]["ic"]),
            "t_stat": float(res["oracle_all_z"]["t_stat"]),
            "alt_ic": float(res["oracle_z"]["ic"]),
            "alt_t_stat": float(res["oracle_z"]["t_stat"]),
            "planted_ic": float(res["planted_z"]["ic"]),
        }
    except Exception as e:  # the demo's truth is a bonus: never fail the summary over it
        print(f"(oracle IC unavailable: {e})")
        return None


def summary(home: AlphaHome) -> None:
    db = lake_sql(home)
    print("\ntables")
    for i in db.table_infos():
        where = f"delta v{i.version}" if i.version is not None else "marts DuckDB"
        print(f"  {i.name:30s} {i.rows:>9,d} rows  {i.first_date}..{i.last_date}  ({where})")
    if "raw.prices" in db.tables:
        src = db.query(
            "SELECT source, count(DISTINCT trade_date) AS days FROM raw.prices GROUP BY 1 ORDER BY 1"
        )
        print("price sources by day: " + ", ".join(f"{r['source']}={r['days']}" for r in src.to_dicts()))
    _alt_quality()
    quarantined = sorted(
        p for p in home.quarantine.rglob("*") if p.is_file() and not p.name.endswith(".json")
    )
    print(f"quarantined files: {len(quarantined)}")
    for q in quarantined[:10]:
        reason = (
            json.loads(Path(str(q) + ".reason.json").read_text())["reason"]
            if Path(str(q) + ".reason.json").exists()
            else ""
        )
        print(f"  {q.relative_to(home.root)}: {reason}")


def _alt_quality() -> None:
    """The alt-data assets' latest error figures against the demo world's truth (from the demo-only truth
    checks' metadata, ``alpha_assets/altdata/truth.py``)."""
    from dagster import AssetCheckKey, DagsterInstance

    from alpha_assets.keys import (
        RAW_CALL_SENTIMENT,
        RAW_FILING_FEATURES,
        RAW_OIL_TANK_LEVELS,
        RAW_PARKING_LOT_COUNTS,
    )

    wanted = {
        (RAW_PARKING_LOT_COUNTS, "parking_count_error"): (
            "truth_count_mae_pct",
            "car count error {:.1f}% of the mean count",
        ),
        (RAW_OIL_TANK_LEVELS, "tank_fill_error"): ("truth_fill_mae", "tank fill MAE {:.4f}"),
        (RAW_CALL_SENTIMENT, "call_sentiment_tracks_tone"): (
            "truth_spearman_call_sentiment",
            "call sentiment vs true tone Spearman {:.2f}",
        ),
        (RAW_FILING_FEATURES, "filing_features_track_risk"): (
            "truth_spearman_risk_factors_negative_terms",
            "filing negative terms vs true risk Spearman {:.2f}",
        ),
    }
    parts = []
    try:
        instance = DagsterInstance.get()
    except Exception:  # no instance configured: nothing to report
        return
    keys = {AssetCheckKey(a, c): v for (a, c), v in wanted.items()}
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys))
    for key, (field, fmt) in keys.items():
        rec = latest.get(key)
        data = (
            rec.event.dagster_event.event_specific_data
            if rec and rec.event and rec.event.dagster_event
            else None
        )
        value = getattr(data, "metadata", {}).get(field) if data is not None else None
        if value is not None and isinstance(getattr(value, "value", None), int | float):
            parts.append(fmt.format(value.value))
    if parts:
        print("alt data vs the world's truth (latest run): " + "; ".join(parts))
