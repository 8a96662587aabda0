"""The oracle: how much of the planted alpha the delivered alternative data can reveal, day by day.

A model can only be as good as its inputs. The world plants ``alpha[i,t] = k * sigma_i * z[i,t]`` with
``z = sum_k loading_k * driver_k[i,t] / norm`` (``alpha_world.simulate``), but the fund sees a driver only
through a vendor's deliveries. Under the drivers' AR(1) law the best forecast of ``driver_k[i,t]`` from the latest
observation published by t's cut-off, taken s sessions earlier, is ``phi^s * driver_k[i,t-s]``; with no usable
observation (a name the vendor does not cover, before its first delivery, or a value older than the pipeline's
maximum age) it is 0. So

    oracle_z[i,t] = sum_k loading_k * phi^(s_k) * driver_k[i, t - s_k] / norm     (times the regime multiplier)

"Published by the cut-off" uses the pipeline's own rules (``alpha_assets.lib.altdata.point_in_time``): imagery of
day D is usable at D + 4 h (before D's 22:00 UTC cut-off), a page crawled on D at 16:30 UTC, a filing of D at
22:30 UTC (so from D+1), a call at its end + 3 h (a morning call the same day, an after-close call the next).

The oracle assumes each delivery measures its driver perfectly, so it is an upper bound for a model fed the same
deliveries; the gap between a model's IC and the oracle's IC is what the model leaves on the table, and the gap
between the oracle's IC and the planted alpha's IC is what the vendors' coverage and cadence hide. Everything here
is ground truth: the pipeline never reads it.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from alpha_assets.lib.altdata.point_in_time import MAX_AGE_DAYS, session_cutoffs
from alpha_world.simulate import DRIVER_LOADINGS, DRIVER_PERSISTENCE, DRIVERS, World, regime_multiplier

__all__ = ["ORACLE_SOURCES", "SIGNAL_COLUMNS", "build_oracle", "oracle_ic", "write_oracle"]

# oracle column -> (delivery source, latent driver it measures)
ORACLE_SOURCES: dict[str, tuple[str, str]] = {
    "oracle_parking": ("parking", "store_traffic"),
    "oracle_tanks": ("tanks", "tank_inventory"),
    "oracle_calls": ("transcripts", "management_tone"),
    "oracle_filings": ("filings", "filing_risk"),
    "oracle_web": ("web", "web_price"),
}
# the columns oracle_ic scores: the combined oracle, each source's share of it, the full planted alpha
# oracle_all_z: every delivered channel, the price history included (alpha_world/oracle_prices.py)
SIGNAL_COLUMNS = ["oracle_z", *ORACLE_SOURCES, "oracle_all_z", "planted_z"]


def _norm() -> float:
    return math.sqrt(sum(DRIVER_LOADINGS[d] ** 2 for d in DRIVERS))


def build_oracle(
    world: World, deliveries: pl.DataFrame, max_age_days: dict[str, float] | None = None
) -> pl.DataFrame:
    """Per live ticker-day: ``oracle_z`` and ``oracle_alpha`` (same units as ``true_alpha``), each source's
    contribution (``oracle_parking`` ... ``oracle_web``, summing to ``oracle_z``), the planted ``planted_z`` and
    ``true_alpha``.

    ``deliveries`` holds one row per delivered observation: source (parking, tanks, transcripts, filings, web),
    ticker, trade_date (the session whose driver it measures) and published_at (UTC). ``max_age_days`` overrides
    the pipeline's ``MAX_AGE_DAYS`` per source (calendar days between publication and the cut-off).
    """
    ages = {**MAX_AGE_DAYS, **(max_age_days or {})}
    sessions = world.sessions
    index = pl.DataFrame(
        {"trade_date": sessions, "session_idx": np.arange(len(sessions))},
        schema={"trade_date": pl.Date, "session_idx": pl.Int64},
    )
    regime = pl.DataFrame(
        {"trade_date": sessions, "regime": regime_multiplier(world.cfg, sessions)},
        schema={"trade_date": pl.Date, "regime": pl.Float64},
    )
    grid = (
        world.drivers.select("trade_date", "ticker")
        .join(index, on="trade_date")
        .join(session_cutoffs(sessions), on="trade_date")
        .join(regime, on="trade_date")
        .sort("ticker", "cutoff")
    )
    norm = _norm()
    out = grid
    for column, (source, driver) in ORACLE_SOURCES.items():
        events = (
            deliveries.filter(pl.col("source") == source)
            .select("ticker", pl.col("trade_date").cast(pl.Date), "published_at")
            .join(world.drivers.select("trade_date", "ticker", driver), on=["trade_date", "ticker"])
            .join(index, on="trade_date")
            .select(
                "ticker",
                "published_at",
                pl.col("session_idx").alias("seen_idx"),
                pl.col(driver).alias("seen"),
            )
            .sort("ticker", "published_at")
            .unique(["ticker", "published_at"], keep="last", maintain_order=True)
        )
        seen = grid.select("ticker", "cutoff", "trade_date", "session_idx", "regime").join_asof(
            events,
            left_on="cutoff",
            right_on="published_at",
            by="ticker",
            strategy="backward",
            check_sortedness=False,  # both sorted by (ticker, time) above; polars cannot check within groups
        )
        age = (pl.col("cutoff") - pl.col("published_at")).dt.total_seconds() / 86400.0
        lag = (pl.col("session_idx") - pl.col("seen_idx")).cast(pl.Float64)
        value = DRIVER_LOADINGS[driver] * DRIVER_PERSISTENCE**lag * pl.col("seen") / norm * pl.col("regime")
        usable = pl.col("published_at").is_not_null() & (age <= ages[source])
        seen = seen.select(
            "trade_date", "ticker", pl.when(usable).then(value).otherwise(0.0).fill_null(0.0).alias(column)
        )
        out = out.join(seen, on=["trade_date", "ticker"], how="left")
    from alpha_world.oracle_prices import kalman_oracle

    out = out.join(kalman_oracle(world, deliveries), on=["trade_date", "ticker"], how="left")
    vol = world.universe.select("ticker", "daily_vol")
    planted = world.alpha.select("trade_date", "ticker", "true_alpha", pl.col("alpha_z").alias("planted_z"))
    return (
        out.join(planted, on=["trade_date", "ticker"], how="left")
        .join(vol, on="ticker", how="left")
        .with_columns(pl.sum_horizontal(list(ORACLE_SOURCES)).alias("oracle_z"))
        .with_columns(
            (world.cfg.signal_strength * pl.col("daily_vol") * pl.col("oracle_z")).alias("oracle_alpha")
        )
        .select(
            "trade_date",
            "ticker",
            "oracle_z",
            "oracle_alpha",
            *ORACLE_SOURCES,
            "oracle_all_z",
            "planted_z",
            "true_alpha",
        )
        .sort("trade_date", "ticker")
    )


def oracle_ic(
    oracle: pl.DataFrame, prices: pl.DataFrame, start: date | None = None, end: date | None = None
) -> dict:
    """Mean daily cross-sectional Spearman IC of each signal column against the next-day return (D's close to the
    next session's close, from ``prices``), over trade dates in [start, end].

    Returns ``{"start", "end", <column>: {"ic", "t_stat", "n_days"}}`` for every column of ``SIGNAL_COLUMNS``
    present in ``oracle``. A source's column is 0 for the names it does not cover, so its IC is its contribution
    over the whole cross-section. Days where a column is constant (nothing delivered yet) are skipped.
    """
    fwd = (
        prices.select(pl.col("trade_date").cast(pl.Date), "ticker", "close")
        .sort("ticker", "trade_date")
        .with_columns((pl.col("close").shift(-1).over("ticker") / pl.col("close") - 1.0).alias("fwd_ret_1"))
        .drop_nulls("fwd_ret_1")
    )
    cols = [c for c in SIGNAL_COLUMNS if c in oracle.columns]
    frame = oracle.select("trade_date", "ticker", *cols).join(fwd, on=["trade_date", "ticker"])
    if start is not None:
        frame = frame.filter(pl.col("trade_date") >= start)
    if end is not None:
        frame = frame.filter(pl.col("trade_date") <= end)
    daily = frame.group_by("trade_date").agg(
        [pl.corr(pl.col(c).rank(), pl.col("fwd_ret_1").rank()).alias(c) for c in cols]
    )
    out: dict = {
        "start": str(frame["trade_date"].min()) if frame.height else None,
        "end": str(frame["trade_date"].max()) if frame.height else None,
    }
    for c in cols:
        ics = daily[c].drop_nulls().drop_nans().to_numpy()
        n = len(ics)
        mean = float(ics.mean()) if n else float("nan")
        sd = float(ics.std(ddof=1)) if n > 1 else float("nan")
        t_stat = mean / (sd / math.sqrt(n)) if n > 1 and sd > 0 else float("nan")
        out[c] = {"ic": round(mean, 5), "t_stat": round(t_stat, 3), "n_days": n}
    return out


def write_oracle(world: World, oracle: pl.DataFrame, truth: Path) -> dict:
    """Write ``truth/oracle.parquet`` and ``truth/oracle_ic.json`` (IC over the whole world and over its second
    half, the out-of-sample year of the default demo); returns the JSON document."""
    truth = Path(truth)
    truth.mkdir(parents=True, exist_ok=True)
    oracle.write_parquet(truth / "oracle.parquet")
    sessions = world.sessions
    oos_start = sessions[len(sessions) // 2]
    doc = {
        "signal_strength": world.cfg.signal_strength,
        "regime_break": world.cfg.regime_break.isoformat() if world.cfg.regime_break else None,
        "regime_mode": world.cfg.regime_mode if world.cfg.regime_break else None,
        "oos_start": oos_start.isoformat(),
        "full": oracle_ic(oracle, world.prices),
        "oos": oracle_ic(oracle, world.prices, start=oos_start),
    }
    (truth / "oracle_ic.json").write_text(json.dumps(doc, indent=2, default=str))
    return doc
