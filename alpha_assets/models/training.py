"""models.fusion_encoder and models.alpha_models: one partition per retraining block (a calendar quarter).

A block's models learn from the ``train_sessions`` sessions that end ``purge_sessions`` before the quarter starts
and score only the quarter's sessions. Fitting rule (``alpha_assets.lib.models.learners``): a fixed, regularised
budget per learner, no early stopping. Each learner is first fitted on the window minus its last
``validation_sessions`` (and a purge), which measures an honest validation IC; the registered model is then refitted
on the whole window with the same budget. The label is the next-day return's daily rank (``TRAIN_LABEL``), what the
book trades; ``ridge`` is trained beside the other learners as the baseline the ensemble gate compares them with. Every trained model is an MLflow run with its parameters, the hash of
the training rows' content (``training_data_hash``), IC / ICIR / decile spread on the validation slice, feature
importance, wall and CPU seconds, the fit's own peak memory increase (``peak_rss_mb``, ``FitMemory``), and a
registered version tagged with its block, recipe and the first day it may score (``available_from``). The Delta
tables only mirror what was registered.
"""

import dataclasses
import hashlib
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from dagster import (
    AssetExecutionContext,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
)

from alpha_assets.compute import TRAINING
from alpha_assets.keys import (
    FEATURES_FEATURE_MATRIX,
    FEATURES_LABELS,
    MODELS_ALPHA_MODELS,
    MODELS_FUSION_ENCODER,
)
from alpha_assets.lib.features.matrix import feature_columns
from alpha_assets.lib.models.learners import MODEL_KINDS
from alpha_assets.lib.models.walk_forward import WalkForwardConfig, block_split
from alpha_assets.lib.monitoring.fit_memory import FitMemory
from alpha_assets.lib.settings import label_horizon_of
from alpha_assets.models.common import (
    CHAMPION_TAG,
    DEFAULT_RECIPES,
    EMBEDDING_PREFIX,
    EVAL_LABEL,
    FUSION_MODEL,
    RECIPES,
    TRAIN_LABEL,
    ModelBook,
    block_sessions,
    champion_recipe,
    embed_frame,
    modality_columns,
    model_budget,
    rank_label,
    registered_name,
)
from partitions import MAX_TRAIN_SESSIONS, MIN_HISTORY_SHARE, PURGE_SESSIONS, TRAIN_SESSIONS, training_blocks
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource
from resources.model_registry import CHALLENGER, CHAMPION, ModelRegistry

# A block trains when the lake holds at least MIN_HISTORY_SHARE of its training window: the rule is defined in
# `partitions`, where it also places the first session of the model assets' partitions.
# The label columns a training read needs: the target's, the evaluation's, and fwd_ret_5 for the horizon metric.
LABEL_READ = tuple(dict.fromkeys((TRAIN_LABEL, EVAL_LABEL, "fwd_ret_5")))


class BlockTrainingConfig(Config):
    """Walk-forward settings a researcher tunes (seed: train 252, test = the quarter, purge 5, embargo 5)."""

    train_sessions: int = TRAIN_SESSIONS
    purge_sessions: int = PURGE_SESSIONS
    embargo_sessions: int = 5
    validation_sessions: int = 42
    # An expanding window: a block needs train_sessions of history and learns from all the feature matrix holds
    # before it, up to this many sessions (3 years). On the research benchmark's tuning worlds at 0.05 (seeds 1, 3,
    # 5-8) it raised ridge's share of the oracle on 4 of 6 (mean +0.13; seed 7: 0.33 -> 0.69), equal on 1, lower
    # on seed 8 (0.88 -> 0.63); ic_weighted's mean +0.22 (5 of 6 up); 0.1 worlds equal; the null world's t fell
    # (ridge 1.2 -> 0.6). 0 = rolling.
    max_train_sessions: int = MAX_TRAIN_SESSIONS
    budget: str = ""  # "seed" | "demo"; empty: $ALPHA_MODEL_BUDGET or "seed"
    kinds: list[str] = list(MODEL_KINDS)
    # "base" (the feature matrix) and/or "fusion" (matrix + the fusion encoder's embeddings; give it to both
    # models/fusion_encoder and models/alpha_models). Default: base alone (common.DEFAULT_RECIPES says why).
    recipes: list[str] = list(DEFAULT_RECIPES)
    seed: int = 7
    # One thread: on a 2-core machine shared with other steps, 2-thread tree and torch fits ran 3-20x slower.
    threads: int = 1
    # The validation fit and the final refit of a learner are independent: fit them side by side in two threads
    # (one thread each; the trees and the linear algebra release the GIL). The same models as one after the other.
    fit_side_by_side: bool = True
    fusion_max_rows: int = 5000  # contrastive pretraining on a seeded sample of the window's rows
    # Retraining inside a block (the retraining sensor sets it): train on the window ending at this session; the
    # new versions score the block's sessions after it.
    as_of: str = ""

    def walk_forward(self) -> WalkForwardConfig:
        return WalkForwardConfig(
            train_sessions=self.train_sessions,
            purge_sessions=self.purge_sessions,
            embargo_sessions=self.embargo_sessions,
            label_horizon=label_horizon_of(TRAIN_LABEL),
            validation_sessions=self.validation_sessions,
            max_train_sessions=self.max_train_sessions,
        )


