"""Demo world v3: the alternative-data vendors' deliveries over the whole world span, driven by the latent drivers.

``write_alt_data(world, home)`` writes into ``home/landing``:

- ``parking/<date>/<store_id>.png|.json``: aerial tiles of the covered retailers' lots, every ``image_every``-th
  session,
- ``tanks/<date>/<farm_id>.png|.json``: oil-tank farms with the sun angle in the sidecar, same cadence,
- ``detector_training/``: a labelled YOLO-format car set (the imagery vendor's annotated sample),
- ``transcripts/<TICKER>_<date>.txt`` and ``filings/<TICKER>_<form>_<date>.txt``: a call and a filing per covered
  name per quarter,

and the vendor web site into ``home/vendor_site`` (a page per covered name every ``web_every``-th session), served
on 127.0.0.1 by ``alpha world serve-site`` or by ``alpha demo`` itself.

Coverage is a world parameter: each source follows a share of the names (parking prefers the retail sectors, tanks
energy and materials, each topped up with other names to reach its share) for the whole span the name is listed.
Cadences anchor on the world's last session, so the newest session always has fresh imagery and pages. Truth
(counts, fills, tones, risks, prices, who was covered, every delivery's publication time) goes to
``home/ground_truth`` only, and so does the oracle (``alpha_world.oracle``): the part of the planted alpha
the delivered data can reveal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from alpha_assets.lib.altdata import point_in_time as pit
from alpha_world.imagery import (
    generate_detector_training_set,
    generate_parking_images,
    generate_tank_images,
)
from alpha_world.oracle import build_oracle, write_oracle
from alpha_world.simulate import World
from alpha_world.texts import generate_filings, generate_transcripts
from alpha_world.vendor_site import build_site

RETAIL_SECTORS = ("Consumer Discretionary", "Consumer Staples")
TANK_SECTORS = ("Energy", "Materials")
DELIVERY_SCHEMA = {"source": pl.String, "ticker": pl.String, "trade_date": pl.Date, "published_at": pit.TS}


@dataclass(frozen=True)
class AltDataConfig:
    """Who each vendor covers and how often it delivers. The defaults size the default demo (100 names x 504
    sessions) so the pipeline's alt-data assets stay well under its time budget on 2 cores."""

    # Share of names each vendor follows. Costs in the pipeline: detector inference per parking image, the
    # shadow analysis per tank image (~10 images/s), one polite request per catalogue page, NLP per document.
    parking_share: float = 0.15
    tank_share: float = 0.05
    web_share: float = 0.1
    text_share: float = 1.0  # earnings calls and filings, one each per quarter
    stores_per_ticker: int = 1
    farms_per_ticker: int = 1
    # Cadences in sessions (5: weekly). Keep them within the pipeline's MAX_AGE_DAYS (7 calendar days for imagery
    # and web) or values go stale between deliveries and read null.
    image_every: int = 5  # parking lots
    tank_every: int = 5
    web_every: int = 5  # catalogue pages
    render_workers: int = 2  # processes drawing the imagery (the files are the same for any number)
    detector_images: int = 96  # labelled training set (a fifth of it is the validation split)
    image_size: int = 320
    # Overrides for small test worlds (None: use the shares and the whole span): exact name counts, and a
    # trailing window of the last N sessions delivered every session (0: no deliveries of that kind).
    retail_tickers: int | None = None
    tank_tickers: int | None = None
    image_sessions: int | None = None
    web_sessions: int | None = None
    text_sessions: int | None = None

    @classmethod
    def text_only(cls) -> AltDataConfig:
        """Calls and filings for every name; no imagery, web or detector training set (the research benchmark's
        and the text tests' worlds: the NLP path without minutes of pictures)."""
        return cls(parking_share=0, tank_share=0, web_share=0, text_share=1.0, detector_images=0)


def _count(share: float, n: int) -> int:
    return 0 if share <= 0 else min(n, max(1, int(round(share * n))))


