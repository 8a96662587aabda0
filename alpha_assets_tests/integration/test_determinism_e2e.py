"""Deterministic results end to end (issue 20 item 1): the same vendor files and code give the same tables, bit for
bit, whether a day runs inside a backfill, in a re-run of part of the range, or alone.

A small world (24 names x 80 sessions: long enough for a second filing of some names, so their ``__z60``
z-scores move) with the text vendors on (earnings calls and filings, so the sentiment
model runs, on different batches of documents in each run), the ``daily_data`` job (vendor files to the feature
matrix: prices, universe, price features, labels, alt features with their ``__z60`` z-scores, feature matrix).
The ``main`` job's models and books are not included: they need a trained block (``train_alpha``), minutes more
on 2 cores; their inference paths are covered row by row in ``unit/test_determinism.py``.

Every Delta table of the lake is compared, every column: no table carries run metadata (ingestion times, run
ids) today, so ``RUN_METADATA_COLUMNS`` is empty; a column added for that purpose goes there, with its reason.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path

import polars as pl
import pytest

# table -> columns that legitimately differ between runs (run ids, wall-clock times). None today.
RUN_METADATA_COLUMNS: dict[str, tuple[str, ...]] = {}


def _tables(lake_root: Path) -> dict[str, pl.DataFrame]:
    """Every Delta table of the lake, its rows in a canonical order (sorted by every column)."""
    from resources.lake import DeltaLake

    lake = DeltaLake(lake_root)
    out = {}
    for log in sorted(lake_root.glob("*/*/_delta_log")):
        schema, table = log.parent.parent.name, log.parent.name
        df = lake.read(schema, table)
        df = df.drop([c for c in RUN_METADATA_COLUMNS.get(f"{schema}.{table}", ()) if c in df.columns])
        out[f"{schema}.{table}"] = df.sort(df.columns, nulls_last=True) if df.height else df
    return out


def _differences(before: dict[str, pl.DataFrame], after: dict[str, pl.DataFrame]) -> dict[str, str]:
    diffs = {}
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            diffs[name] = "missing in one run"
        elif a.schema != b.schema or a.height != b.height:
            diffs[name] = f"{a.height} rows {dict(a.schema)} vs {b.height} rows {dict(b.schema)}"
        elif not a.equals(b):
            cols = [c for c in a.columns if not a[c].equals(b[c])]
            floats = {c: float((a[c] - b[c]).abs().max() or 0) for c in cols if a[c].dtype.is_float()}
            diffs[name] = f"columns {cols}; max abs diff {floats}"
    return diffs


def _document_days(landing: Path) -> Counter:
    """Calls and filings delivered per date (the date in the file name)."""
    days: Counter = Counter()
    for sub in ("transcripts", "filings"):
        for p in (landing / sub).glob("*.txt"):
            m = re.search(r"(\d{4}-\d{2}-\d{2})", p.name)
            if m:
                days[date.fromisoformat(m.group(1))] += 1
    return days


@pytest.mark.slow
def test_a_range_rerun_and_a_single_day_give_every_table_bit_for_bit(tmp_path, monkeypatch, instance):
    from alpha_assets.app.runs import materialize
    from alpha_assets.home import AlphaHome
    from alpha_assets_tests.conftest import make_world
    from alpha_world.altdata import AltDataConfig, write_alt_data

    root = tmp_path / "alpha"
    world, _ = make_world(root, tickers=24, days=80, seed=11, signal=0.1)
    write_alt_data(world, root, AltDataConfig.text_only())
    monkeypatch.setenv("ALPHA_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    home = AlphaHome(root).ensure()
    sessions = world.sessions

    def run(lo: date, hi: date) -> dict[str, pl.DataFrame]:
        assert materialize(home, lo, hi, quiet=True, instance=instance, job_name="daily_data")["success"]
        return _tables(Path(home.lake))

    backfill = run(sessions[0], sessions[-1])
    # the sentiment path ran: calls and filings scored, their z-scores in the matrix
    assert backfill["raw.call_sentiment"].height and backfill["raw.filing_features"].height
    matrix = backfill["features.feature_matrix"]
    assert matrix.select(pl.col("^filing_.*sentiment__z60$").abs().sum()).sum_horizontal().item() > 0

    # (a) re-run the 10 sessions (in the second half: full z-score windows) holding the most documents
    docs = _document_days(Path(home.landing))
    starts = range(len(sessions) // 2, len(sessions) - 10)
    lo = max(starts, key=lambda i: sum(docs[d] for d in sessions[i : i + 10]))
    window = sessions[lo : lo + 10]
    assert sum(docs[d] for d in window) >= 2  # the re-run scores several documents together
    rerun = run(window[0], window[-1])
    assert _differences(backfill, rerun) == {}

    # (b) one day alone: its documents scored without the others of the range, its z-scores from a shorter history
    day = max(window, key=lambda d: (docs[d], d))
    assert docs[day] >= 1
    alone = run(day, day)
    assert _differences(backfill, alone) == {}
