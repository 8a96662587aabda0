"""The seeded market simulator: a universe with listings and delistings, factor-model prices calibrated on real
S&P 500 returns, latent alternative-data drivers, and alpha planted with a known strength.

Returns follow   r[i,t] = beta_i * m[t] + s[sector(i),t] + e[i,t] + alpha[i,t-1]
where the planted alpha known at the close of t-1 is  alpha[i,t-1] = k * sigma_i * z[i,t-1]  with
z a fixed unit-variance blend of the latent drivers and k = ``signal_strength``. The information coefficient of
the true alpha against next-day returns is therefore about k; ``signal_strength=0`` is a null world.

A regime break (``regime_break``) tests whether the fund notices a dead or reversed signal: from that session on
the planted alpha is multiplied by -1 (``regime_mode="flip"``) or 0 (``"remove"``); the drivers, and so the
alternative data that measures them, carry on unchanged.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import polars as pl

from partitions.calendar import sessions_from

SECTORS = [
    "Energy",
    "Materials",
    "Industrials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Health Care",
    "Financials",
    "Information Technology",
    "Communication Services",
    "Utilities",
    "Real Estate",
]
COUNTRIES = [
    "US",
    "US",
    "BR",
    "BR",
    "CA",
    "GB",
    "MX",
    "DE",
    "JP",
    "AU",
]  # an international book: 30% country cap
DRIVERS = ["store_traffic", "tank_inventory", "management_tone", "filing_risk", "web_price"]
# How much each latent driver contributes to the planted alpha (signs matter: risk hurts).
DRIVER_LOADINGS = {
    "store_traffic": 0.5,
    "tank_inventory": 0.3,
    "management_tone": 0.5,
    "filing_risk": -0.4,
    "web_price": 0.3,
}
DRIVER_PERSISTENCE = (
    0.97  # AR(1) coefficient: alt-data states move slowly, so a lagged read still carries alpha
)
# Bumped whenever the same seed and size give other prices or drivers (caches of built worlds key on it).
# 2: simple returns centred on DRIFT for every name (was log returns with an Ito drift of -vol^2/2).
SIMULATOR_VERSION = 2
# Every name's daily simple return is centred on this (a small positive drift in price terms, the same for all).
DRIFT = 0.0003


@dataclass(frozen=True)
class WorldConfig:
    tickers: int = 50
    start: date = date(2024, 1, 2)
    days: int = 252
    seed: int = 7
    signal_strength: float = 0.05
    listing_share: float = 0.1  # names that list after the first day
    delisting_share: float = 0.1  # names that delist before the last day
    regime_break: date | None = None  # from this session on the planted alpha is flipped or removed
    regime_mode: Literal["flip", "remove"] = "flip"

    def __post_init__(self) -> None:
        if self.regime_mode not in REGIME_MULTIPLIER:
            raise ValueError(
                f"regime_mode must be one of {sorted(REGIME_MULTIPLIER)}, not {self.regime_mode!r}"
            )


REGIME_MULTIPLIER = {"flip": -1.0, "remove": 0.0}


def regime_multiplier(cfg: WorldConfig, sessions: list[date]) -> np.ndarray:
    """Per session, what the planted alpha is multiplied by: 1 before the regime break, -1 or 0 from it on."""
    out = np.ones(len(sessions))
    if cfg.regime_break is not None:
        after = np.array([d >= cfg.regime_break for d in sessions], dtype=bool)
        out[after] = REGIME_MULTIPLIER[cfg.regime_mode]
    return out


@dataclass
class Calibration:
    daily_vol: float
    avg_corr: float
    market_vol: float
    source: str


@dataclass
class World:
    cfg: WorldConfig
    sessions: list[date]
    universe: pl.DataFrame
    prices: pl.DataFrame
    drivers: pl.DataFrame
    alpha: pl.DataFrame
    calibration: Calibration
    extras: dict = field(default_factory=dict)


def calibrate_on_sp500() -> Calibration:
    """Volatility and correlation levels of real daily returns (skfolio's S&P 500 dataset, shipped in the wheel)."""
    try:
        from skfolio.datasets import load_sp500_dataset

        px = load_sp500_dataset()
        rets = np.log(px).diff().dropna().to_numpy()[-2520:]
        vols = rets.std(axis=0, ddof=1)
        corr = np.corrcoef(rets, rowvar=False)
        n = corr.shape[0]
        avg_corr = float((corr.sum() - n) / (n * (n - 1)))
        market = rets.mean(axis=1)
        return Calibration(
            float(np.median(vols)), avg_corr, float(market.std(ddof=1)), "skfolio sp500 dataset"
        )
    except Exception:  # the package or its data missing: documented long-run levels of US large caps
        return Calibration(0.018, 0.30, 0.011, "fallback constants")


def _tickers(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list(string.ascii_uppercase))
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        k = int(rng.choice([3, 4], p=[0.4, 0.6]))
        t = "".join(rng.choice(letters, k))
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def simulate_world(cfg: WorldConfig) -> World:
    rng = np.random.default_rng(cfg.seed)
    sessions = sessions_from(cfg.start, cfg.days)
    if len(sessions) < cfg.days:
        raise ValueError(f"calendar has only {len(sessions)} sessions after {cfg.start}")
    n, t_len = cfg.tickers, len(sessions)
    cal = calibrate_on_sp500()

    tickers = _tickers(rng, n)
    sector_idx = rng.integers(0, len(SECTORS), n)
    country = rng.choice(COUNTRIES, n)
    # Listings and delistings: no survivorship, dead names keep their history.
    list_i = np.zeros(n, dtype=int)
    delist_i = np.full(n, t_len, dtype=int)  # exclusive
    late = rng.random(n) < cfg.listing_share
    list_i[late] = rng.integers(t_len // 10, max(t_len // 10 + 1, t_len // 2), late.sum())
    dead = (rng.random(n) < cfg.delisting_share) & ~late
    delist_i[dead] = rng.integers(max(t_len // 2, 1), max(t_len // 2 + 1, t_len - 5), dead.sum())
    adv_usd = np.exp(rng.normal(np.log(30e6), 1.4, n))  # median $30M, some below the $1M liquidity floor
    vol_i = cal.daily_vol * np.exp(rng.normal(0, 0.3, n))

    # Factor structure tuned so the average pairwise correlation matches the calibration.
    rho_m = cal.avg_corr * 0.8
    rho_s = cal.avg_corr * 0.6
    beta = np.clip(rng.normal(1.0, 0.25, n), 0.3, 1.8)
    market = rng.standard_normal(t_len) * np.sqrt(rho_m)
    sector_f = rng.standard_normal((t_len, len(SECTORS))) * np.sqrt(rho_s)
    common = beta[None, :] * market[:, None] + sector_f[:, sector_idx]
    idio_var = np.clip(1.0 - beta**2 * rho_m - rho_s, 0.2, None)
    eps = rng.standard_normal((t_len, n)) * np.sqrt(idio_var)[None, :]

    # Latent drivers: stationary AR(1), unit variance.
    phi = DRIVER_PERSISTENCE
    drv = np.empty((len(DRIVERS), t_len, n))
    for k in range(len(DRIVERS)):
        x = np.empty((t_len, n))
        x[0] = rng.standard_normal(n)
        shocks = rng.standard_normal((t_len, n)) * np.sqrt(1 - phi**2)
        for t in range(1, t_len):
            x[t] = phi * x[t - 1] + shocks[t]
        drv[k] = x
    load = np.array([DRIVER_LOADINGS[d] for d in DRIVERS])
    z = np.tensordot(load, drv, axes=1) / np.sqrt((load**2).sum())
    z = z * regime_multiplier(cfg, sessions)[:, None]  # the effective blend: flipped or zero after a break
    alpha = cfg.signal_strength * z  # in units of the name's daily vol, applies to the next day's return

    unit = common + eps
    unit_total_sd = np.sqrt(beta**2 * rho_m + rho_s + idio_var)
    rets = unit / unit_total_sd[None, :] * vol_i[None, :]
    rets[1:] += alpha[:-1] * vol_i[None, :]
    # Simple (arithmetic) daily returns with one small drift for every name: each name's return is symmetric around
    # the same centre, so with no planted alpha nothing ranks tomorrow's returns. (Log returns with an Ito drift of
    # -vol^2/2 gave a name's median return a vol-dependent offset: "null" worlds carried a volatility anomaly, a
    # daily IC of -0.005 for volatility, a quarter of the oracle of a world planted at 0.05.)
    rets = np.clip(rets + DRIFT, -0.9, None)
    close = rng.uniform(15, 250, n)[None, :] * np.cumprod(1.0 + rets, axis=0)
    overnight = rng.standard_normal((t_len, n)) * vol_i[None, :] * 0.3
    open_ = np.empty_like(close)
    open_[0] = close[0] * np.exp(overnight[0])
    open_[1:] = close[:-1] * np.exp(overnight[1:])
    span = np.abs(rng.standard_normal((t_len, n))) * vol_i[None, :] * 0.6
    high = np.maximum(open_, close) * np.exp(span)
    low = np.minimum(open_, close) * np.exp(-span * rng.uniform(0.5, 1.0, (t_len, n)))
    volume = np.round(adv_usd[None, :] / close * np.exp(rng.normal(0, 0.35, (t_len, n))))

    live = (np.arange(t_len)[:, None] >= list_i[None, :]) & (np.arange(t_len)[:, None] < delist_i[None, :])
    ti, ni = np.nonzero(live)
    sess = np.array(sessions, dtype="datetime64[D]")
    tick = np.array(tickers)

    def frame(cols: dict[str, np.ndarray]) -> pl.DataFrame:
        base = {"trade_date": sess[ti], "ticker": tick[ni]}
        return pl.DataFrame({**base, **cols}).with_columns(pl.col("trade_date").cast(pl.Date))

    prices = frame(
        {
            "open": np.round(open_[ti, ni], 4),
            "high": np.round(high[ti, ni], 4),
            "low": np.round(low[ti, ni], 4),
            "close": np.round(close[ti, ni], 4),
            "volume": volume[ti, ni].astype(np.int64),
        }
    )
    drivers = frame({d: drv[k][ti, ni] for k, d in enumerate(DRIVERS)})
    alpha_df = frame({"true_alpha": (alpha * vol_i[None, :])[ti, ni], "alpha_z": z[ti, ni]})
    universe = pl.DataFrame(
        {
            "ticker": tickers,
            "name": [
                f"{t.title()} {['Corp', 'Inc', 'SA', 'Holdings', 'Group'][i % 5]}"
                for i, t in enumerate(tickers)
            ],
            "sector": [SECTORS[i] for i in sector_idx],
            "country": country.tolist(),
            "list_date": [sessions[i] for i in list_i],
            "delist_date": [sessions[i] if i < t_len else None for i in delist_i],
            "adv_usd": np.round(adv_usd, 0),
            "shares_outstanding": np.round(adv_usd / close[0] * rng.uniform(200, 800, n)).astype(np.int64),
            "daily_vol": vol_i,
            "beta": beta,
        }
    ).with_columns(pl.col("list_date").cast(pl.Date), pl.col("delist_date").cast(pl.Date))
    return World(cfg, sessions, universe, prices, drivers, alpha_df, cal)
