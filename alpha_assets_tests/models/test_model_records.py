"""What a trained model records and what scoring checks: the training rows' hash depends on their content alone,
the fit's memory is the fit's own, and a model never scores embeddings of another encoder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

DAYS = [date(2025, 3, 3) + timedelta(days=k) for k in range(7)]  # Mon..Sun: the lake does not care
TICKERS = [f"T{k:02d}" for k in range(8)]


def _day(d: date, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    keys = {"trade_date": [d] * len(TICKERS), "ticker": TICKERS}
    matrix = pl.DataFrame(
        {
            **keys,
            "mom_5": rng.uniform(-0.5, 0.5, len(TICKERS)),
            "call_sentiment": [None, *rng.uniform(-0.5, 0.5, len(TICKERS) - 1)],
        }
    )
    labels = pl.DataFrame(
        {
            **keys,
            "fwd_ret_1": rng.normal(0, 0.02, len(TICKERS)),
            "fwd_ret_5": rng.normal(0, 0.04, len(TICKERS)),
        }
    )
    return matrix, labels


@pytest.fixture
def lake(tmp_path):
    from resources.lake import DeltaLake

    lake = DeltaLake(tmp_path / "lake")
    for k, d in enumerate(DAYS[:6]):
        matrix, labels = _day(d, k)
        lake.write_window("features", "feature_matrix", matrix, d, d)
        lake.write_window("features", "labels", labels, d, d)
    return lake


def test_the_training_data_hash_ignores_an_unrelated_day_appended_to_the_tables(lake):
    from alpha_assets.models.training import _training_rows, training_data_hash

    feats = ["mom_5", "call_sentiment"]
    rows, _ = _training_rows(lake, DAYS[:4], "fwd_ret_1")
    before = training_data_hash(rows, feats)
    matrix, labels = _day(DAYS[6], 99)
    lake.write_window("features", "feature_matrix", matrix, DAYS[6], DAYS[6])
    lake.write_window("features", "labels", labels, DAYS[6], DAYS[6])
    again, _ = _training_rows(lake, DAYS[:4], "fwd_ret_1")
    assert training_data_hash(again, feats) == before  # the old hash mixed in the tables' Delta versions
    assert training_data_hash(again.reverse(), feats) == before  # the rows' order is canonical
    changed = again.with_columns(
        pl.when((pl.col("trade_date") == DAYS[1]) & (pl.col("ticker") == "T03"))
        .then(pl.col("mom_5") + 1e-9)
        .otherwise(pl.col("mom_5"))
        .alias("mom_5")
    )
    assert training_data_hash(changed, feats) != before
    nulled = again.with_columns(pl.lit(None, dtype=pl.Float64).alias("call_sentiment"))
    zeros = again.with_columns(pl.lit(0.0).alias("call_sentiment"))
    assert training_data_hash(nulled, feats) != training_data_hash(zeros, feats)


def test_the_training_data_hash_is_a_fixed_function_of_the_values():
    """Pinned: a polars upgrade must not change the hash of the same rows (``hash_rows`` did not promise that)."""
    from alpha_assets.models.training import training_data_hash

    rows = pl.DataFrame(
        {
            "trade_date": [date(2025, 1, 3), date(2025, 1, 2)],
            "ticker": ["B", "A"],
            "mom_5": [0.25, None],
            "target": [-0.5, 0.5],
        },
        schema_overrides={"mom_5": pl.Float32},
    )
    assert training_data_hash(rows, ["mom_5"]) == PINNED


PINNED = "0d4814cd4b0e6ecbd25cf3b6d89428c34d214eeb6142e338b08e7e2715e12a6f"


def test_fit_memory_is_the_fits_own_increase_not_the_process_peak():
    import resource

    from alpha_assets.lib.monitoring.fit_memory import FitMemory

    earlier = np.ones(400 * 2**20 // 8)  # an earlier step's 400 MB: the process's peak, not this fit's
    del earlier
    with FitMemory() as mem:
        work = np.ones(150 * 2**20 // 8)  # the fit's 150 MB, touched
        work.sum()
        del work
    process_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # what was logged before
    assert 120 <= mem.peak_mb <= 260, mem.peak_mb
    assert process_peak_mb > mem.peak_mb + 300


@dataclass
class _Model:
    meta: dict
    features: list[str]
    name: str = "alpha_lightgbm"
    version: int = 4


def test_scoring_refuses_embeddings_of_another_encoder_than_the_models():
    from dagster import Failure

    from alpha_assets.models.scoring import check_encoder

    day = date(2025, 4, 1)
    rows = pl.DataFrame(
        {"ticker": ["A", "B"], "mom_5": [0.1, -0.1], "emb_000": [0.3, 0.2], "fusion_version": [5, 5]}
    )
    fusion_model = _Model(meta={"fusion_version": 3}, features=["mom_5", "emb_000"])
    with pytest.raises(
        Failure,
        match=r"trained on fusion encoder v3, but the embeddings of 2025-04-01 were made by "
        r"encoder v5",
    ):
        check_encoder(fusion_model, rows, day)
    check_encoder(
        fusion_model, rows.with_columns(pl.lit(3).alias("fusion_version")), day
    )  # same encoder: scores
    check_encoder(
        _Model(meta={"fusion_version": 3}, features=["mom_5"]), rows, day
    )  # base recipe: no embeddings