def _split(block: str, config: BlockTrainingConfig, lake=None):
    """The block's fit / validation / test sessions, or a clear Failure when history is too short. The window
    expands back to the feature matrix's first session (``lake``), at least ``train_sessions`` and at most
    ``max_train_sessions`` long."""
    test = block_sessions(block)
    if config.as_of:
        as_of = date.fromisoformat(config.as_of)
        test = [d for d in test if d > as_of]
    if not test:
        raise Failure(
            f"block {block} has no sessions to score{' after ' + config.as_of if config.as_of else ''}"
        )
    # The calendar's sessions, not the lake's: whether the lake holds enough of them is _training_rows' rule. The
    # rolling minimum always; further back only as far as the matrix goes (a window expanding before the lake's
    # first day would count the days before it as missing).
    cfg = config.walk_forward()
    need = cfg.sessions_before_test
    first = shift_sessions(test[0], -need)
    if (
        cfg.max_train_sessions > cfg.train_sessions
        and lake is not None
        and lake.exists("features", "feature_matrix")
    ):
        lo = lake.scan("features", "feature_matrix").select(pl.col("trade_date").min()).collect().item()
        first = min(first, max(lo, shift_sessions(test[0], -(cfg.max_train_sessions + cfg.purge_sessions))))
    history = sessions_between(first, test[-1])
    try:
        return block_split(history, test[0], test[-1], cfg)
    except ValueError as e:
        raise Failure(f"block {block}: {e}") from None


def _window(split) -> list[date]:
    """The block's whole training window: every session from the first fit day to the last validation day."""
    return sessions_between(split.fit_dates[0], split.validation_dates[-1])


def _training_rows(lake, dates: list[date], label: str) -> tuple[pl.DataFrame, dict]:
    """Feature-matrix rows of ``dates`` with a known label, the ranked target, and the Delta versions read."""
    if not lake.exists("features", "feature_matrix") or not lake.exists("features", "labels"):
        raise Failure("features.feature_matrix and features.labels must be materialized before training")
    lo, hi = min(dates), max(dates)
    matrix = lake.read("features", "feature_matrix", lo, hi)
    labels = lake.read(
        "features", "labels", lo, hi, columns=["trade_date", "ticker", *dict.fromkeys((label, *LABEL_READ))]
    )
    have = set(matrix["trade_date"].unique().to_list())
    missing = [d for d in dates if d not in have]
    if len(missing) > (1 - MIN_HISTORY_SHARE) * len(dates):
        raise Failure(
            f"features.feature_matrix has {len(dates) - len(missing)} of the {len(dates)} training sessions "
            f"{lo}..{hi}: materialize them first (alpha materialize --from {lo} --to {hi})"
        )
    rows = (
        matrix.filter(pl.col("trade_date").is_in(dates))
        .join(labels, on=["trade_date", "ticker"], how="inner")
        .filter(pl.col(label).is_not_null() & pl.col(label).is_finite())
    )
    versions = {
        "features.feature_matrix": lake.version("features", "feature_matrix"),
        "features.labels": lake.version("features", "labels"),
    }
    return rank_label(rows, label).sort("trade_date", "ticker"), versions


def training_data_hash(rows: pl.DataFrame, columns: list[str]) -> str:
    """sha256 of the training rows' content only: keys, ``columns`` and target, rows sorted by (trade_date, ticker),
    each column serialised canonically (its name and dtype class; dates as int64 days, numbers as little-endian
    float64, strings as UTF-8, each with its null mask). Independent of the tables' Delta versions (an unrelated
    day appended changes nothing) and of polars' ``hash_rows`` (not stable across polars versions)."""
    h = hashlib.sha256()
    frame = rows.select("trade_date", "ticker", *columns, "target").sort("trade_date", "ticker")
    for name in frame.columns:
        col = frame[name]
        nulls = col.is_null().to_numpy()
        if col.dtype == pl.Date:
            kind, data = b"date", col.cast(pl.Int64).fill_null(0).to_numpy().astype("<i8").tobytes()
        elif col.dtype in (pl.String, pl.Categorical):
            kind, data = b"str", "\x1f".join(col.cast(pl.String).fill_null("").to_list()).encode()
        else:
            kind, data = b"num", col.cast(pl.Float64).fill_null(0.0).to_numpy().astype("<f8").tobytes()
        for part in (name.encode(), kind, np.packbits(nulls).tobytes(), data):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return h.hexdigest()


