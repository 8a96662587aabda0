"""Price features: our implementation (the full frame, and the chunked path the asset writes from) vs a pandas
groupby-rolling implementation of the same features.

Usage: .venv/bin/python benchmarks/features.py [--quick] [--pandas-max-rows N] [--sizes 5000x10]
Prints a table and, as the last line, one JSON object. Each implementation runs in its own fresh process on the
same synthetic panel (wall and CPU seconds of the computation, the process's peak RSS, input panel included):
``compute_price_features`` returning one frame for the whole window; ``iter_price_features`` consumed chunk by chunk
as the asset's IO manager does (each chunk converted to arrow, then dropped), which bounds memory by a chunk; and
pandas on the whole panel up to --pandas-max-rows, beyond that on the first names, its time scaled per row (marked).
Ours and pandas agree value by value (max abs difference, on a 200 x 504 panel).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time

import numpy as np
from _common import emit, load_average, machine, print_table, synthetic_prices

from alpha_assets.lib.features.price_features import (
    chunk_sessions,
    compute_price_features,
    feature_columns,
    iter_price_features,
)


def pandas_features(pdf):
    """The same features with pandas groupby / rolling / shift (the peer)."""
    import pandas as pd

    pdf = pdf.sort_values(["ticker", "trade_date"]).reset_index(drop=True)
    g = pdf.groupby("ticker", sort=False)
    c = pdf["close"]
    out = pd.DataFrame({"trade_date": pdf["trade_date"], "ticker": pdf["ticker"], "close": c})
    for k in (1, 5, 20):
        out[f"ret_{k}"] = c / g["close"].shift(k) - 1
    out["log_ret_1"] = np.log(c / g["close"].shift(1))
    dv = c * pdf["volume"]
    gr = out.groupby(pdf["ticker"], sort=False)
    for k in (1, 5, 20, 60):
        out[f"ret_1_lag_{k}"] = gr["ret_1"].shift(k)
    for k in (5, 20, 60):
        out[f"ret_5_lag_{k}"] = gr["ret_5"].shift(k)
    for k in (20, 60):
        out[f"ret_20_lag_{k}"] = gr["ret_20"].shift(k)

    def roll(s, w, fn):
        return getattr(s.groupby(pdf["ticker"], sort=False).rolling(w), fn)().reset_index(level=0, drop=True)

    for w in (5, 20, 60):
        out[f"ret_mean_{w}"] = roll(out["ret_1"], w, "mean")
        out[f"ret_std_{w}"] = roll(out["ret_1"], w, "std")
        out[f"ret_min_{w}"] = roll(out["ret_1"], w, "min")
        out[f"ret_max_{w}"] = roll(out["ret_1"], w, "max")
        m = roll(c, w, "mean")
        out[f"close_to_mean_{w}"] = c / m - 1
        out[f"close_to_min_{w}"] = c / roll(c, w, "min") - 1
        out[f"close_to_max_{w}"] = c / roll(c, w, "max") - 1
        out[f"close_cv_{w}"] = roll(c, w, "std") / m
    s20, s60 = roll(out["ret_1"], 20, "std"), roll(out["ret_1"], 60, "std")
    out["vol_20"], out["vol_60"], out["vol_ratio_20_60"] = s20 * 252**0.5, s60 * 252**0.5, s20 / s60
    gc_ = pdf.groupby("ticker", sort=False)["close"]
    out["mom_20"] = c / gc_.shift(20) - 1
    out["mom_60_5"] = gc_.shift(5) / gc_.shift(60) - 1
    out["mom_120_5"] = gc_.shift(5) / gc_.shift(120) - 1
    out["zscore_20"] = (c - roll(c, 20, "mean")) / roll(c, 20, "std")
    out["zscore_60"] = (c - roll(c, 60, "mean")) / roll(c, 60, "std")
    out["log_volume"] = np.log(pdf["volume"] + 1)
    out["volume_ratio_5_20"] = roll(pdf["volume"].astype(float), 5, "mean") / roll(
        pdf["volume"].astype(float), 20, "mean"
    )
    out["log_dollar_volume_20"] = np.log(roll(dv, 20, "mean") + 1)
    out["amihud_20"] = roll(out["ret_1"].abs() / (dv + 1), 20, "mean") * 1e6
    hl = (pdf["high"] - pdf["low"]) / c
    out["hl_range"], out["hl_range_mean_20"] = hl, roll(hl, 20, "mean")
    out["overnight_gap"] = pdf["open"] / gc_.shift(1) - 1
    out["intraday_ret"] = c / pdf["open"] - 1
    return out


def _measure(impl: str, n_names: int, n_days: int) -> dict:
    """One implementation on one panel in a fresh subprocess: wall and CPU seconds of the computation alone, and
    the process's peak RSS (numpy and polars allocate outside tracemalloc's view; ru_maxrss sees everything)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, str(n_names), str(n_days)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(impl: str, n_names: int, n_days: int) -> None:
    px = synthetic_prices(n_names, n_days)
    if impl == "pandas":
        px = px.to_pandas()
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0, c0 = time.perf_counter(), time.process_time()
    chunks = 1
    if impl == "pandas":
        res = pandas_features(px)
        rows, nbytes = len(res), int(res.memory_usage(deep=False).sum())
    elif impl == "chunked":
        rows = nbytes = chunks = 0
        for df in iter_price_features(px, px["trade_date"].min(), px["trade_date"].max()):
            table = df.to_arrow()  # what the IO manager hands to delta-rs
            rows, nbytes, chunks = rows + table.num_rows, max(nbytes, table.nbytes), chunks + 1
            del df, table
    else:
        res = compute_price_features(px, px["trade_date"].min(), px["trade_date"].max())
        rows, nbytes = res.height, int(res.estimated_size())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_gb": peak / 1e9,
                "rss_before_gb": rss0 / 1e9,
                "result_gb": nbytes / 1e9,
                "rows": rows,
                "chunks": chunks,
            }
        )
    )


