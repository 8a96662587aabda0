"""The research harness's maths (``alpha_assets.lib.models.research``): quarterly walk-forward splits purged like
production, out-of-sample fits that find a planted signal and nothing in noise, the label the models train on,
smoothing, and a hold band that cuts a book's trades."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.models import research as rs
from alpha_assets.lib.models.walk_forward import WalkForwardConfig
from partitions import MIN_HISTORY_SHARE

from .synthetic import business_days, make_panel

FEATURES = [f"f{i:03d}" for i in range(8)]
CFG = WalkForwardConfig(train_sessions=120, purge_sessions=5, label_horizon=5, validation_sessions=20)


def _panel(signal: float, seed: int) -> pl.DataFrame:
    return make_panel(tickers=50, days=260, signal=signal, seed=seed).rename({"label": "fwd_ret_1"})


def test_quarter_splits_train_before_each_quarter_with_the_purge():
    sessions = business_days(400)
    splits = rs.quarter_splits(sessions, sessions, CFG, min_history_share=MIN_HISTORY_SHARE)
    assert splits and all(
        s.test_dates[0]
        == min(d for d in sessions if rs.quarter_start(d) == rs.quarter_start(s.test_dates[0]))
        for s in splits
    )
    for s in splits:
        window = rs.training_window(s, sessions)
        gap = sessions.index(s.test_dates[0]) - sessions.index(window[-1])
        assert len(window) == CFG.train_sessions - 0 and gap == CFG.purge_sessions + 1
        assert {rs.quarter_start(d) for d in s.test_dates} == {rs.quarter_start(s.test_dates[0])}
    # a panel missing a third of a block's window does not train that block
    have = sessions[:100] + sessions[160:]
    assert len(rs.quarter_splits(sessions, have, CFG, min_history_share=MIN_HISTORY_SHARE)) < len(splits)


def test_walk_forward_ridge_finds_a_planted_signal_and_nothing_in_noise():
    for signal, check in ((0.1, lambda s: s["t_stat"] > 4), (0.0, lambda s: abs(s["t_stat"]) < 2.5)):
        panel = _panel(signal, seed=3 if signal else 4)
        sessions = panel["trade_date"].unique().sort().to_list()
        splits = rs.quarter_splits(sessions, sessions, CFG, min_history_share=MIN_HISTORY_SHARE)
        preds = rs.walk_forward_predictions(panel, FEATURES, ["ridge"], splits, sessions=sessions)
        assert preds["trade_date"].min() >= splits[0].test_dates[0]  # out of sample only
        stats = rs.ic_stats(preds.select("trade_date", "ticker", "score"), panel)
        assert check(stats), (signal, stats)


def test_models_train_on_the_traded_next_day_return():
    """A feature that predicts the 5-day return but not the next day's must not drive the traded score."""
    from alpha_assets.models.common import EVAL_LABEL, TRAIN_LABEL, rank_label

    assert TRAIN_LABEL == EVAL_LABEL == "fwd_ret_1"
    rng = np.random.default_rng(5)
    panel = make_panel(tickers=50, days=260, signal=0.0, seed=6)
    n = panel.height
    f0, f1 = panel["f000"].to_numpy(), panel["f001"].to_numpy()
    r1 = 0.1 * f0 + rng.normal(size=n)
    panel = panel.with_columns(
        pl.Series("fwd_ret_1", r1), pl.Series("fwd_ret_5", r1 + 1.0 * f1 + rng.normal(size=n))
    )
    sessions = panel["trade_date"].unique().sort().to_list()
    splits = rs.quarter_splits(sessions, sessions, CFG, min_history_share=MIN_HISTORY_SHARE)
    ranked = rank_label(panel, TRAIN_LABEL)  # the production target
    assert ranked["target"].to_list() == rs.ranked_target(panel, "fwd_ret_1")["target"].to_list()
    preds = rs.walk_forward_predictions(
        panel, FEATURES, ["ridge"], splits, label=TRAIN_LABEL, sessions=sessions
    )
    on_traded = rs.ic_stats(preds, panel, "fwd_ret_1")
    wrong = rs.walk_forward_predictions(
        panel, FEATURES, ["ridge"], splits, label="fwd_ret_5", sessions=sessions
    )
    assert on_traded["ic"] > rs.ic_stats(wrong, panel, "fwd_ret_1")["ic"] + 0.01


def test_smooth_is_an_exponential_average_carried_from_the_previous_session():
    days = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    raw = pl.DataFrame(
        {"trade_date": days + days[1:], "ticker": ["A"] * 3 + ["B"] * 2, "score": [1.0, 0.0, 0.0, 2.0, 4.0]}
    )
    out = rs.smooth(raw, halflife=1.0).sort("ticker", "trade_date")
    assert out["score"].to_list() == pytest.approx([1.0, 0.5, 0.25, 2.0, 3.0])
    assert rs.smooth(raw, 0)["score"].to_list() == raw["score"].to_list()


def test_hold_band_keeps_held_names_and_trades_less():
    rng = np.random.default_rng(8)
    days = business_days(60)
    tickers = [f"T{i:02d}" for i in range(40)]
    persistent = rng.normal(size=40)
    rows = [
        {"trade_date": d, "ticker": t, "score": float(persistent[i] + rng.normal(0, 0.7))}
        for d in days
        for i, t in enumerate(tickers)
    ]
    scores = pl.DataFrame(rows)

    def turnover(book: pl.DataFrame) -> float:
        wide = book.pivot(on="ticker", index="trade_date", values="weight").sort("trade_date").fill_null(0.0)
        w = wide.drop("trade_date").to_numpy()
        return float(np.abs(np.diff(w, axis=0)).sum(axis=1).mean())

    plain, banded = rs.quantile_book(scores, 0.3), rs.quantile_book(scores, 0.3, band=0.15)
    for book in (plain, banded):
        per_day = book.group_by("trade_date").agg(
            (pl.col("weight") > 0).sum().alias("longs"), pl.col("weight").sum().alias("net")
        )
        assert (per_day["longs"] == 12).all() and per_day["net"].abs().max() < 1e-12
    assert turnover(banded) < 0.7 * turnover(plain)
