"""The demo world's text and web vendors: files, truth, seeding, and the latent drivers showing through the
pipeline's own readers (transcript sentiment, filing features, product pages)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr

from alpha_assets.lib.altdata.nlp import (
    SentimentModel,
    load_training_sentences,
    read_filing,
    read_transcript,
    score_transcripts,
)
from alpha_assets.lib.altdata.nlp.filings import filing_features_frame
from alpha_assets.lib.altdata.web import parse_product_page
from alpha_world import texts
from alpha_world.texts import generate_filings, generate_transcripts
from alpha_world.vendor_site import SiteFaults, build_site, serve_site

TICKERS = ["ALFA", "BRVO", "CHRL", "DLTA", "ECHO", "FXT", "GOLF", "HTL"]
SECTORS = [
    "Energy",
    "Financials",
    "Health Care",
    "Utilities",
    "Industrials",
    "Materials",
    "Real Estate",
    "Other",
]


def _sessions(n: int) -> list[date]:
    out, d = [], date(2024, 1, 2)
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def _world(n_sessions: int, seed: int = 11) -> tuple[pl.DataFrame, pl.DataFrame, list[date]]:
    sessions = _sessions(n_sessions)
    rng = np.random.default_rng(seed)
    universe = pl.DataFrame(
        {"ticker": TICKERS, "name": [f"{t.title()} Corp" for t in TICKERS], "sector": SECTORS}
    )
    rows = []
    for ticker in TICKERS:
        state = rng.standard_normal(3)
        for i, day in enumerate(sessions):
            state = 0.97 * state + np.sqrt(1 - 0.97**2) * rng.standard_normal(3)
            if ticker == "HTL" and i >= n_sessions // 2:
                continue  # delisted half-way: no rows, so no more calls or filings
            rows.append((day, ticker, *map(float, state)))
    drivers = pl.DataFrame(
        rows, schema=["trade_date", "ticker", "management_tone", "filing_risk", "web_price"], orient="row"
    )
    return universe, drivers, sessions


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_world")
    universe, drivers, sessions = _world(252)
    calls = generate_transcripts(root / "landing", root / "truth", universe, drivers, sessions, seed=3)
    filings = generate_filings(root / "landing", root / "truth", universe, drivers, sessions, seed=3)
    return root, calls, filings, drivers, sessions


def test_transcripts_are_quarterly_named_by_ticker_and_date_and_only_for_live_names(year):
    root, calls, _, drivers, sessions = year
    files = sorted(p.name for p in (root / "landing" / "transcripts").iterdir())
    assert files == sorted(calls["file"].to_list())
    assert all(re.fullmatch(r"[A-Z]+_\d{4}-\d{2}-\d{2}\.txt", f) for f in files)
    per_ticker = calls.group_by("ticker").len().sort("ticker")
    # a phase under 63 sessions fits four calls in 252 sessions; HTL delists after 126, so two
    assert dict(per_ticker.iter_rows()) == {t: (2 if t == "HTL" else 4) for t in TICKERS}
    live = drivers.filter(pl.col("ticker") == "HTL")["trade_date"].max()
    assert calls.filter(pl.col("ticker") == "HTL")["call_date"].max() <= live
    gaps = (
        calls.sort("ticker", "call_date")
        .group_by("ticker")
        .agg(pl.col("call_date").diff().dt.total_days().min())
    )
    assert gaps["call_date"].drop_nulls().min() >= 80  # about a quarter apart
    assert len(set(calls["call_date"].dt.month().to_list())) >= 6  # spread over the year, not one season


def test_transcript_has_header_both_sections_and_the_four_roles(year):
    root, calls, _, _, _ = year
    first = calls.row(0, named=True)
    path = root / "landing" / "transcripts" / first["file"]
    text = path.read_text()
    assert f"Ticker: {first['ticker']}" in text and f"Date: {first['call_date'].isoformat()}" in text
    assert (
        "Call time:" in text and "\nPrepared Remarks\n" in text and "\nQuestion-and-Answer Session\n" in text
    )
    parsed = read_transcript(path)
    assert parsed.ticker == first["ticker"] and parsed.call_date == first["call_date"]
    roles = set(parsed.speakers.values())
    assert {"CEO", "CFO", "Analyst", "Operator"} <= roles
    assert {t.role for t in parsed.sections["qa"]} >= {"Analyst", "Operator"}
    management = first["n_negative"] + first["n_neutral"] + first["n_positive"]
    assert len([s for s in parsed.sentences if s.role in ("CEO", "CFO")]) == management


def test_truth_files_hold_the_latent_tone_and_risk_of_every_document(year):
    root, calls, filings, drivers, _ = year
    tone = pl.read_parquet(root / "truth" / "transcript_tone.parquet")
    risk = pl.read_parquet(root / "truth" / "filing_risk.parquet")
    assert tone.equals(calls) and risk.equals(filings)
    joined = tone.join(
        drivers.rename({"trade_date": "call_date"}), on=["ticker", "call_date"], how="left", suffix="_driver"
    )
    np.testing.assert_allclose(joined["management_tone"], joined["management_tone_driver"])
    # more positive tone, more positive sentences drawn
    share = (tone["n_positive"] - tone["n_negative"]) / (
        tone["n_positive"] + tone["n_negative"] + tone["n_neutral"]
    )
    assert spearmanr(tone["management_tone"], share).statistic > 0.7


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path):
    universe, drivers, sessions = _world(70)
    out = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate_transcripts(tmp_path / name, tmp_path / f"truth_{name}", universe, drivers, sessions, seed)
        generate_filings(tmp_path / name, tmp_path / f"truth_{name}", universe, drivers, sessions, seed)
        out[name] = {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*.txt")}
    assert out["a"] == out["b"]
    assert out["a"] != out["c"]


def test_world_phrase_templates_are_kept_apart_from_the_shipped_training_sentences():
    training, _ = load_training_sentences()

    def shingles(sentence: str, n: int = 5) -> set[tuple[str, ...]]:
        tokens = re.findall(r"[a-z]+", sentence.lower())
        return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}

    pools = (texts.POSITIVE_PHRASES, texts.NEUTRAL_PHRASES, texts.NEGATIVE_PHRASES, texts.ANALYST_QUESTIONS)
    world = [template for pool in pools for template in pool]
    world_grams = set().union(*(shingles(re.sub(r"\{\w+\}", " ", w)) for w in world))
    assert not {s.lower() for s in training} & {w.lower() for w in world}
    overlapping = [s for s in training if shingles(s) & world_grams]
    # a few stock phrases ("earnings per share", "basis points from a year ago") are shared by any two sets of
    # financial sentences; whole sentence frames are not
    assert len(overlapping) <= 0.03 * len(training), overlapping


def test_filings_name_form_and_date_and_their_risk_factors_grow_with_latent_risk(year):
    root, _, filings, _, _ = year
    assert set(filings["form"]) == {"10-K", "10-Q"}
    assert (filings.group_by("ticker").agg((pl.col("form") == "10-K").sum())["form"] <= 1).all()
    assert all(re.fullmatch(r"[A-Z]+_10-[KQ]_\d{4}-\d{2}-\d{2}\.txt", name) for name in filings["file"])
    features, errors = filing_features_frame(sorted((root / "landing" / "filings").iterdir()))
    assert not errors and features.height == filings.height
    joined = features.join(
        filings, left_on=["ticker", "filed", "form"], right_on=["ticker", "filing_date", "form"]
    )
    assert joined.height == filings.height
    assert (joined["risk_factors_words"] > 0).all() and (joined["mdna_words"] > 0).all()
    # a 10-K carries about twice the risk factors of a 10-Q: compare like with like
    per_form = joined["risk_factors_words"].to_numpy() / np.where(joined["form"] == "10-K", 2.0, 1.0)
    rho_len = spearmanr(joined["filing_risk"], per_form).statistic
    rho_neg = spearmanr(joined["filing_risk"], joined["mdna_negative_terms"]).statistic
    print(
        f"rank correlation with filing_risk: risk-factor length {rho_len:.2f}, MD&A negative terms {rho_neg:.2f}"
    )
    assert rho_len > 0.5 and rho_neg > 0.5
    # every filing after a company's first is compared with the one before it
    assert (
        joined.group_by("ticker")
        .agg(pl.col("risk_factors_similarity").is_nan().sum())["risk_factors_similarity"]
        .max()
        == 1
    )


def test_every_heading_style_the_world_writes_is_parsed(tmp_path):
    universe, drivers, sessions = _world(130)
    generate_filings(tmp_path, tmp_path / "truth", universe, drivers, sessions, seed=9)
    for path in (tmp_path / "filings").iterdir():
        _, parsed = read_filing(path)
        assert set(parsed.sections) == {"risk_factors", "mdna"}, path.name


@pytest.mark.slow
def test_call_sentiment_rises_with_the_latent_management_tone(year, tmp_path_factory):
    root, calls, _, _, _ = year
    model = SentimentModel.default(cache_dir=tmp_path_factory.getbasetemp() / "nlp_head_cache")
    frame, errors = score_transcripts(model, sorted((root / "landing" / "transcripts").iterdir()))
    assert not errors
    joined = frame.join(calls, left_on=["ticker", "call_date"], right_on=["ticker", "call_date"])
    assert joined.height == calls.height
    rho = spearmanr(joined["management_tone"], joined["call_sentiment"]).statistic
    rho_mgmt = spearmanr(joined["management_tone"], joined["management_sentiment"]).statistic
    print(f"rank correlation of call sentiment with latent tone over {joined.height} calls: {rho:.2f}")
    assert rho > 0.5 and rho_mgmt > 0.5


def test_call_sentiment_of_a_few_calls_orders_with_the_latent_tone(year, tmp_path_factory):
    root, calls, _, _, _ = year
    model = SentimentModel.default(cache_dir=tmp_path_factory.getbasetemp() / "nlp_head_cache")
    ranked = calls.sort("management_tone")
    picked = pl.concat([ranked.head(3), ranked.tail(3)])  # the three gloomiest and three sunniest calls
    frame, _ = score_transcripts(model, [root / "landing" / "transcripts" / f for f in picked["file"]])
    joined = frame.join(picked, on=["ticker", "call_date"])
    assert spearmanr(joined["management_tone"], joined["call_sentiment"]).statistic > 0
    gloomy = joined.filter(pl.col("management_tone") < 0)["call_sentiment"].max()
    sunny = joined.filter(pl.col("management_tone") > 0)["call_sentiment"].min()
    assert sunny > gloomy


def test_vendor_site_pages_carry_the_true_prices_and_prices_follow_the_driver(tmp_path):
    universe, drivers, sessions = _world(30)
    truth = build_site(tmp_path / "site", universe, drivers, sessions, seed=4, truth=tmp_path / "truth")
    assert pl.read_parquet(tmp_path / "truth" / "web_prices.parquet").equals(truth)
    robots = (tmp_path / "site" / "robots.txt").read_text()
    assert "Disallow: /private/" in robots
    parsed = []
    for (day, ticker), _ in truth.group_by("trade_date", "ticker"):
        page = tmp_path / "site" / "products" / day.isoformat() / f"{ticker}.html"
        parsed += [(day, ticker, r["product"], r["price"]) for r in parse_product_page(page.read_bytes())]
    pages = pl.DataFrame(parsed, schema=["trade_date", "ticker", "product", "price"], orient="row")
    key = ["trade_date", "ticker", "product"]
    assert pages.sort(key).equals(truth.select(*key, "price").sort(key))
    demeaned = truth.with_columns(
        (pl.col("price").log() - pl.col("price").log().mean().over("ticker", "product")).alias("x"),
        (pl.col("web_price") - pl.col("web_price").mean().over("ticker", "product")).alias("z"),
    )
    assert np.corrcoef(demeaned["x"], demeaned["z"])[0, 1] > 0.8


@pytest.mark.service
def test_served_site_injects_the_configured_faults(tmp_path):
    universe, drivers, sessions = _world(3)
    build_site(tmp_path / "site", universe, drivers, sessions, seed=4)
    day = sessions[0].isoformat()
    faults = SiteFaults(
        missing_paths={f"/products/{day}/ALFA.html"},
        throttled_paths={f"/products/{day}/BRVO.html"},
        retry_after_s=2,
        malformed_paths={f"/products/{day}/CHRL.html"},
    )
    with serve_site(tmp_path / "site", faults=faults) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url) as client:
            assert client.get(f"/products/{day}/ALFA.html").status_code == 404
            throttled = client.get(f"/products/{day}/BRVO.html")
            assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
            assert client.get(f"/products/{day}/BRVO.html").status_code == 200
            broken = client.get(f"/products/{day}/CHRL.html")
            assert broken.status_code == 200 and "</html>" not in broken.text
            assert client.get("/../../etc/passwd").status_code == 404
        assert [r.status for r in server.requests] == [404, 429, 200, 200, 404]
    with pytest.raises(ValueError, match="loopback"):
        serve_site(tmp_path / "site", host="0.0.0.0")


def test_world_files_never_depend_on_absolute_paths(year):
    root, _, _, _, _ = year
    sample = next((root / "landing" / "filings").iterdir()).read_text()
    assert str(Path(root)) not in sample