def _pick(universe: pl.DataFrame, sectors: tuple[str, ...], n: int, seed: int, salt: str) -> list[str]:
    """``n`` tickers: the preferred sectors first, topped up from the rest, each group in a seeded order."""
    rng = np.random.default_rng([seed, *salt.encode()])
    preferred = universe.filter(pl.col("sector").is_in(sectors))["ticker"].sort().to_list()
    rest = universe.filter(~pl.col("sector").is_in(sectors))["ticker"].sort().to_list()
    ordered = [preferred[i] for i in rng.permutation(len(preferred))]
    ordered += [rest[i] for i in rng.permutation(len(rest))]
    return sorted(ordered[:n])


def coverage(world: World, cfg: AltDataConfig) -> pl.DataFrame:
    """Which names each source covers: one row per (source, ticker)."""
    uni, seed, n = world.universe, world.cfg.seed, world.universe.height
    n_retail = _count(cfg.parking_share, n) if cfg.retail_tickers is None else cfg.retail_tickers
    n_energy = _count(cfg.tank_share, n) if cfg.tank_tickers is None else cfg.tank_tickers
    retail = _pick(uni, RETAIL_SECTORS, n_retail, seed, "parking")
    # a name is either a retailer or a tank operator to the imagery vendor, never both
    energy = _pick(uni.filter(~pl.col("ticker").is_in(retail)), TANK_SECTORS, n_energy, seed, "tanks")
    covered = {
        "parking": retail,
        "tanks": energy,
        "web": _pick(uni, (), _count(cfg.web_share, n), seed, "web"),
        "text": _pick(uni, (), _count(cfg.text_share, n), seed, "text"),
    }
    rows = [(source, t) for source, names in covered.items() for t in names]
    return pl.DataFrame(rows, schema={"source": pl.String, "ticker": pl.String}, orient="row")


def _covered(cov: pl.DataFrame, source: str) -> list[str]:
    return cov.filter(pl.col("source") == source)["ticker"].to_list()


