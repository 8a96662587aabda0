"""Deterministic results (issue 20 item 1): a row's value must not depend on which other rows are computed with it,
nor a rank on float noise or on the input's row order."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.determinism import round_sig

# --- inference: scoring X alone or inside a larger batch gives the same bits ----------------------------------


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    from alpha_assets.lib.altdata.nlp import SentimentModel

    return SentimentModel.default(cache_dir=tmp_path_factory.getbasetemp() / "nlp_head_cache")


def test_a_sentence_scores_the_same_bits_alone_or_among_any_other_sentences(sentiment):
    import torch

    from alpha_assets.lib.altdata.nlp.sentiment import load_training_sentences

    sentences, _ = load_training_sentences()
    pool = sentences[:120]
    probe = [pool[7], pool[50], "Revenue declined sharply and we withdraw our guidance for the year."]
    alone = np.vstack([sentiment.score_sentences([s]) for s in probe])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the process's setting must not reach the inference
    try:
        crowd = sentiment.score_sentences([*pool, probe[2], *pool[::-1]])
        shuffled = sentiment.score_sentences(
            [pool[i] for i in np.random.default_rng(0).permutation(120)] + [probe[2]]
        )
        assert torch.get_num_threads() == 2  # restored after the inference
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(alone[0], crowd[7]) and np.array_equal(alone[1], crowd[50])
    assert np.array_equal(alone[2], crowd[120]) and np.array_equal(alone[2], shuffled[-1])
    assert np.array_equal(np.sort(crowd[:120], axis=0), np.sort(shuffled[:120], axis=0))


def test_a_document_scores_the_same_bits_in_any_batch_of_documents(sentiment, tmp_path):
    from alpha_assets.lib.altdata.nlp.transcripts import score_transcripts

    docs = []
    for i, (tone, extra) in enumerate(
        [
            ("strong", "Margins expanded."),
            ("weak", "Demand softened a lot in the quarter and we expect the weakness to continue."),
            ("mixed", ""),
        ]
    ):
        path = tmp_path / f"T{i}_2024-01-0{i + 2}.txt"
        path.write_text(
            f"Company T{i} Q4 2023 Earnings Call\nTicker: T{i}\nDate: 2024-01-0{i + 2}\n\nPrepared Remarks\n\n"
            f"Jane Doe -- Chief Executive Officer\nThank you all. Results were {tone} this quarter. {extra}\n\n"
            "Question-and-Answer Session\n\nBob Ray -- Analyst\nCan you talk about pricing? Is it sustainable?\n\n"
            "Jane Doe -- Chief Executive Officer\nYes, pricing held up and we are confident about next year.\n",
            encoding="utf-8",
        )
        docs.append(path)
    together, _ = score_transcripts(sentiment, docs)
    for i, path in enumerate(docs):
        alone, _ = score_transcripts(sentiment, [path])
        assert alone.equals(together[i])


def _fusion_model():
    from alpha_assets.lib.models.fusion import FusionConfig, train_fusion

    rng = np.random.default_rng(0)
    n = 300
    arrays = {
        "price": rng.normal(size=(n, 6)).astype(np.float32),
        "call": rng.normal(size=(n, 3)).astype(np.float32),
    }
    arrays["call"][rng.random(n) < 0.3] = np.nan  # a missing modality is masked out
    cfg = FusionConfig(
        hidden=16, heads=2, layers=1, out_dim=8, dropout=0.0, epochs=1, batch_size=64, threads=1
    )
    model, _ = train_fusion(arrays, cfg)
    return model, arrays


def test_fusion_embeddings_of_rows_do_not_depend_on_the_other_rows_embedded_with_them():
    model, arrays = _fusion_model()
    full = model.embed(arrays)
    some = np.array([3, 17, 250])
    alone = np.vstack([model.embed({k: v[[i]] for k, v in arrays.items()}) for i in some])
    subset = model.embed({k: v[some] for k, v in arrays.items()})
    small_batches = model.embed(arrays, batch_size=7)
    assert np.array_equal(alone, full[some]) and np.array_equal(subset, full[some])
    assert np.array_equal(small_batches, full)


# --- rankings: float noise and row order never reorder names ----------------------------------------------------


def _day_frame(values: np.ndarray, tickers: list[str], d: date = date(2024, 1, 2)) -> pl.DataFrame:
    return pl.DataFrame({"trade_date": [d] * len(values), "ticker": tickers, "x": values})


def test_round_sig_makes_values_equal_in_exact_arithmetic_equal_and_snaps_noise_around_zero():
    a = np.array([0.1 + 0.2, 0.3, 1e-13, -3e-14, 2.5, np.nan, np.inf, 1234.5678e-7])
    r = round_sig(a)
    assert r[0] == r[1] and r[2] == 0.0 and r[3] == 0.0 and r[4] == 2.5
    assert np.isnan(r[5]) and r[6] == np.inf and r[7] == 1234.5678e-7
    assert np.array_equal(round_sig(r), r, equal_nan=True)  # idempotent


def test_cross_sectional_rank_ignores_1e_13_noise_and_ties_rank_the_same_in_any_row_order():
    from alpha_assets.lib.models.metrics import cross_sectional_rank

    rng = np.random.default_rng(1)
    tickers = [f"T{i:02d}" for i in range(30)]
    base = np.round(rng.normal(size=30), 2)
    base[[3, 11, 20]] = 0.5  # a three-way tie
    base[[5, 6]] = 1 / 3  # a two-way tie of a value with no exact binary form
    noisy = base + rng.choice([-1, 1], 30) * 1e-13 * np.abs(base)
    noisy[6] = 1 - 2 / 3  # 1/3 computed another way: a different last bit
    ranked = [
        _day_frame(v, tickers).with_columns(cross_sectional_rank("x").alias("r")).sort("ticker")["r"]
        for v in (base, noisy)
    ]
    assert ranked[0].equals(ranked[1])
    assert ranked[0][3] == ranked[0][11] == ranked[0][20] and ranked[0][5] == ranked[0][6]
    order = rng.permutation(30)
    shuffled = (
        _day_frame(base[order], [tickers[i] for i in order])
        .with_columns(cross_sectional_rank("x").alias("r"))
        .sort("ticker")["r"]
    )
    assert shuffled.equals(ranked[0])


def test_feature_matrix_normalisation_ignores_1e_13_noise_and_input_row_order():
    from alpha_assets.lib.features.matrix import MatrixConfig, build_feature_matrix

    rng = np.random.default_rng(2)
    days = [date(2024, 1, 2) + timedelta(days=i) for i in range(3)]
    tickers = [f"T{i:02d}" for i in range(25)]
    rows = [(d, t) for d in days for t in tickers]
    x = np.round(rng.normal(size=len(rows)), 3)
    x[::4] = 0.7  # ties on every day
    price = pl.DataFrame(
        {
            "trade_date": [r[0] for r in rows],
            "ticker": [r[1] for r in rows],
            "close": 1.0,
            "is_filled": False,
            "feat": x,
        }
    )
    noisy = price.with_columns(pl.col("feat") * (1 + pl.Series(rng.choice([-1, 1], len(rows)) * 1e-13)))
    empty = pl.DataFrame()
    a = build_feature_matrix(price, empty, days[0], days[-1], MatrixConfig())
    b = build_feature_matrix(noisy.sample(fraction=1.0, shuffle=True, seed=4), empty, days[0], days[-1])
    assert a.equals(b)


def test_alt_z_scores_do_not_depend_on_where_the_history_starts():
    """The backfill vs day-by-day difference: a trailing z-score of step values (a call's sentiment held for
    weeks) must be the same bits whether the frame starts 60 sessions or 200 sessions before the day."""
    from alpha_assets.lib.features.matrix import MatrixConfig, alt_history_features

    rng = np.random.default_rng(3)
    n_days, tickers = 260, [f"T{i:02d}" for i in range(12)]
    days = [date(2023, 1, 2) + timedelta(days=i) for i in range(n_days)]
    cols = {}
    for t in tickers:  # step series: a new value every ~40 sessions, nulls before the first call
        steps = np.repeat(rng.normal(size=n_days // 40 + 1) / 3, 40)[:n_days]
        steps[: rng.integers(0, 30)] = np.nan
        cols[t] = steps
    frame = pl.DataFrame(
        {
            "trade_date": [d for d in days for _ in tickers],
            "ticker": tickers * n_days,
            "call_sentiment": [cols[t][i] for i in range(n_days) for t in tickers],
        }
    )
    cfg = MatrixConfig()
    z = "call_sentiment__z60"
    full, _ = alt_history_features(frame, cfg)
    for first in (130, 190):  # start the frame later, as a one-day run's lookback does
        part, _ = alt_history_features(frame.filter(pl.col("trade_date") >= days[first]), cfg)
        tail = days[first + 60 :]
        keep = pl.col("trade_date").is_in(tail)
        left = full.filter(keep).sort("trade_date", "ticker").select("trade_date", "ticker", z)
        right = part.filter(keep).sort("trade_date", "ticker").select("trade_date", "ticker", z)
        assert left.equals(right)


@pytest.mark.parametrize("kind", ["mlp", "ridge", "xgboost", "lightgbm"])
def test_learner_scores_of_rows_do_not_depend_on_the_other_rows_scored_with_them(kind):
    """A day's names scored alone (a one-day run) or inside a range's rows (a backfill) get the same bits."""
    from alpha_assets.lib.models.learners import Learner, params_for

    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 12)).astype(np.float32)
    y = (X[:, 0] * 0.1 + rng.normal(size=600)).astype(np.float32)
    params = params_for(
        kind,
        "demo",
        {"max_epochs": 1}
        if kind == "mlp"
        else {"n_estimators": 20}
        if kind in ("xgboost", "lightgbm")
        else None,
    )
    model = Learner(kind, params, threads=1).fit(X, y)
    full = model.predict(X)
    day = np.arange(200, 230)  # one day's 30 names inside the range
    assert np.array_equal(model.predict(X[day]), full[day])
    assert np.array_equal(np.concatenate([model.predict(X[[i]]) for i in day[:3]]), full[day[:3]])


def test_car_counts_of_an_image_do_not_depend_on_the_images_detected_with_it(tmp_path):
    from alpha_assets.lib.altdata.vision.car_detector import count_cars, new_car_detector
    from alpha_world.imagery import generate_detector_training_set

    generate_detector_training_set(tmp_path / "ds", n_images=5, seed=2)
    images = sorted((tmp_path / "ds" / "images").rglob("*.png"))
    model = new_car_detector()  # untrained: at a low threshold it finds many low-confidence boxes
    together = count_cars(model, images, conf=1e-4, batch_size=4)
    alone = pl.concat([count_cars(model, [p], conf=1e-4, batch_size=4) for p in images])
    assert together["n_cars"].sum() > 0
    assert together.equals(alone)
