"""The research benchmark: does the model layer find the planted alpha on worlds it was not tuned on?

Usage: .venv/bin/python benchmarks/research.py [--worlds 0.05:102-109,0.1:111-118,0:201-206] [--tickers 100]
       [--days 504] [--cache DIR] [--kinds ridge,xgboost,lightgbm,catboost,mlp] [--budget seed] [--jobs 2]
       [--band 0.1] [--build-only]

``--worlds`` lists strength:seeds groups (a seed range a-b or a list a;b;c); strength 0 is a null world. Each
world has its own seed, so no two worlds share their noise. ``--build-only`` builds (caches) the worlds and stops.

Per world (seed, signal strength; strength 0 = a null world): the world is generated and the project's own
``daily_data`` job builds ``features.feature_matrix`` and ``features.labels`` on it, ONCE: the matrix, labels, bars and
the world's oracle are cached as parquet under ``--cache`` keyed by seed/strength/size (a second run reads them in
a second). The world's vendors are the text vendors (calls and filings, every name) and prices: imagery and the web
site are off, because drawing and counting pictures and crawling pages cost minutes per world and add nothing to a
test of the learners; the oracle is built from the same deliveries, so the share of the oracle stays honest.

Then, walk-forward by calendar quarter exactly as ``models.alpha_models`` (252 training sessions ending 5 sessions
before the quarter, scored on the quarter only), on the base recipe (the matrix alone): every learner with the
fixed-budget fitting rule, the equal-weight and the gated ensemble (``ensemble.gated_weights``: a learner gets
weight only while it beats ridge on trailing paired IC), and the traded score: the gated ensemble's exponential
average with the production half-life (--halflife) and with one chosen walk-forward. Each score's out-of-sample daily Spearman
IC and t against the next-day return, on the same ticker-days, as a share of the all-channel oracle
(``oracle_all_z``); and an equal-weight 30%/30% long/short book of the traded score through the project's
vectorised backtest and cost model, without and with a hold band (--band, and twice it).

Prints a table per world, a summary (median and worst share per strength, null worlds with |t| >= 2), and, as its
last line, one JSON object with the machine, the sizes and every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _common import emit, load_average, machine, print_table

WORLD_START = date(2024, 1, 2)
ALL_KINDS = ("ridge", "ic_weighted", "xgboost", "lightgbm", "catboost", "mlp")
TRADED_HALFLIFE = (
    0.0  # models.alpha_scores' score_halflife_sessions (chosen on the tuning worlds; see README)
)
# Held out: 8 planted worlds per strength (their own seeds) and 6 null worlds; tuning used seeds 1, 3, 5-8 (0.05),
# 2 and 4 (0.1) and 9 (null). Seed 101 (0.05) was looked at while tuning the linear learners, and seeds 102-106 (0.05)
# had their ridge and ic_weighted figures seen before the gate and ridge settings were chosen, so the 0.05 held-out
# worlds are fresh seeds 121-128. (111-113 and 201-203 were seen too, before those choices; they are kept.)
DEFAULT_WORLDS = "0.05:121-128,0.1:111-118,0:201-206"
TUNING_WORLDS = "0.05:1;3;5-8,0.1:2;4,0:9"


def _env(home: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("YOLO_OFFLINE", "True")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("ALPHA_PARTITIONS_START", "2015-01-02")
    os.environ["ALPHA_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")


def world_key(seed: int, strength: float, tickers: int, days: int) -> str:
    """The cache folder of a world: its seed, strength, size and the simulator's version (a world built by an older
    simulator is built again, never reused)."""
    from alpha_world.simulate import SIMULATOR_VERSION

    return f"seed{seed}_k{strength:g}_{tickers}x{days}_sim{SIMULATOR_VERSION}"


def build_world(seed: int, strength: float, tickers: int, days: int, cache: Path) -> dict:
    """The cached panel of one world: matrix, labels, bars, oracle (parquet); built through the pipeline once."""
    import polars as pl

    out = cache / world_key(seed, strength, tickers, days)
    files = {n: out / f"{n}.parquet" for n in ("matrix", "labels", "bars", "oracle")}
    if all(f.exists() for f in files.values()):
        return {"dir": out, "built_seconds": None, **{n: f for n, f in files.items()}}
    t0 = time.perf_counter()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="research_home_", dir=cache))
    try:
        _env(tmp)
        from dagster import DagsterInstance

        from alpha_assets.app.runs import materialize
        from alpha_assets.home import AlphaHome
        from alpha_world.altdata import AltDataConfig, write_alt_data
        from alpha_world.simulate import WorldConfig, simulate_world
        from alpha_world.vendors import write_world
        from resources.lake import DeltaLake

        home = AlphaHome(tmp).ensure()
        world = simulate_world(
            WorldConfig(tickers=tickers, start=WORLD_START, days=days, seed=seed, signal_strength=strength)
        )
        write_world(world, tmp)
        write_alt_data(world, tmp, AltDataConfig.text_only())
        with DagsterInstance.ephemeral() as instance:
            res = materialize(home, quiet=True, instance=instance, job_name="daily_data")
        if not res["success"]:
            raise RuntimeError(
                f"daily_data failed on {world_key(seed, strength, tickers, days)}: "
                f"{res['failed_steps']} {res.get('failed_checks')}"
            )
        lake = DeltaLake(home.lake)
        out.mkdir(parents=True, exist_ok=True)
        lake.read("features", "feature_matrix").write_parquet(files["matrix"])
        lake.read("features", "labels").write_parquet(files["labels"])
        lake.read("raw", "prices", columns=["trade_date", "ticker", "open", "close", "volume"]).write_parquet(
            files["bars"]
        )
        pl.read_parquet(home.ground_truth / "oracle.parquet").select(
            "trade_date", "ticker", "oracle_all_z", "oracle_z", "planted_z"
        ).write_parquet(files["oracle"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"dir": out, "built_seconds": time.perf_counter() - t0, **{n: f for n, f in files.items()}}


def fusion_panel(panel, features: list[str], splits, sessions, seed: int = 7):
    """The panel's test-block rows and training rows with each block's fusion embeddings (the demo-size encoder,
    contrastively pretrained on a 5,000-row sample of the block's training window, as models.fusion_encoder):
    returns {block start: (train rows, test rows)} with ``emb_*`` columns."""
    import dataclasses

    import polars as pl

    from alpha_assets.lib.models import research as rs
    from alpha_assets.lib.models.fusion import FusionConfig, modality_arrays, train_fusion
    from alpha_assets.models.common import embed_frame, modality_columns

    modalities = modality_columns(features)
    out = {}
    for split in splits:
        window = rs.training_window(split, sessions)
        train = panel.filter(pl.col("trade_date").is_in(window))
        sample = train.sample(min(5000, train.height), seed=seed).sort("trade_date", "ticker")
        cfg = dataclasses.replace(FusionConfig.demo(), seed=seed, threads=1)
        model, _ = train_fusion(modality_arrays(sample, modalities), cfg)
        test = panel.filter(pl.col("trade_date").is_in(split.test_dates))
        out[split.test_dates[0]] = tuple(
            f.join(embed_frame(model, f, modalities), on=["trade_date", "ticker"]) for f in (train, test)
        )
    return out


def run_world(seed: int, strength: float, args) -> dict:
    """Every figure of one world (builds or reads its cached panel first)."""
    import polars as pl

    from alpha_assets.lib.features.matrix import feature_columns
    from alpha_assets.lib.models import research as rs
    from alpha_assets.lib.models.ensemble import LINEAR, LINEAR_MEMBERS, with_linear
    from alpha_assets.lib.models.walk_forward import WalkForwardConfig
    from partitions import MAX_TRAIN_SESSIONS, MIN_HISTORY_SHARE

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    w = build_world(seed, strength, args.tickers, args.days, cache)
    t0 = time.perf_counter()
    matrix = pl.read_parquet(w["matrix"])
    labels = pl.read_parquet(w["labels"]).select("trade_date", "ticker", "fwd_ret_1", "fwd_ret_5")
    bars = pl.read_parquet(w["bars"])
    oracle = pl.read_parquet(w["oracle"])
    features = feature_columns(matrix)
    panel = matrix.join(labels, on=["trade_date", "ticker"], how="left")
    sessions = bars["trade_date"].unique().sort().to_list()
    # as models.alpha_models: a training year at least, expanding up to MAX_TRAIN_SESSIONS of the world's history
    cfg = WalkForwardConfig(
        train_sessions=252,
        purge_sessions=5,
        label_horizon=5,
        validation_sessions=42,
        max_train_sessions=MAX_TRAIN_SESSIONS,
    )
    splits = rs.quarter_splits(
        sessions, panel["trade_date"].unique().to_list(), cfg, min_history_share=MIN_HISTORY_SHARE
    )
    kinds = [k for k in args.kinds.split(",") if k]
    preds = rs.walk_forward_predictions(
        panel, features, kinds, splits, label=args.label, budget=args.budget, threads=1, sessions=sessions
    )
    if args.fusion:  # the fusion recipe: the same learners on the matrix + the block's embeddings
        import polars as pl

        parts = fusion_panel(panel, features, splits, sessions)
        emb = pl.concat([pl.concat([tr, te]).unique(["trade_date", "ticker"]) for tr, te in parts.values()])
        emb_cols = [c for c in emb.columns if c.startswith("emb_")]
        frames = []
        for split in splits:
            tr, te = parts[split.test_dates[0]]
            both = pl.concat([tr, te])
            frames.append(
                rs.walk_forward_predictions(
                    both,
                    features + emb_cols,
                    kinds,
                    [split],
                    label=args.label,
                    budget=args.budget,
                    threads=1,
                    sessions=sessions,
                    names={k: f"{k}_fusion" for k in kinds},
                )
            )
        preds = pl.concat([preds, *frames])
        del emb
    fit_seconds = time.perf_counter() - t0
    # --keep-results keeps the out-of-sample scores too, so an ensemble or book rule can be studied without refits
    if args.keep_results:
        keep = _results_file(seed, strength, args).with_suffix(".preds.parquet")
        keep.parent.mkdir(parents=True, exist_ok=True)
        preds.write_parquet(keep)
    # each model's daily IC and the linear blend's (the gate's baseline when both linear learners are fitted)
    ics = rs.model_daily_ics(with_linear(preds), labels)
    baseline = LINEAR if set(LINEAR_MEMBERS) <= set(kinds) else "ridge"
    series: dict[str, pl.DataFrame] = {}
    for k in preds["model"].unique().sort().to_list():
        series[k] = preds.filter(pl.col("model") == k).select("trade_date", "ticker", "score")
    learners = [k for k in kinds if k != "ridge"]
    if learners:
        series["ensemble_equal"] = rs.equal_ensemble(preds, kinds)
    gate_weights = None
    if "ridge" in kinds:
        series["ensemble_gated"], gate_weights = rs.gated_ensemble(preds, ics, kinds, baseline=baseline)
        base = series["ensemble_gated"]
    else:
        base = series["ensemble_equal"]
    # "traded": the production rule (models.alpha_scores: the gated ensemble, smoothed with --halflife, the
    # production default); the walk-forward half-life is the alternative it is compared with
    series["traded"] = rs.smooth(base, args.halflife)
    series["traded_hl_wf"], chosen = rs.walk_forward_halflife(base, labels)
    if "ridge" in kinds:
        series["ridge_hl_wf"], _ = rs.walk_forward_halflife(series["ridge"], labels)
    if args.fusion and "ridge" in kinds:
        fk = [f"{k}_fusion" for k in kinds]
        series["ensemble_gated_fusion"], _ = rs.gated_ensemble(preds, ics, fk, baseline="ridge_fusion")
    # the oracle on exactly the ticker-days the models scored
    keys = preds.filter(pl.col("model") == kinds[0]).select("trade_date", "ticker").unique()
    orc = oracle.join(keys, on=["trade_date", "ticker"])
    oracle_all = rs.ic_stats(
        orc.select("trade_date", "ticker", pl.col("oracle_all_z").alias("score")), labels
    )
    oracle_alt = rs.ic_stats(orc.select("trade_date", "ticker", pl.col("oracle_z").alias("score")), labels)
    rows = {}
    for name, s in series.items():
        st = rs.ic_stats(s.join(keys, on=["trade_date", "ticker"]), labels)
        st["share"] = st["ic"] / oracle_all["ic"] if oracle_all["ic"] > 0 else float("nan")
        rows[name] = st
    book = {}
    for bname, sname, band in BOOKS(args.band):
        book[bname] = rs.book_stats(rs.quantile_book(series[sname], 0.3, band), bars)
    weights_mean = (
        gate_weights.group_by("model").agg(pl.col("weight").mean()).sort("model").to_dicts()
        if gate_weights is not None
        else []
    )
    return {
        "seed": seed,
        "strength": strength,
        "blocks": len(splits),
        "oos_days": keys["trade_date"].n_unique(),
        "names": matrix["ticker"].n_unique(),
        "features": len(features),
        "oracle_all": oracle_all,
        "oracle_alt": oracle_alt,
        "scores": rows,
        "book": book,
        "gate_weight_mean": {r["model"]: round(r["weight"], 3) for r in weights_mean},
        "halflife_chosen_last": float(chosen["halflife"][-1]) if chosen.height else None,
        "halflife_chosen_mean": float(chosen["halflife"].mean()) if chosen.height else None,
        "build_seconds": w["built_seconds"],
        "fit_seconds": round(fit_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def BOOKS(band: float) -> tuple[tuple[str, str, float], ...]:
    """(book, score series, hold band): the traded book is "book_band" (the production hold band)."""
    return (
        ("book", "traded", 0.0),
        ("book_band", "traded", band),
        ("book_band2", "traded", 2 * band),
        ("book_wf_band", "traded_hl_wf", band),
    )


def parse_worlds(text: str) -> list[tuple[float, int]]:
    """``0.05:101-108,0:201;203`` -> [(0.05, 101), ..., (0.0, 201), (0.0, 203)]; one line naming a bad group."""
    out = []
    for group in filter(None, (g.strip() for g in text.split(","))):
        try:
            k, seeds = group.split(":")
            strength = float(k)
            for part in filter(None, seeds.split(";")):
                lo, _, hi = part.partition("-")
                out += [(strength, s) for s in range(int(lo), int(hi or lo) + 1)]
        except ValueError:
            raise SystemExit(
                f"research.py: --worlds group {group!r} is not strength:seeds (e.g. 0.05:101-108)"
            ) from None
    if not out:
        raise SystemExit("research.py: --worlds lists no world")
    return out


def _results_file(seed: int, strength: float, args) -> Path:
    """Where --keep-results keeps a world's figures: keyed by the world and every setting that changes them, and by
    the model code's content (alpha_assets/lib/models/*.py), so a changed learner or gate is never read stale."""
    import hashlib

    models = Path(__file__).resolve().parents[1] / "alpha_assets" / "lib" / "models"
    h = hashlib.sha256()
    for f in sorted(models.glob("*.py")):
        h.update(f.read_bytes())
    h.update(repr((args.kinds, args.budget, args.label, args.halflife, args.band, args.fusion)).encode())
    return (
        Path(args.cache)
        / "results"
        / f"{world_key(seed, strength, args.tickers, args.days)}_{h.hexdigest()[:12]}.json"
    )


def _job(spec):
    seed, strength, args = spec
    if args.build_only:
        w = build_world(seed, strength, args.tickers, args.days, Path(args.cache))
        return {"seed": seed, "strength": strength, "build_seconds": w["built_seconds"]}
    keep = _results_file(seed, strength, args) if args.keep_results else None
    if keep is not None and keep.exists():
        return json.loads(keep.read_text())
    out = run_world(seed, strength, args)
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text(json.dumps(out, default=str))
    return out


def print_world(r: dict) -> None:
    o = r["oracle_all"]
    print(
        f"\nworld seed {r['seed']} strength {r['strength']:g}: {r['names']} names, {r['features']} features, "
        f"{r['blocks']} blocks, {r['oos_days']} OOS sessions; build {r['build_seconds'] or 0:.0f}s (0 = cached), "
        f"fits {r['fit_seconds']:.0f}s"
    )
    rows = [
        ["oracle: every delivered channel", o["ic"], o["t_stat"], 1.0],
        [
            "oracle: alt deliveries alone",
            r["oracle_alt"]["ic"],
            r["oracle_alt"]["t_stat"],
            r["oracle_alt"]["ic"] / o["ic"] if o["ic"] > 0 else float("nan"),
        ],
    ]
    rows += [[n, s["ic"], s["t_stat"], s["share"]] for n, s in r["scores"].items()]
    print_table(["score", "IC", "t", "share of oracle"], rows)
    print_table(
        ["book", "net Sharpe", "gross Sharpe", "turnover/day", "costs %NAV/yr", "costs/gross"],
        [
            [
                n,
                b["net_sharpe"],
                b["gross_sharpe"],
                b["turnover"],
                100 * b["costs_nav_year"],
                b["costs_share_gross"],
            ]
            for n, b in r["book"].items()
        ],
    )
    print(
        f"mean gate weights: {r['gate_weight_mean']}; walk-forward half-life mean {r['halflife_chosen_mean']}"
    )


def pooled_share(worlds: list[dict], name: str) -> dict:
    """The worlds' summed IC of ``name`` over their summed oracle IC, and its standard error (each world's IC
    standard error, IC / t, added in quadrature). A per-world share's standard error is about 1 / (the oracle's t):
    0.4 to over 1 on a 100 x 504 world at strength 0.05, so the pooled share is the figure that can be judged."""
    import math

    oracle = sum(r["oracle_all"]["ic"] for r in worlds)
    ic = sum(r["scores"][name]["ic"] for r in worlds)
    var = sum((s["ic"] / s["t_stat"]) ** 2 for r in worlds if (s := r["scores"][name])["t_stat"])
    if oracle <= 0:
        return {}
    return {"pooled_share": round(ic / oracle, 3), "pooled_share_se": round(math.sqrt(var) / oracle, 3)}


def summarise(results: list[dict], tuning: set[int]) -> dict:
    out: dict = {}
    names = sorted({n for r in results for n in r["scores"]})
    for group, keep in (
        ("tuning", lambda r: r["seed"] in tuning),
        ("held_out", lambda r: r["seed"] not in tuning),
    ):
        for k in sorted({r["strength"] for r in results}):
            rs_ = [r for r in results if r["strength"] == k and keep(r)]
            if not rs_:
                continue
            key = f"{group}_k{k:g}"
            if k == 0:
                out[key] = {
                    n: {
                        "worlds": len(rs_),
                        "abs_t_ge_2": sum(abs(r["scores"][n]["t_stat"]) >= 2 for r in rs_),
                    }
                    for n in names
                    if all(n in r["scores"] for r in rs_)
                }
                for b, _, _ in BOOKS(0.0):
                    out[key][b] = {
                        "turnover": round(statistics.median(r["book"][b]["turnover"] for r in rs_), 3)
                    }
                continue
            out[key] = {}
            for n in names:
                shares = [r["scores"][n]["share"] for r in rs_ if n in r["scores"]]
                if shares:
                    out[key][n] = {
                        "worlds": len(shares),
                        "median_share": round(statistics.median(shares), 3),
                        "worst_share": round(min(shares), 3),
                        "median_t": round(statistics.median(r["scores"][n]["t_stat"] for r in rs_), 2),
                        **pooled_share([r for r in rs_ if n in r["scores"]], n),
                    }
            for b, _, _ in BOOKS(0.0):
                out[key][b] = {
                    m: round(statistics.median(r["book"][b][m] for r in rs_), 3)
                    for m in ("net_sharpe", "gross_sharpe", "turnover", "costs_nav_year")
                }
    return out


def verdict(results: list[dict], tuning: set[int]) -> dict:
    """The issue's bar on the held-out worlds, for the traded score and its book (book_band: the production band):
    median share >= 0.5 at 0.05 and >= 0.7 at 0.1, no planted world below 0.25, |t| >= 2 on at most 1 in 20 null
    worlds; where the traded IC has t >= 2, net Sharpe > 0 and costs <= 35% of gross P&L."""
    held = [r for r in results if r["seed"] not in tuning]
    out: dict = {}
    for k, bar in ((0.05, 0.5), (0.1, 0.7)):
        rs_ = [r for r in held if r["strength"] == k]
        if rs_:
            shares = [r["scores"]["traded"]["share"] for r in rs_]
            out[f"k{k:g}"] = {
                "worlds": len(rs_),
                "median_share": round(statistics.median(shares), 3),
                "bar": bar,
                "median_ok": statistics.median(shares) >= bar,
                "worst_share": round(min(shares), 3),
                "worst_ok": min(shares) >= 0.25,
            }
    nulls = [r for r in held if r["strength"] == 0]
    if nulls:
        hits = sum(abs(r["scores"]["traded"]["t_stat"]) >= 2 for r in nulls)
        out["null"] = {"worlds": len(nulls), "abs_t_ge_2": hits, "ok": hits <= len(nulls) / 20}
    sig = [r for r in held if r["strength"] > 0 and r["scores"]["traded"]["t_stat"] >= 2]
    if sig:
        good = [
            r
            for r in sig
            if r["book"]["book_band"]["net_sharpe"] > 0
            and 0 <= r["book"]["book_band"]["costs_share_gross"] <= 0.35
        ]
        out["book_where_t_ge_2"] = {
            "worlds": len(sig),
            "net_sharpe_pos_costs_le_35pct": len(good),
            "ok": len(good) == len(sig),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--worlds", default=DEFAULT_WORLDS, help="strength:seeds groups, e.g. 0.05:101-108,0:201-206"
    )
    ap.add_argument(
        "--build-only", action="store_true", dest="build_only", help="build the worlds' cache only"
    )
    ap.add_argument(
        "--keep-results",
        action="store_true",
        dest="keep_results",
        help="keep each world's figures under CACHE/results and reuse them while the model code and "
        "settings are unchanged (the summary of a long run can be built up world by world)",
    )
    ap.add_argument(
        "--tuning-seeds",
        default=",".join(str(s) for _, s in parse_worlds(TUNING_WORLDS)),
        dest="tuning_seeds",
        help=f"seeds the budgets were tuned on (reported apart from the held-out ones): --worlds {TUNING_WORLDS}",
    )
    ap.add_argument("--tickers", type=int, default=100)
    ap.add_argument("--days", type=int, default=504)
    ap.add_argument(
        "--cache",
        help="the worlds' cache (default TMPDIR/alpha_research_cache; with --quick a temporary folder, removed)",
    )
    ap.add_argument("--kinds", default=",".join(ALL_KINDS))
    ap.add_argument("--budget", default="seed", choices=["seed", "demo"])
    ap.add_argument("--label", default="fwd_ret_1", help="training label (the daily rank is the target)")
    ap.add_argument(
        "--halflife",
        type=float,
        default=TRADED_HALFLIFE,
        help="the traded score's smoothing half-life (sessions; 0 = none): the production default",
    )
    ap.add_argument(
        "--band", type=float, default=0.2, help="the hold band (production: target_weights' hold_band)"
    )
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument(
        "--fusion", action="store_true", help="also the fusion recipe (matrix + block embeddings)"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (make bench, CI): one small planted world (20 names x 340 sessions) built afresh in a "
        "temporary cache, the two linear learners; its figures are not the benchmark's",
    )
    args = ap.parse_args()
    if args.quick:
        args.worlds, args.tickers, args.days, args.kinds = "0.1:2", 20, 340, "ridge,ic_weighted"
    quick_cache = None
    if args.cache is None:
        # --quick builds its world through the pipeline every time (the smoke test covers the build) and leaves
        # nothing behind
        quick_cache = tempfile.mkdtemp(prefix="alpha_research_quick_") if args.quick else None
        args.cache = quick_cache or str(Path(tempfile.gettempdir()) / "alpha_research_cache")
    try:
        return run(args)
    finally:
        if quick_cache is not None:
            shutil.rmtree(quick_cache, ignore_errors=True)


def run(args) -> int:
    t0 = time.perf_counter()
    specs = [(seed, k, args) for k, seed in parse_worlds(args.worlds)]
    if args.jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(_job, specs, chunksize=1)
    else:
        results = [_job(s) for s in specs]
    if args.build_only:
        for r in results:
            print(
                f"world seed {r['seed']} strength {r['strength']:g}: built in {r['build_seconds'] or 0:.0f}s (0 = cached)"
            )
        print(f"{len(results)} worlds in {time.perf_counter() - t0:.0f}s")
        return 0
    for r in results:
        print_world(r)
    tuning = {int(s) for s in args.tuning_seeds.split(",") if s}
    summary = summarise(results, tuning)
    print("\nsummary (median / worst share of the all-channel oracle; null worlds: how many with |t| >= 2)")
    for key, figs in summary.items():
        for n, f in figs.items():
            print(f"  {key:16s} {n:18s} {json.dumps(f)}")
    checks = verdict(results, tuning)
    print("\nthe issue's bar on the held-out worlds (traded score; book with the production hold band):")
    for key, figs in checks.items():
        print(f"  {key:18s} {json.dumps(figs)}")
    total = time.perf_counter() - t0
    print(
        f"\nmachine: {machine()}; load {load_average()}; {len(results)} worlds of {args.tickers} names x "
        f"{args.days} sessions in {total:.0f}s ({args.jobs} process(es), 1 thread per fit)"
    )
    emit(
        {
            "machine": machine(),
            "load_average": load_average(),
            "tickers": args.tickers,
            "days": args.days,
            "kinds": args.kinds,
            "budget": args.budget,
            "label": args.label,
            "halflife": args.halflife,
            "band": args.band,
            "tuning_seeds": sorted(tuning),
            "seconds": round(total, 1),
            "summary": summary,
            "verdict": checks,
            "worlds": results,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
