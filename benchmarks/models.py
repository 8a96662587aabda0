"""The model layer's costs: training a block, a day's inference, SHAP for the day's book, fusion embeddings.

Usage: .venv/bin/python benchmarks/models.py [--quick] [--budget demo|seed] [--threads N]
Synthetic feature matrices shaped like features.feature_matrix (130 normalised columns, rank-scaled, a planted
signal in a few of them) so the figures do not depend on a world. Sizes: a training block is 252 sessions x N names
(the last 42 sessions are the early-stopping slice); a day is N names. Peers timed in the same run: scikit-learn's
HistGradientBoostingRegressor for a block's fit and `shap.TreeExplainer` for the book's attributions. --quick is
a smoke run (make bench, CI): every step and peer on small sizes (a block of 50 names, a 500-name book and day,
the demo fusion encoder on 1,000 rows); its figures are not the benchmark's (5,000-name training takes minutes per
learner on 2 cores).
Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import emit, machine, print_table
from threadpoolctl import threadpool_limits

from alpha_assets.lib.models.learners import MODEL_KINDS, make_learner

N_FEATURES = 130
SESSIONS, VALIDATION = 252, 42


def matrix(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (n_rows, N_FEATURES)).astype(np.float32)
    y = (0.08 * x[:, 0] - 0.06 * x[:, 1] + 0.04 * x[:, 2] + rng.normal(0, 0.29, n_rows)).astype(np.float32)
    return x, y


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def rank01(a: np.ndarray) -> np.ndarray:
    return a.argsort().argsort() / max(len(a) - 1, 1) - 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", default="demo", choices=["demo", "seed"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    train_sizes = [50] if args.quick else [500, 5000]
    # the day's names (inference, and the book's 60% for SHAP) and the fusion encoder's training sample
    day_names, fusion_rows = (500, 1000) if args.quick else (5000, 8000)
    book_names = day_names * 3 // 5
    rows, figures = (
        [],
        {
            "machine": machine(),
            "budget": args.budget,
            "threads": args.threads,
            "features": N_FEATURES,
            "block_sessions": SESSIONS,
            "quick": args.quick,
            "day_names": day_names,
            "book_names": book_names,
            "fusion_rows": fusion_rows,
        },
    )
    models = {}
    for n in train_sizes:
        x, y = matrix(n * SESSIONS, seed=n)
        cut = n * (SESSIONS - VALIDATION)
        total = 0.0
        for kind in MODEL_KINDS:
            learner = make_learner(kind, seed=7, threads=args.threads, budget=args.budget)
            _, secs, cpu = timed(lambda lr=learner, x=x, y=y, c=cut: lr.fit(x[:c], y[:c], x[c:], y[c:]))
            total += secs
            models[kind] = learner
            rows.append([f"fit {kind}", n, n * SESSIONS, secs, cpu])
            figures[f"train_{kind}_s_{n}"] = round(secs, 2)
        figures[f"train_block_s_{n}"] = round(total, 2)
        rows.append([f"fit block ({len(MODEL_KINDS)} learners)", n, n * SESSIONS, total, float("nan")])
        from sklearn.ensemble import HistGradientBoostingRegressor

        peer = HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, early_stopping=False, random_state=0
        )
        # --quick: the peer's OpenMP at the learners' thread count (at the smoke size, OpenMP threads spinning
        # on a loaded 2-core machine took minutes of CPU for a fit of seconds)
        with threadpool_limits(args.threads if args.quick else None, user_api="openmp"):
            _, secs, cpu = timed(lambda p=peer, x=x, y=y, c=cut: p.fit(x[:c], y[:c]))
        rows.append(["peer: sklearn HistGBR fit (300 iters)", n, n * SESSIONS, secs, cpu])
        figures[f"peer_sklearn_hgbr_fit_s_{n}"] = round(secs, 2)

    # A day's inference for 5,000 names: every learner of the block predicts (the gate weighs the members by their
    # daily ICs, so each is scored whatever its weight) + the combination (ranks, weighted sum). The weights' values
    # do not change the cost: equal ones here.
    day, _ = matrix(day_names, seed=99)
    weights = dict.fromkeys(MODEL_KINDS, 1 / len(MODEL_KINDS))

    def ensemble_day():
        scores = [models[k].predict(day) for k in MODEL_KINDS]
        return sum(weights[k] * rank01(s) for k, s in zip(MODEL_KINDS, scores, strict=True))

    ensemble_day()  # warm-up (first-call allocations)
    reps = [timed(ensemble_day)[1] for _ in range(5)]
    figures[f"inference_ms_{day_names}"] = round(1000 * float(np.median(reps)), 1)
    rows.append(
        ["inference: ensemble day (median of 5)", day_names, day_names, float(np.median(reps)), float("nan")]
    )
    for kind in MODEL_KINDS:
        _, secs, _ = timed(lambda kind=kind: models[kind].predict(day))
        figures[f"inference_ms_{day_names}_{kind}"] = round(1000 * secs, 1)

    # SHAP for a day's book: 30% long + 30% short of 5,000 names.
    import polars as pl

    from alpha_assets.lib.models.explain import shap_frame

    book = day[:book_names]
    from datetime import date

    keys = pl.DataFrame(
        {"trade_date": [date(2026, 11, 30)] * book_names, "ticker": [f"T{i}" for i in range(book_names)]}
    )
    names = [f"f{i:03d}" for i in range(N_FEATURES)]
    for kind in ("xgboost", "lightgbm", "catboost"):
        _, secs, _ = timed(lambda kind=kind: shap_frame(models[kind], kind, book, names, keys))
        figures[f"shap_book_s_{kind}"] = round(secs, 2)
        rows.append([f"SHAP {kind} (native TreeSHAP)", book_names, book_names, secs, float("nan")])
    import shap

    _, secs, _ = timed(lambda: shap.TreeExplainer(models["lightgbm"].model).shap_values(book))
    figures["peer_shap_treeexplainer_lightgbm_s"] = round(secs, 2)
    rows.append(["peer: shap.TreeExplainer lightgbm", book_names, book_names, secs, float("nan")])
    sub = book[:100]
    _, secs, _ = timed(
        lambda: shap_frame(models["mlp"], "mlp", sub, names, keys.head(100), background=day[:50], nsamples=50)
    )
    figures["shap_mlp_s_per_100_names"] = round(secs, 2)
    rows.append(["SHAP mlp (sampled, 50 background)", 100, 100, secs, float("nan")])

    # Fusion: demo-size encoder trained on a sample; a day's embeddings at 5,000 names (demo and seed sizes).
    from alpha_assets.lib.models.fusion import FusionConfig, train_fusion

    groups = {"image": slice(0, 20), "text": slice(20, 60), "web": slice(60, 75), "price": slice(75, 130)}
    x, _ = matrix(fusion_rows, seed=5)
    arrays = {k: x[:, s] for k, s in groups.items()}
    day_arrays = {k: day[:, s] for k, s in groups.items()}
    for label, cfg in (("demo", FusionConfig.demo()), ("seed", FusionConfig(epochs=1, threads=args.threads))):
        if label == "seed" and args.quick:
            continue
        (model, metrics), secs, _ = timed(lambda cfg=cfg: train_fusion(arrays, cfg))
        rows.append(
            [
                f"fusion train ({label}: {metrics['parameters']:,} params, {cfg.epochs} ep)",
                fusion_rows,
                fusion_rows,
                secs,
                float("nan"),
            ]
        )
        figures[f"fusion_train_s_{label}"] = round(secs, 2)
        _, secs, _ = timed(lambda model=model: model.embed(day_arrays))
        figures[f"fusion_embed_ms_{day_names}_{label}"] = round(1000 * secs, 1)
        rows.append([f"fusion embeddings for a day ({label})", day_names, day_names, secs, float("nan")])
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    print(f"machine: {figures['machine']}; budget {args.budget}, {args.threads} thread(s)")
    print_table(["step", "names", "rows", "seconds", "cpu_seconds"], rows)
    emit(figures)


if __name__ == "__main__":
    main()
