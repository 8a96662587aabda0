"""The oracle: the part of the planted alpha the delivered alt data can reveal at each day's cut-off, its IC, and
the regime break that flips or removes the planted alpha (and the oracle with it)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.altdata import point_in_time as pit
from alpha_world.altdata import DELIVERY_SCHEMA, AltDataConfig, write_alt_data
from alpha_world.oracle import ORACLE_SOURCES, build_oracle, oracle_ic
from alpha_world.simulate import (
    DRIVER_LOADINGS,
    DRIVER_PERSISTENCE,
    DRIVERS,
    WorldConfig,
    simulate_world,
)
from alpha_world.texts import call_published_at

START = date(2024, 1, 2)
NORM = math.sqrt(sum(DRIVER_LOADINGS[d] ** 2 for d in DRIVERS))


def _deliveries(rows: list[tuple[str, str, date, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=DELIVERY_SCHEMA, orient="row")


def _quarterly_deliveries(world, every: int = 63) -> pl.DataFrame:
    """Every name, every source, once a quarter on a per-name phase, published the evening of the session."""
    rows = []
    tickers = world.universe["ticker"].to_list()
    for k, ticker in enumerate(tickers):
        for source, _ in ORACLE_SOURCES.values():
            for d in world.sessions[k % every :: every]:
                rows.append((source, ticker, d, datetime(d.year, d.month, d.day, 20, 0, tzinfo=UTC)))
    return _deliveries(rows)


def _value(frame: pl.DataFrame, day: date, ticker: str, column: str) -> float:
    return frame.filter((pl.col("trade_date") == day) & (pl.col("ticker") == ticker))[column].item()


def test_oracle_ic_is_positive_and_below_the_full_planted_alphas() -> None:
    world = simulate_world(WorldConfig(tickers=60, start=START, days=300, seed=21, signal_strength=0.1))
    oracle = build_oracle(world, _quarterly_deliveries(world))
    ic = oracle_ic(oracle, world.prices)
    assert ic["oracle_z"]["t_stat"] > 3.0
    assert 0.0 < ic["oracle_z"]["ic"] < ic["planted_z"]["ic"]
    assert ic["oracle_z"]["n_days"] == 299  # the last session has no next-day return
    # each source's column is its share of the combined oracle
    total = (
        oracle.select(pl.sum_horizontal(list(ORACLE_SOURCES)) - pl.col("oracle_z")).to_series().abs().max()
    )
    assert total < 1e-12
    daily_vol = dict(world.universe.select("ticker", "daily_vol").iter_rows())
    row = oracle.filter(pl.col("oracle_z") != 0).row(0, named=True)
    assert row["oracle_alpha"] == pytest.approx(0.1 * daily_vol[row["ticker"]] * row["oracle_z"])


def test_oracle_ic_of_a_null_world_is_within_noise() -> None:
    world = simulate_world(WorldConfig(tickers=60, start=START, days=300, seed=21, signal_strength=0.0))
    oracle = build_oracle(world, _quarterly_deliveries(world))
    ic = oracle_ic(oracle, world.prices)
    assert abs(ic["oracle_z"]["t_stat"]) < 3.0 and abs(ic["planted_z"]["t_stat"]) < 3.0
    assert (oracle["oracle_alpha"] == 0).all() and (oracle["true_alpha"] == 0).all()


def test_oracle_ic_covers_only_the_requested_dates() -> None:
    world = simulate_world(WorldConfig(tickers=30, start=START, days=120, seed=4))
    oracle = build_oracle(world, _quarterly_deliveries(world, every=10))
    lo, hi = world.sessions[60], world.sessions[89]
    ic = oracle_ic(oracle, world.prices, start=lo, end=hi)
    assert (ic["start"], ic["end"]) == (str(lo), str(hi)) and ic["oracle_z"]["n_days"] == 30


def test_oracle_on_day_d_uses_only_observations_published_by_ds_cutoff() -> None:
    world = simulate_world(WorldConfig(tickers=8, start=START, days=30, seed=3))
    s = world.sessions
    a, b = sorted(world.drivers.filter(pl.col("trade_date") == s[0])["ticker"].to_list())[:2]
    d = s[10]
    evening = datetime(d.year, d.month, d.day, 21, 59, tzinfo=UTC)  # a minute before D's cut-off
    after_close = datetime(d.year, d.month, d.day, 22, 30, tzinfo=UTC)  # a filing of D: usable from D+1
    oracle = build_oracle(
        world, _deliveries([("transcripts", a, d, evening), ("filings", b, d, after_close)])
    )
    drivers = world.drivers

    def driver(ticker: str, day: date, name: str) -> float:
        return _value(drivers, day, ticker, name)

    tone = driver(a, d, "management_tone")
    assert _value(oracle, s[9], a, "oracle_calls") == 0.0  # nothing before the call
    assert _value(oracle, d, a, "oracle_calls") == pytest.approx(
        DRIVER_LOADINGS["management_tone"] * tone / NORM
    )
    # three sessions later the read has decayed by phi^3
    expect = DRIVER_LOADINGS["management_tone"] * DRIVER_PERSISTENCE**3 * tone / NORM
    assert _value(oracle, s[13], a, "oracle_calls") == pytest.approx(expect)
    risk = driver(b, d, "filing_risk")
    assert _value(oracle, d, b, "oracle_filings") == 0.0  # published after D's cut-off
    expect = DRIVER_LOADINGS["filing_risk"] * DRIVER_PERSISTENCE * risk / NORM
    assert _value(oracle, s[11], b, "oracle_filings") == pytest.approx(expect)
    # every other name and source reveals nothing
    others = oracle.filter(~pl.col("ticker").is_in([a, b]))
    assert (others["oracle_z"] == 0).all()


def test_a_value_older_than_the_pipelines_maximum_age_reveals_nothing() -> None:
    world = simulate_world(WorldConfig(tickers=5, start=START, days=30, seed=3))
    s = world.sessions
    ticker = world.drivers.filter(pl.col("trade_date") == s[0])["ticker"][0]
    d = s[2]
    oracle = build_oracle(
        world, _deliveries([("parking", ticker, d, datetime(d.year, d.month, d.day, 20, tzinfo=UTC))])
    )
    cutoffs = {day: pit.asof_cutoff(day) for day in s}
    published = datetime(d.year, d.month, d.day, 20, tzinfo=UTC)
    for day in s[2:15]:
        fresh = (cutoffs[day] - published) <= timedelta(days=pit.MAX_AGE_DAYS["parking"])
        assert (_value(oracle, day, ticker, "oracle_parking") != 0.0) == fresh


def test_calls_are_dated_by_their_end_plus_the_vendor_lag_like_the_pipeline(tmp_path) -> None:
    from alpha_assets.altdata.text_assets import call_end_time

    day = date(2024, 1, 10)  # Eastern standard time: UTC-5
    for header, expect in (
        ("8:30 AM ET", datetime(2024, 1, 10, 17, 30, tzinfo=UTC)),
        ("4:30 PM ET", datetime(2024, 1, 11, 1, 30, tzinfo=UTC)),
    ):
        text = f"Acme (ACM) Q4 2023 Earnings Call Transcript\nDate: {day}\nCall time: {header}\n\nPrepared Remarks\n"
        assert call_published_at(text, day) == expect
        path = tmp_path / "ACM_2024-01-10.txt"
        path.write_text(text)
        assert call_end_time(path, day) + pit.VENDOR_LAG["transcripts"] == expect


def test_names_no_vendor_covers_have_a_zero_oracle(tmp_path) -> None:
    world = simulate_world(WorldConfig(tickers=20, start=START, days=70, seed=8))
    cfg = AltDataConfig(
        parking_share=0.1,
        tank_share=0.05,
        web_share=0.2,
        text_share=0.3,
        image_every=35,
        tank_every=70,
        web_every=5,
        detector_images=0,
        render_workers=1,
    )
    write_alt_data(world, tmp_path, cfg)
    oracle = pl.read_parquet(tmp_path / "ground_truth" / "oracle.parquet")
    covered = set(pl.read_parquet(tmp_path / "ground_truth" / "coverage.parquet")["ticker"])
    assert len(covered) < 20
    assert (oracle.filter(~pl.col("ticker").is_in(sorted(covered)))["oracle_z"] == 0).all()
    assert (oracle.filter(pl.col("ticker").is_in(sorted(covered)))["oracle_z"] != 0).any()
    web = set(
        pl.read_parquet(tmp_path / "ground_truth" / "coverage.parquet").filter(pl.col("source") == "web")[
            "ticker"
        ]
    )
    assert (oracle.filter(~pl.col("ticker").is_in(sorted(web)))["oracle_web"] == 0).all()


@pytest.mark.parametrize("mode, factor", [("flip", -1.0), ("remove", 0.0)])
def test_a_regime_break_flips_or_removes_the_planted_alpha_and_the_oracle_from_its_date(mode, factor) -> None:
    base_cfg = WorldConfig(tickers=15, start=START, days=60, seed=12, signal_strength=0.1)
    base = simulate_world(base_cfg)
    cut = base.sessions[30]
    broken = simulate_world(WorldConfig(**{**base_cfg.__dict__, "regime_break": cut, "regime_mode": mode}))
    joined = base.alpha.join(broken.alpha, on=["trade_date", "ticker"], suffix="_broken")
    before, after = joined.filter(pl.col("trade_date") < cut), joined.filter(pl.col("trade_date") >= cut)
    np.testing.assert_array_equal(before["true_alpha_broken"], before["true_alpha"])
    np.testing.assert_allclose(after["true_alpha_broken"], factor * after["true_alpha"])
    assert after["true_alpha"].abs().sum() > 0
    # prices before the break are untouched; the drivers (what vendors measure) never change
    assert base.drivers.equals(broken.drivers)
    first = base.prices.filter(pl.col("trade_date") <= cut)
    assert first.equals(broken.prices.filter(pl.col("trade_date") <= cut))
    deliveries = _quarterly_deliveries(base, every=7)
    o_base, o_broken = build_oracle(base, deliveries), build_oracle(broken, deliveries)
    j = o_base.join(o_broken, on=["trade_date", "ticker"], suffix="_broken")
    pre, post = j.filter(pl.col("trade_date") < cut), j.filter(pl.col("trade_date") >= cut)
    np.testing.assert_array_equal(pre["oracle_z_broken"], pre["oracle_z"])
    np.testing.assert_allclose(post["oracle_z_broken"], factor * post["oracle_z"])


def test_an_unknown_regime_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="regime_mode"):
        WorldConfig(regime_break=START, regime_mode="invert")  # type: ignore[arg-type]


def test_world_generate_and_demo_take_a_regime_break_and_default_to_a_two_year_hundred_name_world() -> None:
    from alpha_assets.cli import build_parser

    parser = build_parser()
    gen = parser.parse_args(
        ["world", "generate", "--out", "w", "--regime-break", "2025-06-02", "--regime-mode", "remove"]
    )
    assert (gen.regime_break, gen.regime_mode) == ("2025-06-02", "remove")
    demo = parser.parse_args(["demo"])
    assert (demo.tickers, demo.days, demo.regime_break, demo.regime_mode) == (100, 504, None, "flip")
    assert demo.signal_strength == 0.1
