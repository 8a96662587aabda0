"""The Delta store: window replacement, schema drift, crash safety, time travel."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, timedelta

import polars as pl
import pytest

from resources.lake import DeltaLake, PartitionWindowError, SchemaDriftError


def _frame(days: list[date], tickers=("AAA", "BBB"), value: float = 1.0) -> pl.DataFrame:
    rows = [{"trade_date": d, "ticker": t, "close": value} for d in days for t in tickers]
    return pl.DataFrame(rows, schema={"trade_date": pl.Date, "ticker": pl.Utf8, "close": pl.Float64})


D = [date(2024, 1, 2) + timedelta(days=i) for i in range(10)]


def test_rerun_of_a_partition_replaces_its_rows(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:5]), D[0], D[4])
    lake.write_window("raw", "t", _frame([D[2]], value=2.0), D[2], D[2])
    lake.write_window("raw", "t", _frame([D[2]], value=3.0), D[2], D[2])
    out = lake.read("raw", "t")
    assert out.height == 10  # no duplicates
    assert out.filter(pl.col("trade_date") == D[2])["close"].to_list() == [3.0, 3.0]
    assert out.filter(pl.col("trade_date") != D[2])["close"].unique().to_list() == [1.0]


def test_range_write_replaces_the_whole_window_and_nothing_else(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D), D[0], D[9])
    # A 3-day window now holds only one ticker: the other ticker's rows for those days must go.
    lake.write_window("raw", "t", _frame(D[3:6], tickers=("AAA",), value=5.0), D[3], D[5])
    out = lake.read("raw", "t")
    assert out.filter(pl.col("trade_date").is_between(D[3], D[5])).height == 3
    assert out.filter(~pl.col("trade_date").is_between(D[3], D[5])).height == 14
    assert lake.read("raw", "t", D[3], D[5], columns=["close"])["close"].to_list() == [5.0] * 3


def test_rows_outside_the_window_are_refused(tmp_path):
    lake = DeltaLake(tmp_path)
    with pytest.raises(PartitionWindowError, match="outside the window"):
        lake.write_window("raw", "t", _frame(D[:3]), D[0], D[1])
    assert not lake.exists("raw", "t")


def test_type_drift_is_refused_and_the_table_is_unchanged(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:3]), D[0], D[2])
    before = lake.read("raw", "t")
    v = lake.version("raw", "t")
    drifted = _frame([D[1]]).with_columns(pl.col("close").cast(pl.Utf8))
    with pytest.raises(SchemaDriftError) as err:
        lake.write_window("raw", "t", drifted, D[1], D[1])
    msg = str(err.value)
    assert "raw.t" in msg and "'close'" in msg and "double" in msg and "string" in msg
    assert lake.version("raw", "t") == v
    assert lake.read("raw", "t").equals(before)


def test_a_missing_column_is_refused(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:3]), D[0], D[2])
    with pytest.raises(SchemaDriftError, match="lacks column"):
        lake.write_window("raw", "t", _frame([D[1]]).drop("close"), D[1], D[1])


def test_an_earlier_version_can_be_read_back(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:3]), D[0], D[2])
    v0 = lake.version("raw", "t")
    lake.write_window("raw", "t", _frame([D[1]], value=9.0), D[1], D[1])
    old = lake.read("raw", "t", version=v0)
    assert old["close"].unique().to_list() == [1.0]
    assert 9.0 in lake.read("raw", "t")["close"].to_list()


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import polars as pl, pyarrow as pa
    from datetime import date, timedelta
    sys.path.insert(0, {root!r})
    from resources.lake import DeltaLake
    n = 200_000
    days = [date(2024, 1, 2) + timedelta(days=i % 3) for i in range(n)]
    df = pl.DataFrame({{"trade_date": days, "ticker": [f"T{{i}}" for i in range(n)], "close": [7.0] * n}})
    real = pl.DataFrame.to_arrow
    calls = {{"n": 0}}
    def dying_stream(self, *a, **k):
        calls["n"] += 1
        table = real(self, *a, **k)
        if calls["n"] == 1:  # the schema check
            return table
        batches = table.to_batches(max_chunksize=10_000)
        def gen():
            for i, b in enumerate(batches):
                if i == 5:  # some data files are being written: die without committing
                    os.kill(os.getpid(), signal.SIGKILL)
                yield b
        return pa.RecordBatchReader.from_batches(table.schema, gen())
    pl.DataFrame.to_arrow = dying_stream
    DeltaLake({lake!r}).write_window("raw", "t", df, date(2024, 1, 2), date(2024, 1, 4))
    """
)


