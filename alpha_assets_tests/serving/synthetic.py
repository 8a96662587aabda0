"""Synthetic but realistic serving-store days (seeded numpy) for the API/dashboard tests and the serving benchmark.

Each day is a dict of polars frames in the serving contract's shapes (`alpha_assets/serving/store.py`): a book of
N names (half long, half short, gross 2.0 of NAV), the fund's NAV random walk with drawdown from its peak, P&L
attribution per name that sums to the fund's P&L, exposures, risk, model and pipeline KPIs. They are written
through ``store.publish_day``, the real write path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

SECTORS = ["Tech", "Health", "Financials", "Energy", "Industrials", "Consumer", "Utilities", "Materials"]
COUNTRIES = ["US", "GB", "DE", "JP", "CA"]
FEATURES = [
    "call_sentiment__chg_20",
    "ret_5",
    "parking_cars__z60",
    "vol_20",
    "filing_neg__chg",
    "mom_60_5",
    "web_price__chg_5",
    "tank_fill__z60",
]
MODELS = ["xgboost", "lightgbm", "catboost", "mlp"]
ASSETS = [
    "raw/universe",
    "raw/prices",
    "raw/parking_lot_counts",
    "raw/oil_tank_levels",
    "raw/call_sentiment",
    "raw/web_signals",
    "features/price_features",
    "features/feature_matrix",
    "models/alpha_scores",
    "portfolio/target_weights",
    "risk/risk_report",
    "portfolio/orders",
]
START = date(2024, 1, 2)
VAR_LIMIT, GROSS_LIMIT = 0.03, 2.2


def business_days(n: int, start: date = START) -> list[date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def serving_days(
    names: int, days: int, seed: int = 0, nav0: float = 100_000_000.0
) -> Iterator[tuple[date, dict]]:
    """Yield (day, {table: frame}) for ``days`` business days of a ``names``-name book."""
    rng = np.random.default_rng(seed)
    tickers = np.array([f"N{i:05d}" for i in range(names)])
    sector = np.array(SECTORS)[rng.integers(0, len(SECTORS), names)]
    country = np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), names)]
    nav, peak = nav0, nav0
    prev_w = np.zeros(names)
    for k, day in enumerate(business_days(days)):
        score = rng.normal(size=names)
        side = np.where(np.argsort(np.argsort(-score)) < names // 2, "long", "short")
        raw = rng.uniform(0.5, 1.5, names)
        w = np.where(side == "long", raw / raw[side == "long"].sum(), -raw / raw[side == "short"].sum())
        ret = rng.normal(0.0002, 0.02, names)
        name_gross = w * ret * nav
        name_costs = np.abs(w - prev_w) * nav * 0.0005
        prev_w = w
        gross_pnl, costs = float(name_gross.sum()), float(name_costs.sum())
        net_pnl = gross_pnl - costs
        nav_prev, nav = nav, nav + net_pnl
        peak = max(peak, nav)
        drawdown = nav / peak - 1.0
        top_features = []
        for i in range(names):
            if k % 5 == 4 and i % 3 == 0:  # some names have no SHAP rows that day
                top_features.append(None)
                continue
            fs = rng.choice(len(FEATURES), 3, replace=False)
            vals = sorted(rng.normal(0, 0.02, 3), key=abs, reverse=True)
            top_features.append(
                json.dumps(
                    [{"feature": FEATURES[f], "shap_value": float(v)} for f, v in zip(fs, vals, strict=True)]
                )
            )
        book = pl.DataFrame(
            {
                "trade_date": [day] * names,
                "ticker": tickers,
                "side": side,
                "weight": w,
                "sector": sector,
                "country": country,
                "alpha_score": score,
                "top_features": top_features,
            },
            schema_overrides={"trade_date": pl.Date},
        )
        attribution = pl.DataFrame(
            {
                "trade_date": [day] * names,
                "side": side,
                "sector": sector,
                "model": ["fusion"] * names,
                "ticker": tickers,
                "gross_pnl": name_gross,
                "costs": name_costs,
                "net_pnl": name_gross - name_costs,
            },
            schema_overrides={"trade_date": pl.Date},
        )
        longs, shorts = w[w > 0].sum(), w[w < 0].sum()
        turnover = float(rng.uniform(0.1, 0.4))
        performance = pl.DataFrame(
            {
                "trade_date": [day],
                "nav": [nav],
                "gross_pnl": [gross_pnl],
                "costs": [costs],
                "net_pnl": [net_pnl],
                "gross_return": [gross_pnl / nav_prev],
                "net_return": [net_pnl / nav_prev],
                "drawdown": [drawdown],
                "turnover": [turnover],
                "gross_exposure": [longs - shorts],
                "net_exposure": [longs + shorts],
            }
        )
        performance = performance.with_columns(pl.col("trade_date").cast(pl.Date))
        exposures = _exposures(day, w, sector, country, tickers)
        var_1d = float(rng.uniform(0.008, 0.035))
        risk = pl.DataFrame(
            {
                "trade_date": [day],
                "var_1d": [var_1d],
                "es_1d": [var_1d * 1.3],
                "var_5d": [var_1d * 5**0.5],
                "var_limit": [VAR_LIMIT],
                "var_limit_usage": [var_1d / VAR_LIMIT],
                "gross_exposure": [longs - shorts],
                "gross_limit": [GROSS_LIMIT],
                "gross_limit_usage": [(longs - shorts) / GROSS_LIMIT],
                "drawdown": [drawdown],
                "drawdown_state": ["normal" if drawdown > -0.05 else "reduced"],
                "breaches": ["var_1d" if var_1d > VAR_LIMIT else ""],
            }
        )
        risk = risk.with_columns(pl.col("trade_date").cast(pl.Date))
        models = pl.DataFrame(
            [
                {
                    "trade_date": day,
                    "model": m,
                    "recipe": r,
                    "champion": r == "fusion",
                    "ic_1": float(rng.normal(0.03, 0.05)),
                    "ic_20": None if k < 20 else float(rng.normal(0.03, 0.02)),
                    "ensemble_weight": 0.25,
                    "status": "ok",
                    "drifted_features": int(rng.poisson(0.3)),
                }
                for m in MODELS
                for r in ("fusion", "base")
            ]
        )
        models = models.with_columns(
            pl.col("trade_date").cast(pl.Date),
            pl.col("ic_20").cast(pl.Float64),
            pl.col("drifted_features").cast(pl.Int64),
        )
        close = datetime(day.year, day.month, day.day, 21, 0)
        pipeline = pl.DataFrame(
            [
                {
                    "trade_date": day,
                    "asset": a,
                    "run_seconds": float(rng.gamma(2.0, 3.0)),
                    "rows_written": names,
                    "materialized_at": close + timedelta(hours=float(h)),
                    "freshness_hours": float(h),
                    "failovers": int(rng.poisson(0.5)) if a == "raw/prices" else 0,
                    "quarantined_files": int(rng.random() < 0.05),
                }
                for a in ASSETS
                for h in [rng.uniform(0.5, 6.0)]
            ]
        )
        pipeline = pipeline.with_columns(pl.col("trade_date").cast(pl.Date))
        yield (
            day,
            {
                "book_positions": book,
                "fund_performance": performance,
                "pnl_attribution": attribution,
                "exposures": exposures,
                "risk_summary": risk,
                "model_kpis": models,
                "pipeline_kpis": pipeline,
            },
        )


def _exposures(day: date, w, sector, country, tickers) -> pl.DataFrame:
    frame = pl.DataFrame({"sector": sector, "country": country, "ticker": tickers, "w": w})

    def by(dimension: str, col: str | None, df: pl.DataFrame) -> pl.DataFrame:
        key = pl.lit("book") if col is None else pl.col(col)
        return (
            df.group_by(key.alias("bucket"))
            .agg(
                pl.col("w").clip(lower_bound=0).sum().alias("long"),
                pl.col("w").clip(upper_bound=0).sum().alias("short"),
            )
            .with_columns(dimension=pl.lit(dimension))
        )

    top = frame.sort(pl.col("w").abs(), descending=True).head(10)
    out = pl.concat(
        [
            by("total", None, frame),
            by("sector", "sector", frame),
            by("country", "country", frame),
            by("beta", None, frame.with_columns(pl.col("w") * 0.9)),
            by("name", "ticker", top),
        ]
    )
    return out.with_columns(
        gross=pl.col("long") - pl.col("short"),
        net=pl.col("long") + pl.col("short"),
        trade_date=pl.lit(day, dtype=pl.Date),
    ).select("trade_date", "dimension", "bucket", "long", "short", "gross", "net")


def fill_store(engine, names: int, days: int, seed: int = 0) -> list[date]:
    """Create the schema and publish ``days`` synthetic days; returns the days published."""
    from alpha_assets.serving import store

    store.create_schema(engine)
    published = []
    for day, tables in serving_days(names, days, seed):
        store.publish_day(engine, day, {name: _with_schema(name, frame) for name, frame in tables.items()})
        published.append(day)
    return published


def _with_schema(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Columns the store has beyond the contract's required ones (the marts may add some) as nulls."""
    from alpha_assets.serving.store import SERVING_TABLES

    extra = [c for c, _ in SERVING_TABLES[name] if c not in frame.columns]
    return frame.with_columns(pl.lit(None).alias(c) for c in extra) if extra else frame
