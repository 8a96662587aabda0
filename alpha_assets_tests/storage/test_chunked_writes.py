"""WindowChunks: a window written chunk by chunk, one Delta transaction per chunk (issue 11 item 5)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from resources.lake import DeltaLake

D = [date(2024, 1, 2) + timedelta(days=i) for i in range(12)]


def _frame(days: list[date], value: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trade_date": [d for d in days for _ in range(2)],
            "ticker": ["AAA", "BBB"] * len(days),
            "close": [value] * (2 * len(days)),
        },
        schema={"trade_date": pl.Date, "ticker": pl.Utf8, "close": pl.Float64},
    )


def test_chunks_replace_the_window_one_transaction_each_and_nothing_outside(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D, 1.0), D[0], D[-1])
    v0 = lake.version("raw", "t")
    # Window D[2]..D[9]: chunks for D[2..4], D[5..7] and D[8] (D[9] had rows and has none now: cleared).
    chunks = (_frame(D[a:b], 2.0) for a, b in ((2, 5), (5, 8), (8, 9)))
    res = lake.write_chunks("raw", "t", chunks, D[2], D[9])
    assert (res.rows, res.transactions, res.version) == (14, 4, v0 + 4)
    out = lake.read("raw", "t").sort("trade_date", "ticker")
    assert out.filter(pl.col("trade_date").is_between(D[2], D[8]))["close"].to_list() == [2.0] * 14
    assert out.filter(pl.col("trade_date") == D[9]).height == 0
    assert out.filter(~pl.col("trade_date").is_between(D[2], D[9]))["close"].to_list() == [1.0] * 8


def test_a_crash_between_chunks_leaves_every_day_whole_and_a_rerun_completes_it(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D, 1.0), D[0], D[-1])

    def crashing():
        yield _frame(D[0:4], 2.0)
        raise MemoryError("killed while computing the second chunk")

    with pytest.raises(MemoryError):
        lake.write_chunks("raw", "t", crashing(), D[0], D[-1])
    out = lake.read("raw", "t")
    assert out.height == 24  # every day readable, none lost or doubled
    per_day = out.group_by("trade_date").agg(pl.col("close").n_unique().alias("n"), pl.col("close").first())
    assert per_day["n"].max() == 1  # no day mixes old and new rows
    assert sorted(per_day.filter(pl.col("close") == 2.0)["trade_date"].to_list()) == D[0:4]

    lake.write_chunks("raw", "t", (_frame(D[a : a + 4], 2.0) for a in (0, 4, 8)), D[0], D[-1])
    assert lake.read("raw", "t")["close"].to_list() == [2.0] * 24


def test_no_chunk_leaves_the_table_as_it_was(tmp_path):
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D, 1.0), D[0], D[-1])
    v = lake.version("raw", "t")
    res = lake.write_chunks("raw", "t", iter([]), D[0], D[-1])
    assert (res.rows, res.transactions, lake.version("raw", "t")) == (0, 0, v)
    assert lake.read("raw", "t").height == 24


def test_only_empty_chunks_keep_the_table_and_report_its_version(tmp_path):
    """Chunks with no rows, on a table with no rows after the window's start: nothing written, the table's own
    version reported (was None); on a table that does not exist yet, nothing is read or written (was a
    FileNotFoundError from the clearing read)."""
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D[:2], 1.0), D[0], D[1])
    v = lake.version("raw", "t")
    res = lake.write_chunks("raw", "t", iter([_frame([], 2.0)]), D[5], D[9])
    assert (res.rows, res.transactions, res.version, lake.version("raw", "t")) == (0, 0, v, v)
    res = lake.write_chunks("raw", "new", iter([_frame([], 2.0)]), D[5], D[9])
    assert (res.rows, res.transactions, res.version, lake.exists("raw", "new")) == (0, 0, -1, False)


def test_an_all_null_partition_column_is_refused_by_name(tmp_path):
    from resources.lake import PartitionWindowError

    lake = DeltaLake(tmp_path)
    bad = _frame(D[:2], 1.0).with_columns(pl.lit(None, dtype=pl.Date).alias("trade_date"))
    with pytest.raises(PartitionWindowError, match="null trade_date values"):
        lake.write_window("raw", "t", bad, D[0], D[1])
    assert not lake.exists("raw", "t")


@pytest.mark.parametrize("shuffled", [False, True])
def test_a_large_chunk_is_written_in_pieces_of_a_few_days(tmp_path, shuffled):
    # delta-rs holds a writer per daily partition open during a write: pieces of a few days bound that memory.
    lake = DeltaLake(tmp_path)
    lake.write_window("raw", "t", _frame(D, 1.0), D[0], D[-1])
    v0 = lake.version("raw", "t")
    chunk = _frame(D[1:12], 2.0)
    chunk = chunk.sample(fraction=1.0, seed=1) if shuffled else chunk
    res = lake.write_chunks("raw", "t", iter([chunk]), D[1], D[-1], write_days=4)
    assert (res.rows, res.transactions, res.version) == (22, 3, v0 + 3)  # days 1-4, 5-8, 9-11
    out = lake.read("raw", "t").sort("trade_date", "ticker")
    assert out["close"].to_list() == [1.0, 1.0] + [2.0] * 22
