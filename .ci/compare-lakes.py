"""Compare every Delta table of two lakes (two demo homes built on the same day from two commits): tables only in
one, row counts, and the columns whose values differ (each table sorted on every column first).

    .venv/bin/python .ci/compare-lakes.py OLD/.alpha/lake NEW/.alpha/lake

Issue 21's check that a refactor leaves the demo's tables as they were: run tables, timings, the git sha of
weights_audit.code_version and the vendor site's port in raw.web_products URLs are expected to differ."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resources.lake import DeltaLake  # noqa: E402


def main(old: str, new: str) -> int:
    a, b = DeltaLake(old), DeltaLake(new)
    ta, tb = set(a.tables()), set(b.tables())
    print("only in the first:", sorted(ta - tb), "only in the second:", sorted(tb - ta))
    same, differ = 0, []
    for t in sorted(ta & tb):
        x, y = a.read(*t), b.read(*t)
        if set(x.columns) != set(y.columns):
            differ.append((t, f"columns {sorted(set(x.columns) ^ set(y.columns))}"))
            continue
        cols = sorted(x.columns)
        if x.height != y.height:
            differ.append((t, f"rows {x.height} vs {y.height}"))
            continue
        keys = [c for c in cols if not isinstance(x[c].dtype, (pl.List, pl.Struct, pl.Array))]
        x, y = x.select(cols).sort(keys), y.select(cols).sort(keys)
        bad = [c for c in cols if not x[c].equals(y[c])]
        if bad:
            differ.append((t, bad))
        else:
            same += 1
    print(f"identical: {same} tables")
    for t, why in differ:
        print("differ:", ".".join(t), why)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: compare-lakes.py LAKE_A LAKE_B")
    sys.exit(main(sys.argv[1], sys.argv[2]))