@asset(
    key=MODELS_FUSION_ENCODER,
    deps=[FEATURES_FEATURE_MATRIX],
    partitions_def=training_blocks,
    op_tags=TRAINING.op_tags,
    pool=TRAINING.pool,
    group_name="models",
    kinds={"pytorch", "mlflow", "delta"},
    metadata={"partition_expr": "trade_date"},
)
def fusion_encoder(
    context: AssetExecutionContext,
    config: BlockTrainingConfig,
    lake_store: DeltaLakeResource,
    model_registry: ModelRegistry,
):
    """The cross-modal fusion transformer for the block: one projection per modality (imagery, text, web, price
    scalars), multi-head attention over the modality tokens, a fixed-size embedding; pretrained self-supervised
    (contrastive: modalities of the same ticker-day agree) on the block's training window only."""
    from alpha_assets.lib.models.fusion import FusionConfig, modality_arrays, train_fusion

    block = context.partition_key
    if "fusion" not in config.recipes:  # the default: nothing to train, the table stays as it is
        why = f"the fusion recipe is off (recipes {config.recipes})"
        context.log.info(f"block {block}: {why}; no encoder trained")
        return Output(pl.DataFrame(), metadata={"skipped": why})
    split = _split(block, config, lake_store.lake)
    rows, versions = _training_rows(lake_store.lake, _window(split), TRAIN_LABEL)
    feats = feature_columns(rows.drop("target", *LABEL_READ))
    modalities = modality_columns(feats)
    budget = model_budget(config.budget)
    cfg = FusionConfig.demo() if budget == "demo" else FusionConfig()
    cfg = dataclasses.replace(cfg, seed=config.seed, threads=config.threads)
    if rows.height > config.fusion_max_rows:
        rows = rows.sample(config.fusion_max_rows, seed=config.seed).sort("trade_date", "ticker")
    t0, c0, mem = time.perf_counter(), time.process_time(), FitMemory().start()
    model, metrics = train_fusion(modality_arrays(rows, modalities), cfg)
    seconds, cpu, fit_mb = time.perf_counter() - t0, time.process_time() - c0, mem.stop()
    available_from = split.test_dates[0]
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "fusion")
        (Path(tmp) / "alpha_meta.json").write_text(json.dumps({"modalities": modalities}))
        mv = model_registry.log_model(
            FUSION_MODEL,
            f"{FUSION_MODEL}-{block}",
            {
                **cfg.__dict__,
                "block": block,
                "budget": budget,
                "modalities": json.dumps({k: len(v) for k, v in modalities.items()}),
            },
            {
                **{k: float(v) for k, v in metrics.items() if isinstance(v, int | float)},
                "train_seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_mb": fit_mb,
            },
            Path(tmp),
            experiment="alpha_models",
            version_tags={
                "block": block,
                "available_from": available_from.isoformat(),
                "trained_through": split.validation_dates[-1].isoformat(),
                "training_data_hash": training_data_hash(rows, feats),
            },
            run_tags={"dagster/run_id": context.run.run_id},
            alias=CHAMPION,
        )
    context.log.info(f"fusion encoder v{mv.version} for block {block}: {metrics}")
    out = pl.DataFrame(
        [
            {
                "trade_date": date.fromisoformat(block),
                "block": block,
                "model": FUSION_MODEL,
                "version": mv.version,
                "run_id": mv.run_id,
                "available_from": available_from,
                "train_rows": rows.height,
                "train_seconds": seconds,
                "metrics": json.dumps(metrics, default=float),
            }
        ]
    )
    return Output(
        out,
        metadata={
            "version": mv.version,
            "train_rows": rows.height,
            "seconds": round(seconds, 1),
            **{k: MetadataValue.float(float(v)) for k, v in metrics.items() if isinstance(v, int | float)},
        },
    )


# torch's thread count is process-wide: two MLP fits at once would change each other's (and so their bits)
SEQUENTIAL_KINDS = frozenset({"mlp"})