def _max_abs_diff(n_names: int, n_days: int) -> float:
    """Both implementations on one panel (in this process): the largest absolute difference of any value."""
    px = synthetic_prices(n_names, n_days)
    ours = compute_price_features(px, px["trade_date"].min(), px["trade_date"].max()).sort(
        "ticker", "trade_date"
    )
    theirs = pandas_features(px.to_pandas())
    diffs = []
    for col in feature_columns(ours):
        a, b = ours[col].to_numpy(), theirs[col].to_numpy()
        m = np.isfinite(a) & np.isfinite(b)
        diffs.append(float(np.max(np.abs(a[m] - b[m]))) if m.any() else 0.0)
        assert (np.isfinite(a) == np.isfinite(b)).mean() > 0.999, col
    return max(diffs)


def run(n_names: int, years: int, pandas_max_rows: int) -> dict:
    n_days = years * 252
    rows = n_names * n_days
    ours = _measure("polars", n_names, n_days)
    chunked = _measure("chunked", n_names, n_days)
    assert chunked["rows"] == ours["rows"], (chunked["rows"], ours["rows"])
    res = {
        "names": n_names,
        "years": years,
        "rows": rows,
        "features": 53,
        "polars_s": round(ours["wall_s"], 2),
        "polars_cpu_s": round(ours["cpu_s"], 2),
        "polars_peak_gb": round(ours["peak_rss_gb"], 2),
        "result_gb": round(ours["result_gb"], 2),
        "chunked_s": round(chunked["wall_s"], 2),
        "chunked_cpu_s": round(chunked["cpu_s"], 2),
        "chunked_peak_gb": round(chunked["peak_rss_gb"], 2),
        "chunks": chunked["chunks"],
        "chunk_sessions": min(n_days, chunk_sessions(n_names)),
        "chunk_gb": round(chunked["result_gb"], 2),
        "input_rss_gb": round(ours["rss_before_gb"], 2),
    }
    # The peer on the whole panel when it fits the budget, else on the first names, extrapolated per row.
    sub = n_names if rows <= pandas_max_rows else max(1, pandas_max_rows // n_days)
    theirs = _measure("pandas", sub, n_days)
    scale = n_names / sub
    res.update(
        pandas_names=sub,
        pandas_s=round(theirs["wall_s"] * scale, 2),
        pandas_cpu_s=round(theirs["cpu_s"] * scale, 2),
        pandas_peak_gb=round(theirs["peak_rss_gb"], 2),
        pandas_extrapolated=sub != n_names,
        speedup=round(theirs["wall_s"] * scale / ours["wall_s"], 1),
        speedup_cpu=round(theirs["cpu_s"] * scale / ours["cpu_s"], 1),
        speedup_chunked=round(theirs["wall_s"] * scale / chunked["wall_s"], 1),
    )
    res["max_abs_diff"] = _max_abs_diff(min(n_names, 200), min(n_days, 504))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--pandas-max-rows",
        type=int,
        default=3_200_000,
        help="run the pandas peer on at most this many rows (the first names) and extrapolate per row",
    )
    ap.add_argument("--sizes", help="comma-separated NAMESxYEARS, e.g. 5000x10")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    # --quick: a smoke run (make bench, CI): one small panel through the same processes and comparison
    sizes = [(100, 2)] if args.quick else [(500, 2), (1000, 5), (5000, 10)]
    if args.sizes:
        sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    load_before = load_average()
    results = [run(n, y, args.pandas_max_rows) for n, y in sizes]
    m = machine()
    m["load_before"], m["load_after"] = load_before, load_average()
    print(
        f"price features, ours vs pandas groupby-rolling — {m['cores']} cores, {m['memory_gib']} GiB, "
        f"python {m['python']}; load average {m['load_before']} before, {m['load_after']} after"
    )
    print("each implementation in its own process; peak = that process's peak RSS (input panel included);")
    print("full = compute_price_features (one frame); chunked = iter_price_features consumed chunk by chunk")
    print(
        "(each chunk to arrow, as the IO manager writes it); pandas marked * ran on the first names only, scaled"
    )
    print_table(
        [
            "names",
            "years",
            "rows",
            "full s",
            "cpu s",
            "peak GB",
            "chunked s",
            "cpu s",
            "peak GB",
            "chunks",
            "pandas s",
            "cpu s",
            "peak GB",
            "speed-up",
            "chunked speed-up",
            "max |diff|",
        ],
        [
            [
                r["names"],
                r["years"],
                f"{r['rows']:,}",
                r["polars_s"],
                r["polars_cpu_s"],
                r["polars_peak_gb"],
                r["chunked_s"],
                r["chunked_cpu_s"],
                r["chunked_peak_gb"],
                r["chunks"],
                f"{r['pandas_s']}{'*' if r['pandas_extrapolated'] else ''}",
                r["pandas_cpu_s"],
                f"{r['pandas_peak_gb']}{'*' if r['pandas_extrapolated'] else ''}",
                r["speedup"],
                r["speedup_chunked"],
                f"{r['max_abs_diff']:.1e}",
            ]
            for r in results
        ],
    )
    emit({"benchmark": "features", "machine": m, "results": results})


if __name__ == "__main__":
    main()
