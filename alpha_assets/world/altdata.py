"""Demo world v2: the alternative-data vendors' deliveries, driven by the world's latent drivers.

``write_alt_data(world, home)`` writes into ``home/landing``:

- ``parking/<date>/<store_id>.png|.json``: aerial tiles of retailers' lots (the last ``image_sessions``),
- ``tanks/<date>/<farm_id>.png|.json``: oil-tank farms with the sun angle in the sidecar,
- ``detector_training/``: a labelled YOLO-format car set (the imagery vendor's annotated sample),
- ``transcripts/<TICKER>_<date>.txt`` and ``filings/<TICKER>_<form>_<date>.txt`` (the last ``text_sessions``),

and the vendor web site into ``home/vendor_site`` (the last ``web_sessions``), served on 127.0.0.1 by
``alpha world serve-site`` or by ``alpha demo`` itself. Truth (counts, fills, tones, risks, prices) goes to
``home/ground_truth`` only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from alpha_assets.world.imagery import (
    generate_detector_training_set,
    generate_parking_images,
    generate_tank_images,
)
from alpha_assets.world.simulate import World
from alpha_assets.world.texts import generate_filings, generate_transcripts
from alpha_assets.world.vendor_site import build_site

RETAIL_SECTORS = ("Consumer Discretionary", "Consumer Staples")
TANK_SECTORS = ("Energy", "Materials")


@dataclass(frozen=True)
class AltDataConfig:
    image_sessions: int = 15  # imagery covers the last N sessions (CPU inference is the cost)
    retail_tickers: int = 6
    stores_per_ticker: int = 2
    tank_tickers: int = 4
    farms_per_ticker: int = 1
    text_sessions: int | None = None  # None: calls and filings over the whole world
    web_sessions: int = 10
    detector_images: int = 96  # labelled training set (a fifth of it is the validation split)
    image_size: int = 320


def _pick(universe: pl.DataFrame, sectors: tuple[str, ...], n: int) -> list[str]:
    """Tickers from the preferred sectors first (alphabetical), topped up from the rest."""
    preferred = universe.filter(pl.col("sector").is_in(sectors))["ticker"].sort().to_list()
    rest = universe.filter(~pl.col("sector").is_in(sectors))["ticker"].sort().to_list()
    return (preferred + rest)[:n]


def stores_and_farms(world: World, cfg: AltDataConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    retail = _pick(world.universe, RETAIL_SECTORS, cfg.retail_tickers)
    energy = _pick(world.universe.filter(~pl.col("ticker").is_in(retail)), TANK_SECTORS, cfg.tank_tickers)
    stores = pl.DataFrame(
        [(f"S{t}{k + 1:02d}", t) for t in retail for k in range(cfg.stores_per_ticker)],
        schema={"store_id": pl.String, "ticker": pl.String},
        orient="row",
    )
    farms = pl.DataFrame(
        [(f"F{t}{k + 1:02d}", t) for t in energy for k in range(cfg.farms_per_ticker)],
        schema={"farm_id": pl.String, "ticker": pl.String},
        orient="row",
    )
    return stores, farms


def write_alt_data(world: World, home: Path, cfg: AltDataConfig | None = None) -> dict:
    """Write every alt-data vendor's files for ``world`` under ``home``; returns what was written."""
    cfg = cfg or AltDataConfig()
    home = Path(home)
    landing, truth = home / "landing", home / "ground_truth"
    seed = world.cfg.seed
    stores, farms = stores_and_farms(world, cfg)
    truth.mkdir(parents=True, exist_ok=True)
    stores.write_parquet(truth / "stores.parquet")
    farms.write_parquet(truth / "farms.parquet")

    image_days = list(world.sessions[-cfg.image_sessions :]) if cfg.image_sessions else []
    drivers = world.drivers
    if image_days:
        generate_parking_images(
            landing, truth, stores, image_days, drivers.select("trade_date", "ticker", "store_traffic"),
            seed, size=cfg.image_size,
        )  # fmt: skip
        generate_tank_images(
            landing, truth, farms, image_days, drivers.select("trade_date", "ticker", "tank_inventory"),
            seed, size=cfg.image_size,
        )  # fmt: skip
    if cfg.detector_images:
        generate_detector_training_set(
            landing / "detector_training", cfg.detector_images, seed, size=cfg.image_size
        )
    text_days = list(world.sessions[-cfg.text_sessions :]) if cfg.text_sessions else list(world.sessions)
    calls = generate_transcripts(landing, truth, world.universe, drivers, text_days, seed)
    filings = generate_filings(landing, truth, world.universe, drivers, text_days, seed)
    web_days = list(world.sessions[-cfg.web_sessions :]) if cfg.web_sessions else []
    pages = build_site(home / "vendor_site", world.universe, drivers, web_days, seed, truth=truth)
    return {
        "config": asdict(cfg),
        "stores": stores.height,
        "farms": farms.height,
        "image_days": len(image_days),
        "transcripts": calls.height,
        "filings": filings.height,
        "web_pages": pages.select("trade_date", "ticker").unique().height,
    }