def fit_validation_and_final(make, x, y, fit_mask, feats, days, *, side_by_side: bool):
    """Two fits of the same budget: ``held_out`` without the window's last validation sessions (purged), whose
    validation IC is honest, and the registered model on the whole window. Side by side in two threads when asked
    (on 2 cores about half the wall time); each fit is the same either way."""
    held_out, final = make(), make()
    jobs = [
        (held_out, x[fit_mask], y[fit_mask], days[fit_mask]),
        (final, x, y, days),
    ]
    if not side_by_side:
        for learner, xs, ys, groups in jobs:
            learner.fit(xs, ys, feature_names=feats, groups=groups)
        return held_out, final
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2, thread_name_prefix="fit") as pool:
        futures = [pool.submit(m.fit, xs, ys, feature_names=feats, groups=g) for m, xs, ys, g in jobs]
        for f in futures:
            f.result()
    return held_out, final


def _validation_metrics(keys: pl.DataFrame, pred: np.ndarray) -> dict[str, float]:
    from alpha_assets.lib.models.metrics import daily_ic, decile_spread, ic_summary

    df = keys.with_columns(pl.Series("score", pred))
    ic1 = ic_summary(daily_ic(df, "score", EVAL_LABEL))
    ic5 = ic_summary(daily_ic(df, "score", "fwd_ret_5"))
    return {
        "ic": ic1["ic"],
        "icir": ic1["icir"],
        "ic_t_stat": ic1["t_stat"],
        "ic_fwd5": ic5["ic"],
        "decile_spread": decile_spread(df, "score", EVAL_LABEL),
    }


