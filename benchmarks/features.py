"""Price features: our polars implementation vs a pandas groupby-rolling implementation of the same features.

Usage: .venv/bin/python benchmarks/features.py [--quick] [--pandas-max-rows N]
Prints a table and, as the last line, one JSON object. Both implementations run in the same process on the same
frame; their outputs are compared value by value (max abs difference) at every size where pandas runs.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from _common import emit, machine, print_table, synthetic_prices

from alpha_assets.lib.features.price_features import compute_price_features, feature_columns


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


def run(n_names: int, years: int, with_pandas: bool) -> dict:
    n_days = years * 252
    px = synthetic_prices(n_names, n_days)
    gc.collect()
    t0 = time.perf_counter()
    ours = compute_price_features(px, px["trade_date"].min(), px["trade_date"].max())
    t_ours = time.perf_counter() - t0
    cols = feature_columns(ours)
    res = {
        "names": n_names,
        "years": years,
        "rows": px.height,
        "features": len(cols),
        "polars_s": round(t_ours, 3),
    }
    if with_pandas:
        pdf = px.to_pandas()
        gc.collect()
        t0 = time.perf_counter()
        theirs = pandas_features(pdf)
        t_pd = time.perf_counter() - t0
        ours_sorted = ours.sort("ticker", "trade_date")
        diffs = []
        for ccol in cols:
            a = ours_sorted[ccol].to_numpy()
            b = theirs[ccol].to_numpy()
            m = np.isfinite(a) & np.isfinite(b)
            diffs.append(float(np.max(np.abs(a[m] - b[m]))) if m.any() else 0.0)
            assert (np.isfinite(a) == np.isfinite(b)).mean() > 0.999, ccol
        res.update(pandas_s=round(t_pd, 3), speedup=round(t_pd / t_ours, 1), max_abs_diff=max(diffs))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--pandas-max-rows", type=int, default=3_200_000, help="skip the pandas peer above this size"
    )
    ap.add_argument("--sizes", help="comma-separated NAMESxYEARS, e.g. 5000x10")
    args = ap.parse_args()
    sizes = [(100, 2), (500, 2)] if args.quick else [(500, 2), (1000, 5), (5000, 10)]
    if args.sizes:
        sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    results = [run(n, y, n * y * 252 <= args.pandas_max_rows) for n, y in sizes]
    m = machine()
    print(f"price features, polars vs pandas groupby-rolling — {m['cores']} cores, {m['memory_gib']} GiB, "
          f"python {m['python']}")  # fmt: skip
    print_table(
        ["names", "years", "rows", "features", "polars s", "pandas s", "speed-up", "max |diff|"],
        [[r["names"], r["years"], f"{r['rows']:,}", r["features"], r["polars_s"], r.get("pandas_s", "skipped"),
          r.get("speedup", "-"), f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "-"] for r in results],
    )  # fmt: skip
    emit({"benchmark": "features", "machine": m, "results": results})


if __name__ == "__main__":
    main()