def stores_and_farms(world: World, cfg: AltDataConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    cov = coverage(world, cfg)
    stores = pl.DataFrame(
        [(f"S{t}{k + 1:02d}", t) for t in _covered(cov, "parking") for k in range(cfg.stores_per_ticker)],
        schema={"store_id": pl.String, "ticker": pl.String},
        orient="row",
    )
    farms = pl.DataFrame(
        [(f"F{t}{k + 1:02d}", t) for t in _covered(cov, "tanks") for k in range(cfg.farms_per_ticker)],
        schema={"farm_id": pl.String, "ticker": pl.String},
        orient="row",
    )
    return stores, farms


def delivery_days(sessions: list[date], every: int, last_n: int | None = None) -> list[date]:
    """The sessions a vendor delivers on: every ``every``-th session counted back from the last one, or each of
    the last ``last_n`` sessions when that override is set."""
    if last_n is not None:
        return list(sessions[-last_n:]) if last_n > 0 else []
    if every <= 0:
        return []
    last = len(sessions) - 1
    return [d for i, d in enumerate(sessions) if (last - i) % every == 0]


def _image_deliveries(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    # a ticker-day's row is published when its last image is (the imagery assets take the max over sites)
    return (
        frame.with_columns(pl.col("captured_at") + pit.VENDOR_LAG[source])
        .group_by("ticker", "trade_date")
        .agg(pl.col("captured_at").max().alias("published_at"))
        .with_columns(pl.lit(source).alias("source"))
        .select(list(DELIVERY_SCHEMA))
    )


def write_alt_data(
    world: World,
    home: Path,
    cfg: AltDataConfig | None = None,
    after_detector_set: Callable[[], None] | None = None,
) -> dict:
    """Write every alt-data vendor's files for ``world`` under ``home`` and the oracle under its ground truth;
    returns what was written, with the seconds each stage took. The detector's labelled training set is written
    first (it depends on the seed alone) and ``after_detector_set`` is called then: the demo starts training the
    car detector on it while the rest is drawn."""
    cfg = cfg or AltDataConfig()
    home = Path(home)
    landing, truth = home / "landing", home / "ground_truth"
    seed, sessions = world.cfg.seed, world.sessions
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 2)
        clock = now

    cov = coverage(world, cfg)
    stores, farms = stores_and_farms(world, cfg)
    truth.mkdir(parents=True, exist_ok=True)
    cov.write_parquet(truth / "coverage.parquet")
    stores.write_parquet(truth / "stores.parquet")
    farms.write_parquet(truth / "farms.parquet")
    drivers = world.drivers
    deliveries = [pl.DataFrame(schema=DELIVERY_SCHEMA)]

    if cfg.detector_images:
        generate_detector_training_set(
            landing / "detector_training",
            cfg.detector_images,
            seed,
            size=cfg.image_size,
            workers=cfg.render_workers,
        )
    lap("detector_training_set")
    if cfg.detector_images and after_detector_set is not None:
        after_detector_set()

    image_days = delivery_days(sessions, cfg.image_every, cfg.image_sessions)
    tank_days = delivery_days(sessions, cfg.tank_every, cfg.image_sessions)
    parking = generate_parking_images(
        landing,
        truth,
        stores,
        image_days,
        drivers.select("trade_date", "ticker", "store_traffic"),
        seed,
        size=cfg.image_size,
        workers=cfg.render_workers,
    )
    deliveries.append(_image_deliveries(parking, "parking"))
    lap("parking_images")
    tanks = generate_tank_images(
        landing,
        truth,
        farms,
        tank_days,
        drivers.select("trade_date", "ticker", "tank_inventory"),
        seed,
        size=cfg.image_size,
        workers=cfg.render_workers,
    )
    deliveries.append(_image_deliveries(tanks, "tanks"))
    lap("tank_images")

    text_days = list(sessions[-cfg.text_sessions :]) if cfg.text_sessions else list(sessions)
    text_universe = world.universe.filter(pl.col("ticker").is_in(_covered(cov, "text")))
    calls = generate_transcripts(landing, truth, text_universe, drivers, text_days, seed)
    filings = generate_filings(landing, truth, text_universe, drivers, text_days, seed)
    for source, frame, day_col in (("transcripts", calls, "call_date"), ("filings", filings, "filing_date")):
        deliveries.append(
            frame.select(
                pl.lit(source).alias("source"), "ticker", pl.col(day_col).alias("trade_date"), "published_at"
            )
        )
    lap("texts")

    web_days = delivery_days(sessions, cfg.web_every, cfg.web_sessions)
    web_drivers = drivers.filter(pl.col("ticker").is_in(_covered(cov, "web")))
    pages = build_site(home / "vendor_site", world.universe, web_drivers, web_days, seed, truth=truth)
    page_days = pages.select("trade_date", "ticker").unique()
    # the demo crawls history as a backfill: a page is dated at its session's scheduled crawl time
    web_pub = [pit.published_at("web", pit.event_time_of("web", d)) for d in page_days["trade_date"]]
    deliveries.append(
        page_days.with_columns(
            pl.lit("web").alias("source"), pl.Series("published_at", web_pub, dtype=pit.TS)
        )
    )
    lap("web_site")

    delivered = pl.concat([d.select(list(DELIVERY_SCHEMA)).cast(DELIVERY_SCHEMA) for d in deliveries]).sort(
        "source", "ticker", "trade_date"
    )
    delivered.write_parquet(truth / "deliveries.parquet")
    oracle = build_oracle(world, delivered)
    ic = write_oracle(world, oracle, truth)
    lap("oracle")
    summary = {
        "config": asdict(cfg),
        "covered_names": {s: len(_covered(cov, s)) for s in ("parking", "tanks", "web", "text")},
        "stores": stores.height,
        "farms": farms.height,
        "image_days": len(image_days),
        "tank_days": len(tank_days),
        "parking_images": parking.height,
        "tank_images": tanks.height,
        "transcripts": calls.height,
        "filings": filings.height,
        "web_days": len(web_days),
        "web_pages": page_days.height,
        "oracle_ic_oos": ic["oos"]["oracle_z"],
        "seconds": seconds,
    }
    (truth / "alt_data.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