@asset(
    key=MODELS_ALPHA_MODELS,
    deps=[FEATURES_FEATURE_MATRIX, FEATURES_LABELS, MODELS_FUSION_ENCODER],
    partitions_def=training_blocks,
    op_tags=TRAINING.op_tags,
    pool=TRAINING.pool,
    group_name="models",
    kinds={"xgboost", "lightgbm", "catboost", "pytorch", "mlflow"},
    metadata={"partition_expr": "trade_date"},
)
def alpha_models(
    context: AssetExecutionContext,
    config: BlockTrainingConfig,
    lake_store: DeltaLakeResource,
    model_registry: ModelRegistry,
):
    """Every learner kind per configured recipe (base: the matrix; fusion, when configured: with the fused
    embeddings), trained walk-forward for the block with a purge and an embargo; each one an MLflow run and a
    registered version."""
    from alpha_assets.lib.models.learners import make_learner

    block = context.partition_key
    lake = lake_store.lake
    split = _split(block, config, lake)
    rows, versions = _training_rows(lake, _window(split), TRAIN_LABEL)
    base_feats = feature_columns(rows.drop("target", *LABEL_READ))
    budget = model_budget(config.budget)
    available_from = split.test_dates[0]
    unknown = [r for r in config.recipes if r not in RECIPES]
    if unknown or not config.recipes:
        raise Failure(f"recipes {config.recipes}: give one or more of {list(RECIPES)}")
    champion = champion_recipe(lake, available_from)
    if champion not in config.recipes:  # e.g. a promoted fusion recipe no longer trained: the first one leads
        champion = config.recipes[0]
    book = ModelBook(model_registry, kinds=())
    fusion = book.fusion_for(available_from) if "fusion" in config.recipes else None
    if "fusion" in config.recipes and fusion is None:
        raise Failure(f"no fusion encoder for block {block}: materialize models/fusion_encoder first")
    if fusion is not None:
        emb = embed_frame(fusion[1], rows, modality_columns(base_feats))
        rows = rows.join(emb, on=["trade_date", "ticker"], how="left")
    fit_mask = rows["trade_date"].is_in(split.fit_dates).to_numpy()
    val_mask = rows["trade_date"].is_in(split.validation_dates).to_numpy()
    results = []
    for recipe in config.recipes:
        feats = base_feats + (
            [c for c in rows.columns if c.startswith(EMBEDDING_PREFIX)] if recipe == "fusion" else []
        )
        x = rows.select(feats).to_numpy().astype(np.float32)
        y = rows["target"].to_numpy().astype(np.float32)
        days = rows["trade_date"].to_numpy()
        # the embeddings' values are among the hashed columns of the fusion recipe; the base recipe ignores them
        data_hash = training_data_hash(rows, feats)
        for kind in config.kinds:
            t0, c0, mem = time.perf_counter(), time.process_time(), FitMemory().start()
            held_out, learner = fit_validation_and_final(
                lambda kind=kind: make_learner(
                    kind, seed=config.seed, params=None, threads=config.threads, budget=budget
                ),
                x,
                y,
                fit_mask,
                feats,
                days,
                side_by_side=config.fit_side_by_side and kind not in SEQUENTIAL_KINDS,
            )
            val_pred = held_out.predict(x[val_mask])
            metrics = _validation_metrics(rows.filter(pl.Series(val_mask)), val_pred)
            seconds, cpu, fit_mb = time.perf_counter() - t0, time.process_time() - c0, mem.stop()
            importance = learner.feature_importance()
            top = dict(sorted(importance.items(), key=lambda kv: -kv[1])[:20])
            deciles = np.quantile(val_pred, np.linspace(0, 1, 11)).tolist()
            alias = CHAMPION if recipe == champion else CHALLENGER
            with tempfile.TemporaryDirectory() as tmp:
                learner.save(Path(tmp))
                (Path(tmp) / "alpha_meta.json").write_text(
                    json.dumps(
                        {
                            "kind": kind,
                            "recipe": recipe,
                            "block": block,
                            "features": feats,
                            "validation_score_quantiles": deciles,
                            "fusion_version": fusion[0] if fusion else None,
                            "feature_importance": importance,
                        }
                    )
                )
                imp_file = Path(tmp) / "feature_importance.json"
                imp_file.write_text(json.dumps(importance, indent=1))
                mv = model_registry.log_model(
                    registered_name(kind),
                    f"{kind}-{recipe}-{block}",
                    {
                        **learner.params,
                        "kind": kind,
                        "recipe": recipe,
                        "block": block,
                        "budget": budget,
                        "label": TRAIN_LABEL,
                        "features": len(feats),
                        "train_rows": len(y),
                        "fitting_rule": "fixed budget; validation fit without the last sessions, refit on the window",
                        "validation_rows": int(val_mask.sum()),
                        "fit_start": split.fit_dates[0],
                        "fit_end": split.fit_dates[-1],
                        "validation_end": split.validation_dates[-1],
                        "purge_sessions": config.purge_sessions,
                        "embargo_sessions": config.embargo_sessions,
                        "training_data_hash": data_hash,
                        "best_iteration": learner.best_iteration,
                    },
                    {**metrics, "train_seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": fit_mb},
                    Path(tmp),
                    experiment="alpha_models",
                    artifacts={"importance": imp_file},
                    version_tags={
                        "block": block,
                        "recipe": recipe,
                        "kind": kind,
                        "available_from": available_from.isoformat(),
                        "trained_through": split.validation_dates[-1].isoformat(),
                        "training_data_hash": data_hash,
                    },
                    run_tags={"dagster/run_id": context.run.run_id, CHAMPION_TAG: str(recipe == champion)},
                    alias=alias,
                )
            context.log.info(
                f"{kind}/{recipe} block {block}: v{mv.version}, validation IC {metrics['ic']:+.4f} "
                f"in {seconds:.1f}s"
            )
            results.append(
                {
                    "trade_date": date.fromisoformat(block),
                    "block": block,
                    "model": kind,
                    "recipe": recipe,
                    "registered_model": registered_name(kind),
                    "version": mv.version,
                    "run_id": mv.run_id,
                    "alias": alias,
                    "available_from": available_from,
                    "trained_through": split.validation_dates[-1],
                    "train_rows": rows.height,
                    "features": len(feats),
                    "training_data_hash": data_hash,
                    "validation_ic": metrics["ic"],
                    "validation_icir": metrics["icir"],
                    "decile_spread": metrics["decile_spread"],
                    "train_seconds": seconds,
                    "cpu_seconds": cpu,
                    "top_features": json.dumps(top),
                }
            )
    out = pl.DataFrame(results)
    if lake.exists(
        "models", "alpha_models"
    ):  # keep earlier versions of this block (a retrain adds, not replaces)
        start = date.fromisoformat(block)
        earlier = lake.read("models", "alpha_models", start, start + timedelta(days=1))
        earlier = earlier.filter(~pl.col("run_id").is_in(out["run_id"].to_list()))
        if earlier.height and earlier.columns == out.columns:
            out = pl.concat([earlier.cast(out.schema), out])
    return Output(
        out,
        metadata={
            "models": len(results),
            "train_rows": rows.height,
            "available_from": str(available_from),
            "champion_recipe": champion,
            "validation_ic": MetadataValue.json(
                {f"{r['model']}/{r['recipe']}": round(r["validation_ic"], 4) for r in results}
            ),
            "seconds": round(sum(r["train_seconds"] for r in results), 1),
        },
    )