def test_a_process_killed_mid_write_leaves_the_previous_version_readable(tmp_path):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:3]), D[0], D[2])
    before, v = lake.read("raw", "t"), lake.version("raw", "t")
    proc = subprocess.run(
        [sys.executable, "-c", KILLER.format(root=root, lake=str(tmp_path))], capture_output=True
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert lake.version("raw", "t") == v
    assert lake.read("raw", "t").equals(before)
    # A rerun completes and replaces the window.
    lake.write_window("raw", "t", _frame(D[:3], value=4.0), D[0], D[2])
    assert lake.read("raw", "t")["close"].unique().to_list() == [4.0]


def test_a_new_column_is_added_with_nulls_before_it_and_then_required(tmp_path):
    # a fund adds an alt-data vendor: the feature matrix's next window brings that vendor's columns
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:3]), D[0], D[2])
    wider = _frame([D[2]], value=5.0).with_columns(pl.lit(0.25).alias("sentiment"))
    lake.write_window("raw", "t", wider, D[2], D[2])
    got = lake.read("raw", "t").sort("trade_date", "ticker")
    assert got.height == 6 and got["close"].to_list() == [1.0] * 4 + [5.0] * 2
    assert got["sentiment"].to_list() == [None] * 4 + [0.25] * 2
    # from then on the column is part of the table: a window without it is refused, the table unchanged
    v = lake.version("raw", "t")
    with pytest.raises(SchemaDriftError, match="lacks column"):
        lake.write_window("raw", "t", _frame([D[1]]), D[1], D[1])
    assert lake.version("raw", "t") == v


def test_a_scan_reads_the_version_it_was_built_at_and_reports_it(tmp_path):
    """A lazy scan is pinned when built: a write committed before ``collect`` is not seen. Every read, in any thread,
    is reported to an open ``recording_reads`` with the table version it read."""
    from concurrent.futures import ThreadPoolExecutor

    from resources.lake import TableRead, recording_reads

    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:3]), D[0], D[2])
    lake.write_window("features", "u", _frame(D[:3]), D[0], D[2])
    with recording_reads() as reads:
        lf, version = lake.scan_pinned("raw", "t")
        lake.write_window("raw", "t", _frame([D[1]], value=9.0), D[1], D[1])  # version 1, after the scan
        assert version == 0 and lf.collect()["close"].to_list() == [1.0] * 6
        with ThreadPoolExecutor(1) as pool:
            rows, read_at = pool.submit(lake.read_pinned, "features", "u", D[1], D[1]).result()
        assert rows.height == 2 and read_at == 0
        assert lake.read("raw", "t", D[1], D[1])["close"].to_list() == [9.0, 9.0]
    assert reads == [TableRead("raw.t", 0), TableRead("features.u", 0), TableRead("raw.t", 1)]
    lake.read("raw", "t")
    assert len(reads) == 3  # closed: no longer recording
    with pytest.raises(FileNotFoundError, match="no Delta table raw.absent"):
        lake.read("raw", "absent")


def test_an_input_whose_table_does_not_exist_yet_says_materialize_it_first(tmp_path):
    from dagster import AssetKey, build_input_context, build_output_context

    from resources.io_manager import DeltaIOManager

    manager = DeltaIOManager(lake_root=str(tmp_path))
    key = AssetKey(["raw", "absent"])
    context = build_input_context(asset_key=key, upstream_output=build_output_context(asset_key=key))
    with pytest.raises(
        FileNotFoundError, match="Delta table raw.absent does not exist yet: materialize it first"
    ):
        manager.load_input(context)
