"""The oracle with every delivered channel: the alt-data deliveries *and* the price history.

The planted alpha is persistent (AR(1) drivers), so it also leaves a trace in past returns: a name whose alpha is
high has had higher returns lately. A model fed price features can learn that trace, so an oracle that only counts
alt deliveries understates what is learnable (on a strong world the models beat it by 2-3x). This oracle is the
Bayesian best guess of the planted blend ``z[i,t]`` given everything delivered by t's cut-off, from a Kalman filter
per name over the five drivers:

    state     s_t = phi * s_{t-1} + w_t,            w_t ~ N(0, (1 - phi^2) I)        (the simulator's law)
    returns   u_t = k * m_{t-1} * (l . s_{t-1}) / |l| + e_t, e_t ~ N(0, R)            u: the day's return in units
                                                                                      of the name's vol, demeaned
                                                                                      across names (market out)
    alt data  y   = phi^(-lag) * ... an observation of driver j made ``lag`` sessions before its use, taken as
              phi^lag * y ~ s_t[j] + N(0, 1 - phi^(2 lag))                          (exact when the prior is flat)

with ``m`` the regime multiplier and ``l`` the loadings. ``oracle_all_z[t]`` = m_t * (l . E[s_t]) / |l|: the alpha of
the next day's return as the world's own model would forecast it from what was delivered. It is still an upper
bound in one way (it knows the world's law, loadings and regime) and ignores the price factors it cannot see (R is
the variance of the demeaned unit returns).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from alpha_assets.lib.altdata.point_in_time import session_cutoffs
from alpha_world.simulate import DRIVER_LOADINGS, DRIVER_PERSISTENCE, DRIVERS, World, regime_multiplier

SOURCE_DRIVER = {
    "parking": "store_traffic",
    "tanks": "tank_inventory",
    "transcripts": "management_tone",
    "filings": "filing_risk",
    "web": "web_price",
}


def _wide(frame: pl.DataFrame, value: str, sessions, tickers) -> np.ndarray:
    w = frame.pivot(on="ticker", index="trade_date", values=value, aggregate_function="first")
    w = pl.DataFrame({"trade_date": sessions}, schema={"trade_date": pl.Date}).join(
        w, on="trade_date", how="left"
    )
    return np.column_stack(
        [w[t].to_numpy().astype(float) if t in w.columns else np.full(len(sessions), np.nan) for t in tickers]
    )


def kalman_oracle(world: World, deliveries: pl.DataFrame) -> pl.DataFrame:
    """trade_date, ticker, oracle_all_z for every live ticker-day (see the module docstring)."""
    sessions = list(world.sessions)
    tickers = world.universe["ticker"].to_list()
    t_len, n, k = len(sessions), len(tickers), len(DRIVERS)
    phi = DRIVER_PERSISTENCE
    load = np.array([DRIVER_LOADINGS[d] for d in DRIVERS])
    norm = math.sqrt((load**2).sum())
    mult = regime_multiplier(world.cfg, sessions)
    vol = dict(zip(world.universe["ticker"], world.universe["daily_vol"], strict=True))
    close = _wide(world.prices, "close", sessions, tickers)
    unit = np.full_like(close, np.nan)
    unit[1:] = (close[1:] / close[:-1] - 1) / np.array([vol[t] for t in tickers])[None, :]
    unit[1:] -= np.nanmean(unit[1:], axis=1, keepdims=True)  # the first session has no return (all NaN)
    r_var = float(np.nanvar(unit)) or 1.0
    # alt observations: the session whose cut-off first sees them, the driver, the value, how old it is by then
    cut = session_cutoffs(sessions).with_row_index("use_idx")
    index = {d: i for i, d in enumerate(sessions)}
    tick_idx = {t: i for i, t in enumerate(tickers)}
    obs: dict[int, list[tuple[int, int, float, int]]] = {}
    if deliveries.height:
        d = deliveries.select("source", "ticker", pl.col("trade_date").cast(pl.Date), "published_at")
        d = d.sort("published_at").join_asof(
            cut.sort("cutoff").select("use_idx", "cutoff"),
            left_on="published_at",
            right_on="cutoff",
            strategy="forward",
        )
        drv = world.drivers
        for src, driver in SOURCE_DRIVER.items():
            part = d.filter(pl.col("source") == src).join(
                drv.select("trade_date", "ticker", driver), on=["trade_date", "ticker"]
            )
            j = DRIVERS.index(driver)
            for r in part.drop_nulls("use_idx").iter_rows(named=True):
                seen = index[r["trade_date"]]
                obs.setdefault(int(r["use_idx"]), []).append(
                    (tick_idx[r["ticker"]], j, float(r[driver]), int(r["use_idx"]) - seen)
                )
    m = np.zeros((n, k))
    p = np.broadcast_to(np.eye(k), (n, k, k)).copy()
    out = np.zeros((t_len, n))
    k_sig = world.cfg.signal_strength
    for t in range(t_len):
        if t > 0 and k_sig > 0:  # the day's return informs yesterday's state
            h = k_sig * mult[t - 1] * load / norm
            y = unit[t]
            ok = np.isfinite(y)
            ph = p @ h  # (n, k)
            s = ph @ h + r_var
            gain = ph / s[:, None]
            innov = np.where(ok, y - m @ h, 0.0)
            m = m + gain * innov[:, None] * ok[:, None]
            p = p - ok[:, None, None] * gain[:, :, None] * ph[:, None, :]
        m = phi * m
        p = phi**2 * p + (1 - phi**2) * np.eye(k)[None]
        for i, j, value, lag in obs.get(t, []):
            r_obs = max(1 - phi ** (2 * lag), 1e-6)
            s = p[i, j, j] + r_obs
            gain = p[i, :, j] / s
            m[i] = m[i] + gain * (phi**lag * value - m[i, j])
            p[i] = p[i] - np.outer(gain, p[i, j, :])
        out[t] = mult[t] * (m @ load) / norm
    frame = pl.DataFrame(
        {
            "trade_date": np.repeat(np.array(sessions, dtype="datetime64[D]"), n),
            "ticker": np.tile(np.array(tickers), t_len),
            "oracle_all_z": out.ravel(),
        }
    )
    live = world.drivers.select("trade_date", "ticker")
    return live.join(
        frame.with_columns(pl.col("trade_date").cast(pl.Date)), on=["trade_date", "ticker"], how="left"
    )
