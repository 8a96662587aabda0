"""Write a simulated world to disk the way its vendors would deliver it.

Landing layout (one file per trading day, the date in the name):
  landing/reference/universe_YYYY-MM-DD.csv        point-in-time universe snapshot
  landing/prices_a/prices_a_YYYY-MM-DD.csv          provider A (CSV, our primary)
  landing/prices_b/prices_b_YYYY-MM-DD.parquet      provider B (Parquet, other column names, the backup)
Faults, as real feeds have them: provider A misses days, delivers some late (``published_at`` after the
cut-off), and one file is corrupt; provider B misses other days; B disagrees slightly everywhere and badly on a
few rows. Everything the pipeline must not know goes to ``ground_truth/``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from alpha_world.simulate import World


def _publish_time(d, late: bool) -> datetime:
    base = datetime(d.year, d.month, d.day, 21, 30, tzinfo=timezone.utc)
    return base + (timedelta(days=1, hours=17) if late else timedelta(0))


def write_world(world: World, home: Path, *, fault_rate: float = 0.03) -> dict:
    """Write vendor files under ``home/landing`` and truth under ``home/ground_truth``; returns the fault log."""
    rng = np.random.default_rng(world.cfg.seed + 1)
    landing, truth = home / "landing", home / "ground_truth"
    for sub in ("reference", "prices_a", "prices_b"):
        (landing / sub).mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)

    sessions = world.sessions
    n_days = len(sessions)
    # Never fault the first or last day: the demo should start clean and end with today's data present.
    interior = np.arange(1, max(1, n_days - 1))
    n_fault = int(round(fault_rate * n_days))
    picks = rng.permutation(interior)
    a_missing = sorted(int(i) for i in picks[:n_fault])
    a_late = sorted(int(i) for i in picks[n_fault : 2 * n_fault])
    b_missing = sorted(int(i) for i in picks[2 * n_fault : 3 * n_fault])
    a_corrupt = sorted(int(i) for i in picks[3 * n_fault : 3 * n_fault + (1 if n_days > 10 else 0)])

    # Provider B's view: tiny rounding noise everywhere, a few bad prints.
    px = world.prices
    noise = rng.normal(0, 0.00005, px.height)
    bad = rng.random(px.height) < 0.004
    noise[bad] = rng.choice([-1, 1], bad.sum()) * rng.uniform(0.01, 0.05, bad.sum())
    px_b = px.with_columns(
        (pl.col(c) * (1 + pl.Series(noise))).round(4).alias(c) for c in ("open", "high", "low", "close")
    )
    bad_rows = px.filter(pl.Series(bad)).select("trade_date", "ticker")

    by_day_a = px.partition_by("trade_date", as_dict=True, maintain_order=True)
    by_day_b = px_b.partition_by("trade_date", as_dict=True, maintain_order=True)
    uni = world.universe
    for i, d in enumerate(sessions):
        tag = d.isoformat()
        # Universe snapshot: members live that day, with a trailing ADV estimate.
        members = uni.filter(
            (pl.col("list_date") <= d) & (pl.col("delist_date").is_null() | (pl.col("delist_date") > d))
        ).select("ticker", "name", "sector", "country", "adv_usd", "shares_outstanding")
        members.with_columns(pl.lit(d).alias("as_of")).write_csv(
            landing / "reference" / f"universe_{tag}.csv"
        )

        day_a = by_day_a.get((d,))
        day_b = by_day_b.get((d,))
        if day_a is None:
            continue
        if i not in a_missing:
            path = landing / "prices_a" / f"prices_a_{tag}.csv"
            if i in a_corrupt:
                path.write_bytes(b"ticker,date,open\x00\x00\xff\xfe garbled transfer" + rng.bytes(64))
            else:
                day_a.select(
                    pl.col("ticker"),
                    pl.col("trade_date").alias("date"),
                    "open",
                    "high",
                    "low",
                    "close",
                    "volume",
                    pl.lit(_publish_time(d, i in a_late).isoformat()).alias("published_at"),
                ).write_csv(path)
        if i not in b_missing and day_b is not None:
            day_b.select(
                pl.col("ticker").alias("symbol"),
                pl.col("trade_date").alias("session_date"),
                pl.col("open").alias("px_open"),
                pl.col("high").alias("px_high"),
                pl.col("low").alias("px_low"),
                pl.col("close").alias("px_last"),
                pl.col("volume").alias("shares_traded"),
                pl.lit(_publish_time(d, False)).alias("asof_ts"),
            ).write_parquet(landing / "prices_b" / f"prices_b_{tag}.parquet")

    faults = {
        "provider_a_missing": [sessions[i].isoformat() for i in a_missing],
        "provider_a_late": [sessions[i].isoformat() for i in a_late],
        "provider_a_corrupt": [sessions[i].isoformat() for i in a_corrupt],
        "provider_b_missing": [sessions[i].isoformat() for i in b_missing],
        "provider_b_bad_rows": bad_rows.height,
    }
    world.universe.write_parquet(truth / "universe.parquet")
    world.prices.write_parquet(truth / "prices.parquet")
    world.drivers.write_parquet(truth / "drivers.parquet")
    world.alpha.write_parquet(truth / "alpha.parquet")
    bad_rows.write_parquet(truth / "provider_b_bad_rows.parquet")
    meta = {
        "tickers": world.cfg.tickers,
        "start": sessions[0].isoformat(),
        "end": sessions[-1].isoformat(),
        "days": n_days,
        "seed": world.cfg.seed,
        "signal_strength": world.cfg.signal_strength,
        "calibration": world.calibration.__dict__,
        "faults": faults,
        # from regime_break on the planted alpha is multiplied by -1 (flip) or 0 (remove); null: no break
        "regime_break": world.cfg.regime_break.isoformat() if world.cfg.regime_break else None,
        "regime_mode": world.cfg.regime_mode if world.cfg.regime_break else None,
    }
    (truth / "world.json").write_text(json.dumps(meta, indent=2, default=str))
    return meta
