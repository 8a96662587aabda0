"""The price layer's single-run backfill written chunk by chunk (issue 11 item 5): the real assets, IO manager,
Delta lake and Dagster instance; a small chunk size through ALPHA_PRICE_CHUNK_SESSIONS."""

from __future__ import annotations

import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey
from polars.testing import assert_frame_equal

from alpha_assets.features.assets import CHUNK_ENV
from alpha_assets.home import AlphaHome
from alpha_assets_tests.features.panels import make_panel
from resources.lake import DeltaLake

SELECT = ["features/price_features", "features/labels"]


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    return make_panel()


FEATURES, LABELS = AssetKey(["features", "price_features"]), AssetKey(["features", "labels"])


def _home(tmp_path, name, prices, monkeypatch) -> AlphaHome:
    home = AlphaHome(tmp_path / name).ensure()
    monkeypatch.setenv("ALPHA_HOME", str(home.root))
    days = prices["trade_date"].unique().sort()
    DeltaLake(home.lake).write_window("raw", "prices", prices.sort("trade_date", "ticker"), days[0], days[-1])
    return home


def _run(home, instance, start, end) -> None:
    from alpha_assets.app.runs import materialize

    res = materialize(
        home,
        start,
        end,
        select=SELECT,
        quiet=True,
        instance=instance,
        job_name="daily_data",
        refresh_dependents=False,
    )
    assert res["success"] and not res["failed_checks"], res


def _metadata(instance, key) -> dict:
    ev = instance.get_latest_materialization_event(key)
    return {k: v.value for k, v in ev.asset_materialization.metadata.items()}


def _table(home, name) -> pl.DataFrame:
    return DeltaLake(home.lake).read("features", name).sort("trade_date", "ticker")


@pytest.mark.slow
def test_a_multi_chunk_backfill_writes_the_rows_of_a_one_chunk_run_and_a_rerun_keeps_them(
    tmp_path,
    panel,
    instance,
    monkeypatch,
):
    days = panel["trade_date"].unique().sort().to_list()
    start, end = days[130], days[-1]
    monkeypatch.delenv(CHUNK_ENV, raising=False)
    one = _home(tmp_path, "one", panel, monkeypatch)
    _run(one, instance, start, end)
    assert "transactions" not in _metadata(instance, FEATURES)  # one frame, as before
    ref_f, ref_l = _table(one, "price_features"), _table(one, "labels")

    monkeypatch.setenv(CHUNK_ENV, "37")
    many = _home(tmp_path, "many", panel, monkeypatch)
    _run(many, instance, start, end)
    meta = _metadata(instance, FEATURES)
    n_chunks = -(-(len(days) - 130) // 37)
    assert (meta["transactions"], meta["rows"], meta["chunk_sessions"]) == (n_chunks, ref_f.height, 37)
    assert meta["infinite_values"] == 0 and meta["feature_columns"] == 53
    got_f, got_l = _table(many, "price_features"), _table(many, "labels")
    # Same rows and nulls; values to machine precision (rolling sums restart at each chunk's lookback).
    assert got_f.select("trade_date", "ticker", "is_filled").equals(
        ref_f.select("trade_date", "ticker", "is_filled")
    )
    assert_frame_equal(got_f, ref_f, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    assert_frame_equal(got_l, ref_l, check_exact=True)  # a label is one division: exact
    lab = _metadata(instance, LABELS)
    assert lab["filled_fwd_ret_1"] == ref_l.height - ref_l["fwd_ret_1"].null_count() > 0

    # Re-runs over the whole window and over a part of it, in chunks of another size, remove nothing and leave the
    # rows a one-frame run leaves (a part's run sees no print after its end: its last days may differ from the
    # whole window's, for the one-frame run as for the chunked one).
    monkeypatch.setenv(CHUNK_ENV, "20")
    _run(many, instance, start, end)
    assert_frame_equal(_table(many, "price_features"), ref_f, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    _run(many, instance, days[200], days[260])
    monkeypatch.delenv(CHUNK_ENV)
    _run(one, instance, days[200], days[260])
    again, ref_again = _table(many, "price_features"), _table(one, "price_features")
    assert again.select("trade_date", "ticker").equals(ref_again.select("trade_date", "ticker"))
    assert again.height >= ref_f.height - 10 and again.filter(pl.col("trade_date") > days[260]).height > 0
    assert_frame_equal(again, ref_again, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    assert_frame_equal(_table(many, "labels"), _table(one, "labels"), check_exact=True)


def test_a_bad_chunk_size_is_one_clear_error(tmp_path, panel, instance, monkeypatch):
    from alpha_assets.features.assets import _chunking

    days = panel["trade_date"].unique().sort().to_list()
    monkeypatch.setenv(CHUNK_ENV, "ten")
    with pytest.raises(ValueError, match="ALPHA_PRICE_CHUNK_SESSIONS must be a positive number"):
        _chunking(panel, days[0], days[-1])
    monkeypatch.setenv(CHUNK_ENV, "400")
    assert _chunking(panel, days[0], days[-1]) is None  # fits one chunk: one frame


@pytest.mark.slow
def test_the_finite_check_counts_every_chunk(tmp_path, panel, instance, monkeypatch):
    from alpha_assets.app.runs import materialize

    days = panel["trade_date"].unique().sort().to_list()
    # A zero close makes the next session's return infinite, in the window's last chunk.
    zero = (pl.col("trade_date") == days[-30]) & (pl.col("ticker") == "N020")
    home = _home(
        tmp_path,
        "inf",
        panel.with_columns(pl.when(zero).then(0.0).otherwise("close").alias("close")),
        monkeypatch,
    )
    monkeypatch.setenv(CHUNK_ENV, "50")
    res = materialize(
        home,
        days[130],
        days[-1],
        select=SELECT,
        quiet=True,
        instance=instance,
        job_name="daily_data",
        refresh_dependents=False,
    )
    assert res["failed_checks"] == ["features_finite"]
    table = _table(home, "price_features")
    n_inf = sum(int(table[c].is_infinite().sum()) for c in table.columns if table[c].dtype == pl.Float64)
    check = instance.get_latest_asset_check_evaluation_record(
        AssetCheckKey(FEATURES, "features_finite")
    ).event.dagster_event.event_specific_data
    assert not check.passed and check.metadata["infinite_values"].value == n_inf > 0
    assert _metadata(instance, FEATURES)["infinite_values"] == n_inf
