"""Daily scoring: features.fused_embeddings, models.predictions, models.promotions and models.alpha_scores.

Day D is scored only by the model versions trained for D's block and available by D (``ModelBook``). The ensemble
weighs each model by its trailing out-of-sample IC measured on days whose next-day return was known at D's cut-off;
the champion recipe drives the book and the challenger scores alongside it (a configurable share of the book, 0 =
shadow). ``models.promotions`` compares the two with a sequential test on their paired daily IC (cumulative since
the roles were last set) and records each day's evidence.
"""

import json
from datetime import date

import numpy as np
import polars as pl
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Config,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from alpha_assets.automation import downstream
from alpha_assets.features.matrix import LeakageGateConfig, leakage_check, refuse_leaks
from alpha_assets.keys import (
    FEATURES_FEATURE_MATRIX,
    FEATURES_FUSED_EMBEDDINGS,
    FEATURES_LABELS,
    MODELS_ALPHA_MODELS,
    MODELS_ALPHA_SCORES,
    MODELS_FUSION_ENCODER,
    MODELS_PREDICTIONS,
    MODELS_PROMOTIONS,
)
from alpha_assets.lib.features.matrix import feature_columns
from alpha_assets.lib.models.ensemble import (
    BASELINE,
    GATE_MIN_T,
    GATE_SHRINK,
    LINEAR,
    LINEAR_MEMBERS,
    SEED_WEIGHTS,
    combine,
    correlation_report,
    gated_weights_for_day,
    recipe_ensembles,
    weights_for_day,
    with_linear,
)
from alpha_assets.lib.models.metrics import daily_ic
from alpha_assets.lib.models.promotion import (
    SequentialRule,
    SequentialState,
    alias_champion,
    blend_books,
    sequential_decision,
)
from alpha_assets.lib.settings import IC_WINDOW_SESSIONS
from alpha_assets.lib_config import config_of
from alpha_assets.metadata import md_table
from alpha_assets.models.common import (
    DEFAULT_CHAMPION_RECIPE,
    EMBEDDING_PREFIX,
    EVAL_LABEL,
    RECIPES,
    ModelBook,
    champion_by_day,
    embed_frame,
    modality_columns,
    registered_name,
)
from partitions import model_days, window_dates
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource
from resources.model_registry import CHALLENGER, CHAMPION, ModelRegistry

IC_WINDOW = (
    IC_WINDOW_SESSIONS  # sessions of trailing out-of-sample IC behind the ensemble weights (lib.settings)
)
ic_history = TimeWindowPartitionMapping(
    start_offset=-(IC_WINDOW + 2), end_offset=0, allow_nonexistent_upstream_partitions=True
)

PREDICTION_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.String,
    "model": pl.String,
    "recipe": pl.String,
    "block": pl.String,
    "model_version": pl.Int64,
    "score": pl.Float64,
}


def _no_model_days(context, name: str, skipped: list[date], written: int) -> None:
    if skipped:
        context.log.warning(
            f"{name}: no model trained for {len(skipped)} session(s) ({skipped[0]}..{skipped[-1]}): "
            "materialize models/alpha_models for their blocks (job train_alpha)"
        )
    if not written:
        raise Failure(
            f"{name}: no model is trained for any session of this window ({skipped[0]}..{skipped[-1]}): "
            "materialize models/fusion_encoder and models/alpha_models for their blocks first "
            "(job train_alpha, or `alpha train --alpha`)"
        )


@asset(
    key=FEATURES_FUSED_EMBEDDINGS,
    ins={"feature_matrix": AssetIn(key=FEATURES_FEATURE_MATRIX)},
    deps=[MODELS_FUSION_ENCODER],
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="features",
    kinds={"pytorch", "delta"},
    automation_condition=downstream,
    check_specs=[leakage_check(FEATURES_FUSED_EMBEDDINGS, "the embedding dimensions")],
)
def fused_embeddings(
    context: AssetExecutionContext,
    config: LeakageGateConfig,
    feature_matrix: pl.DataFrame,
    model_registry: ModelRegistry,
    lake_store: DeltaLakeResource,
):
    """The block's fusion transformer applied to each ticker-day: a fixed-size embedding of its imagery, text, web
    and price tokens (``emb_000``...), with the encoder version that produced it. The statistical leakage gate
    (``refuse_leaks``) runs on the embeddings before they are written: a refused window writes nothing."""
    book = ModelBook(model_registry, kinds=())
    frames, skipped, embedded = [], [], 0
    feats = feature_columns(feature_matrix)
    for day, rows in sorted(feature_matrix.partition_by("trade_date", as_dict=True).items()):
        fusion = book.fusion_for(day[0])
        # no encoder for the block (the fusion recipe is off by default): the keys, no embedding
        if fusion is None:
            skipped.append(day[0])
            frames.append(
                rows.select("trade_date", "ticker").with_columns(
                    pl.lit(None, dtype=pl.Int64).alias("fusion_version")
                )
            )
            continue
        emb = embed_frame(fusion[1], rows, modality_columns(feats))
        frames.append(emb.with_columns(pl.lit(fusion[0], dtype=pl.Int64).alias("fusion_version")))
        embedded += 1
    start, end = window_dates(*context.partition_time_window)
    if embedded and skipped:
        _no_model_days(context, "features.fused_embeddings", sorted(skipped), embedded)
    elif skipped:
        context.log.info(
            f"features.fused_embeddings: no fusion encoder for {start}..{end} (the fusion recipe is "
            "off by default): the rows carry no embedding"
        )
    if not frames:  # no feature rows in the window
        yield Output(pl.DataFrame(), metadata={"rows": 0})
        yield AssetCheckResult(check_name="no_leakage", passed=True, metadata={"gate": "no rows to test"})
        return
    import pyarrow as pa

    lake = lake_store.lake
    # columns the table already has (embeddings of an earlier fusion run) stay, null on the days without them
    have = (
        [f.name for f in pa.schema(lake.table("features", "fused_embeddings").schema().to_arrow())]
        if lake.exists("features", "fused_embeddings")
        else []
    )
    out = pl.concat(frames, how="diagonal")
    old_dims = [c for c in have if c.startswith(EMBEDDING_PREFIX) and c not in out.columns]
    out = out.with_columns(pl.lit(None, dtype=pl.Float32).alias(c) for c in old_dims)
    dims = sorted(c for c in out.columns if c.startswith(EMBEDDING_PREFIX))
    out = out.select("trade_date", "ticker", *dims, "fusion_version").sort("trade_date", "ticker")
    gate = (
        refuse_leaks(
            "features.fused_embeddings",
            out.drop_nulls("fusion_version"),
            dims,
            lake,
            start,
            end,
            config.leakage(),
        )
        if dims and embedded
        else {"gate": "no embeddings to test"}
    )
    yield Output(
        out,
        metadata={
            "rows": out.height,
            "dims": len(dims),
            "days_without_encoder": len(skipped),
            **{f"leakage_{k}": v for k, v in gate.items() if k != "late_values"},
        },
    )
    yield AssetCheckResult(
        check_name="no_leakage", passed=True, metadata={k: v for k, v in gate.items() if k != "late_values"}
    )


@asset(
    key=MODELS_PREDICTIONS,
    ins={
        "feature_matrix": AssetIn(key=FEATURES_FEATURE_MATRIX),
        "fused_embeddings": AssetIn(key=FEATURES_FUSED_EMBEDDINGS),
    },
    deps=[MODELS_ALPHA_MODELS],
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="models",
    kinds={"xgboost", "lightgbm", "catboost", "pytorch", "delta"},
    automation_condition=downstream,
)
def predictions(
    context: AssetExecutionContext,
    feature_matrix: pl.DataFrame,
    fused_embeddings: pl.DataFrame,
    model_registry: ModelRegistry,
):
    """Every model's score per ticker-day (long: model, recipe, model_version, score), each day scored by the
    versions trained for its block only."""
    book = ModelBook(model_registry)
    rows_all = feature_matrix.join(fused_embeddings, on=["trade_date", "ticker"], how="left")
    frames, skipped = [], []
    for (day,), rows in sorted(rows_all.partition_by("trade_date", as_dict=True).items()):
        scored = False
        for recipe in RECIPES:
            for kind in book.kinds:
                m = book.model_for(kind, recipe, day)
                if m is None:
                    continue
                missing = [c for c in m.features if c not in rows.columns]
                if missing:
                    raise Failure(
                        f"{m.name} v{m.version} needs columns the inputs of {day} lack: {missing[:5]}"
                    )
                check_encoder(m, rows, day)
                x = m.inputs(rows)
                frames.append(
                    rows.select("trade_date", "ticker").with_columns(
                        pl.lit(kind).alias("model"),
                        pl.lit(recipe).alias("recipe"),
                        pl.lit(m.block).alias("block"),
                        pl.lit(m.version, dtype=pl.Int64).alias("model_version"),
                        pl.Series("score", m.learner.predict(x).astype(np.float64)),
                    )
                )
                scored = True
        if not scored:
            skipped.append(day)
    _no_model_days(context, "models.predictions", skipped, len(frames))
    out = pl.concat(frames).cast(PREDICTION_SCHEMA).sort("trade_date", "model", "recipe", "ticker")
    versions = (
        out.select("model", "recipe", "model_version").unique().sort("model", "recipe", "model_version")
    )
    return Output(
        out,
        metadata={
            "rows": out.height,
            "days": out["trade_date"].n_unique(),
            "model_versions": MetadataValue.json(versions.to_dicts()),
        },
    )


def check_encoder(m, rows: pl.DataFrame, day: date) -> None:
    """A model that reads fused embeddings scores only embeddings made by the encoder version it was trained on
    (``fusion_version`` in its meta): another encoder's ``emb_000``... are different coordinates under the same
    names, and the model's scores would be noise that looks like a signal."""
    trained_on = m.meta.get("fusion_version")
    if trained_on is None or not any(c.startswith(EMBEDDING_PREFIX) for c in m.features):
        return
    made_by = (
        sorted({int(v) for v in rows["fusion_version"].drop_nulls()})
        if "fusion_version" in rows.columns
        else []
    )
    wrong = [v for v in made_by if v != int(trained_on)]
    if wrong:
        raise Failure(
            f"{m.name} v{m.version} was trained on fusion encoder v{int(trained_on)}, but the embeddings of {day} "
            f"were made by encoder v{', v'.join(map(str, wrong))}: re-materialize features/fused_embeddings for "
            f"{day} (alpha materialize --from {day} --to {day}), or retrain the block's models on that encoder"
        )


def _daily_ics(preds: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """trade_date, model, recipe, ic (rank IC of each model's score with the next-day return)."""
    joined = preds.join(labels.select("trade_date", "ticker", EVAL_LABEL), on=["trade_date", "ticker"])
    return daily_ic(joined, "score", EVAL_LABEL, by=("model", "recipe")).select(
        "trade_date", "ic", "model", "recipe"
    )


def _ensemble_ics(preds: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """trade_date, recipe, ic of each recipe's equal-weight ensemble (the promotion test's paired series)."""
    lab = labels.select("trade_date", "ticker", EVAL_LABEL)
    ens = recipe_ensembles(preds).join(lab, on=["trade_date", "ticker"])
    return daily_ic(ens, "score", EVAL_LABEL, by=("recipe",)).select("trade_date", "ic", "recipe")


class PromotionConfig(
    config_of(
        SequentialRule, ("alpha", "min_sessions", "planning_sessions"), rename={"alpha": "significance"}
    )
):
    """The sequential champion/challenger test (``lib.models.promotion.SequentialRule``): ``significance``, the
    chance of ever promoting a challenger that is no better (always-valid); ``min_sessions``, paired sessions since
    the roles were set before a promotion may happen; ``planning_sessions``, the test's scale in sessions (its
    boundary is tightest near it)."""


PROMOTION_SCHEMA = {
    "trade_date": pl.Date,
    "champion_before": pl.String,
    "challenger": pl.String,
    "champion_after": pl.String,
    "promoted": pl.Boolean,
    "n_sessions": pl.Int64,
    "evaluated_from": pl.Date,
    "evaluated_to": pl.Date,
    "mean_ic_champion": pl.Float64,
    "mean_ic_challenger": pl.Float64,
    "t_stat": pl.Float64,
    "p_value": pl.Float64,
    "reason": pl.String,
    "sd_ic_gain": pl.Float64,
    "evidence": pl.Float64,
    "boundary_gain": pl.Float64,
    "detectable_gain_80": pl.Float64,
}


def _state_after(row: dict | None) -> tuple[SequentialState, object, object]:
    """The sequential test's running sums, its first day and its last paired day after a promotions row (a
    promotion restarts the sums). The same path for a range run and for day-by-day reruns."""
    if row is None:
        return SequentialState(), None, None
    if row["promoted"] or not row["n_sessions"]:
        return SequentialState(), None, row["evaluated_to"]
    n = int(row["n_sessions"])
    s_a, s_b = row["mean_ic_champion"] * n, row["mean_ic_challenger"] * n
    sd = row["sd_ic_gain"] if row.get("sd_ic_gain") is not None and np.isfinite(row["sd_ic_gain"]) else 0.0
    s_d = s_b - s_a
    return (
        SequentialState(n, s_a, s_b, s_d, (n - 1) * sd * sd + s_d * s_d / n),
        row["evaluated_from"],
        row["evaluated_to"],
    )


@asset(
    key=MODELS_PROMOTIONS,
    ins={
        "predictions": AssetIn(key=MODELS_PREDICTIONS, partition_mapping=ic_history),
        "labels": AssetIn(key=FEATURES_LABELS, partition_mapping=ic_history),
    },
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="models",
    kinds={"polars", "delta", "mlflow"},
    automation_condition=downstream,
)
def promotions(
    context: AssetExecutionContext,
    config: PromotionConfig,
    predictions: pl.DataFrame,
    labels: pl.DataFrame,
    lake_store: DeltaLakeResource,
    model_registry: ModelRegistry,
):
    """Champion/challenger as a sequential test (``lib.models.promotion.sequential_decision``): every day the
    paired daily ICs known since the roles were last set are added to the running evidence, which promotes the
    challenger recipe once it reaches 1/significance. One row per day with its evidence, the gain that would
    promote now and the gain detectable with 80% power; the MLflow aliases follow the run's last decision."""
    start, end = window_dates(*context.partition_time_window)
    lake = lake_store.lake
    rule: SequentialRule = config.lib()
    ics = _ensemble_ics(predictions, labels)
    earlier = (
        lake.read("models", "promotions", None, shift_sessions(start, -1))
        if lake.exists("models", "promotions")
        else pl.DataFrame(schema=PROMOTION_SCHEMA)
    )
    last = earlier.sort("trade_date").tail(1).to_dicts()
    previous = last[0] if last else None
    champion = previous["champion_after"] if previous else DEFAULT_CHAMPION_RECIPE
    rows = []
    for day in sessions_between(start, end):
        state, first, since = _state_after(previous)
        challenger = next(r for r in RECIPES if r != champion)
        known = ics.filter(pl.col("trade_date") < day)
        if since is not None:
            known = known.filter(pl.col("trade_date") > since)
        paired = (
            known.filter(pl.col("recipe") == champion)
            .select("trade_date", pl.col("ic").alias("a"))
            .join(
                known.filter(pl.col("recipe") == challenger).select("trade_date", pl.col("ic").alias("b")),
                on="trade_date",
            )
            .sort("trade_date")
        )
        state = state.update(paired["a"].to_numpy(), paired["b"].to_numpy())
        if state.n == 0:
            continue
        d = sequential_decision(state, rule)
        after = challenger if d.promote else champion
        row = {
            "trade_date": day,
            "champion_before": champion,
            "challenger": challenger,
            "champion_after": after,
            "promoted": d.promote,
            "n_sessions": d.n_sessions,
            "evaluated_from": first or paired["trade_date"][0],
            "evaluated_to": paired["trade_date"][-1] if paired.height else since,
            "mean_ic_champion": d.mean_ic_champion,
            "mean_ic_challenger": d.mean_ic_challenger,
            "t_stat": d.t_stat,
            "p_value": d.p_value,
            "reason": d.reason,
            "sd_ic_gain": d.sd_ic_gain,
            "evidence": d.evidence,
            "boundary_gain": d.boundary_gain,
            "detectable_gain_80": d.detectable_gain_80,
        }
        rows.append(row)
        if d.promote:
            context.log.info(f"{day}: PROMOTE {challenger}: {d.reason}")
        champion, previous = after, row
    out = pl.DataFrame(rows, schema=PROMOTION_SCHEMA).with_columns(pl.col(pl.Float64).fill_nan(None))
    target = alias_champion(rows)
    if target is not None:
        _move_aliases(model_registry, target, end)
    return Output(
        out,
        metadata={
            "days": len(rows),
            "promotions": int(out["promoted"].sum()) if rows else 0,
            "champion_recipe": champion,
            "last_reason": rows[-1]["reason"] if rows else "no paired sessions yet",
        },
    )


def _move_aliases(registry: ModelRegistry, new_champion: str, day: date) -> None:
    """Point ``champion``/``challenger`` at the versions of the new roles for ``day``'s block."""
    book = ModelBook(registry)
    for kind in book.kinds:
        for recipe in RECIPES:
            m = book.model_for(kind, recipe, day)
            if m is not None:
                registry.set_alias(
                    registered_name(kind), CHAMPION if recipe == new_champion else CHALLENGER, m.version
                )


def _previous_scores(lake, start) -> dict[str, float]:
    """The traded score of each name on the last scored session before ``start`` (empty when none)."""
    if not lake.exists("models", "alpha_scores"):
        return {}
    prev = lake.read("models", "alpha_scores", shift_sessions(start, -10), shift_sessions(start, -1))
    if prev.height == 0:
        return {}
    last = prev.filter(pl.col("trade_date") == prev["trade_date"].max())
    return dict(zip(last["ticker"], last["alpha_score"], strict=True))


class AlphaScoresConfig(Config):
    challenger_share: float = 0.2  # the seed's split: 80% of the book from the champion; 0 = shadow mode
    min_ic_history: int = 20  # sessions of known IC per model before IC weights replace the seed weights
    # The gate (when the recipe has a ridge baseline): a learner gets weight only while its trailing paired daily
    # IC beats the linear baseline's (ridge + ic_weighted blended) with t >= gate_min_t; weights are (1 - gate_shrink) x equal + gate_shrink x IC-proportional.
    gate_min_t: float = GATE_MIN_T
    gate_shrink: float = GATE_SHRINK
    correlation_threshold: float = 0.7
    # The traded score can be an exponential average of the day's blend over past sessions (half-life in sessions;
    # 0 = the day's blend alone, the default). On the research benchmark's tuning worlds (seeds 1-4) every
    # smoothing lowered the next-day IC (a half-life chosen walk-forward each day: share of the oracle 0.71 vs 0.84,
    # 0.39 vs 0.50, ...), and the book's turnover is cut where it costs less IC: the hold band
    # (portfolio.target_weights' hold_band), which with no smoothing gave the same or better net Sharpe.
    score_halflife_sessions: float = 0.0


@asset(
    key=MODELS_ALPHA_SCORES,
    ins={
        "predictions": AssetIn(key=MODELS_PREDICTIONS, partition_mapping=ic_history),
        "labels": AssetIn(key=FEATURES_LABELS, partition_mapping=ic_history),
    },
    deps=[MODELS_PROMOTIONS],
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="models",
    kinds={"polars", "delta"},
    automation_condition=downstream,
)
def alpha_scores(
    context: AssetExecutionContext,
    config: AlphaScoresConfig,
    predictions: pl.DataFrame,
    labels: pl.DataFrame,
    lake_store: DeltaLakeResource,
):
    """The ensemble per ticker-day in ``alpha_score``: each recipe's models gated against its linear baseline (the
    equal blend of ridge and ic_weighted, ``ensemble.LINEAR``) on trailing out-of-sample paired IC (past days only;
    the linear pair alone until a learner has ``min_ic_history`` days that show it beats them; see
    ``ensemble.gated_weights``), then the champion's and the
    challenger's ensembles blended (``blended_score``), then averaged exponentially over past sessions
    (``score_halflife_sessions``); the weights and model versions used are columns."""
    start, end = window_dates(*context.partition_time_window)
    lake = lake_store.lake
    sessions = sessions_between(shift_sessions(start, -(IC_WINDOW + 2)), end)
    # each model's daily IC, and that of each recipe's linear blend (the gate's baseline: ensemble.LINEAR)
    ics = _daily_ics(with_linear(predictions, by=("recipe",)), labels)
    champions = champion_by_day(lake, sessions_between(start, end))
    frames, weight_log = [], {}
    smoothed = _previous_scores(lake, start)  # ticker -> yesterday's traded score (the smoothing's state)
    alpha = 1 - 0.5 ** (1 / config.score_halflife_sessions) if config.score_halflife_sessions > 0 else 1.0
    for day in sessions_between(start, end):
        today = predictions.filter(pl.col("trade_date") == day)
        if today.height == 0:
            continue
        champ = champions[day]
        books, used = {}, {}
        for recipe in RECIPES:
            p = today.filter(pl.col("recipe") == recipe)
            if p.height == 0:
                continue
            r_ics = ics.filter(pl.col("recipe") == recipe).select("trade_date", "model", "ic")
            members = sorted(set(p["model"]))
            if BASELINE in members:
                # the linear learners' blend is the baseline (both present), else ridge alone (older blocks)
                baseline = LINEAR if set(LINEAR_MEMBERS) <= set(members) else BASELINE
                w = gated_weights_for_day(
                    r_ics,
                    day,
                    members,
                    baseline,
                    min_history=config.min_ic_history,
                    window=IC_WINDOW,
                    horizon=1,
                    sessions=sessions,
                    min_t=config.gate_min_t,
                    shrink=config.gate_shrink,
                )
            else:  # models trained before the ridge baseline existed: the seed's IC weights
                w = weights_for_day(
                    r_ics,
                    day,
                    min_history=config.min_ic_history,
                    window=IC_WINDOW,
                    horizon=1,
                    sessions=sessions,
                    seed_weights={k: v for k, v in SEED_WEIGHTS.items() if k in members},
                )
            books[recipe] = combine(p.select("trade_date", "ticker", "model", "score"), w)
            used[recipe] = {
                "weights": dict(w),
                "versions": {
                    r["model"]: r["model_version"]
                    for r in p.select("model", "model_version").unique().to_dicts()
                },
            }
        if champ not in books:
            champ = next(iter(books))
        chall = next((r for r in RECIPES if r != champ and r in books), None)
        share = config.challenger_share if chall else 0.0
        blended = blend_books(books[champ], books[chall] if chall else books[champ].head(0), share)
        blended = blended.rename({"alpha_score": "blended_score"})
        prev = pl.Series([smoothed.get(t) for t in blended["ticker"]], dtype=pl.Float64)
        blended = blended.with_columns(
            pl.when(prev.is_null())
            .then(pl.col("blended_score"))
            .otherwise(alpha * pl.col("blended_score") + (1 - alpha) * prev)
            .alias("alpha_score"),
            # alpha_score = smoothing_weight x blended_score + carried_score (explanations split it so)
            pl.when(prev.is_null()).then(0.0).otherwise((1 - alpha) * prev).alias("carried_score"),
            pl.when(prev.is_null()).then(1.0).otherwise(alpha).alias("smoothing_weight"),
        )
        smoothed = dict(zip(blended["ticker"], blended["alpha_score"], strict=True))
        frames.append(
            blended.with_columns(
                pl.lit(champ).alias("champion_recipe"),
                pl.lit(chall or "").alias("challenger_recipe"),
                pl.lit(share).alias("challenger_share"),
                pl.lit(json.dumps(used[champ]["weights"], sort_keys=True)).alias("champion_weights"),
                pl.lit(json.dumps(used.get(chall, {}).get("weights", {}), sort_keys=True)).alias(
                    "challenger_weights"
                ),
                pl.lit(json.dumps(used, sort_keys=True)).alias("model_versions"),
            )
        )
        weight_log[str(day)] = used[champ]["weights"]
    if not frames:
        raise Failure(
            f"models.alpha_scores: no predictions in {start}..{end}: materialize models/predictions first"
        )
    out = pl.concat(frames).sort("trade_date", "ticker")
    corr = correlation_report(
        predictions.filter(pl.col("recipe") == out["champion_recipe"][-1]).select(
            "trade_date", "ticker", "model", "score"
        ),
        config.correlation_threshold,
    )
    flagged = corr.filter(pl.col("above_threshold"))
    if flagged.height:
        context.log.warning(
            f"model pairs with mean daily rank correlation above {config.correlation_threshold}: "
            + ", ".join(f"{r['model_a']}/{r['model_b']} {r['mean_corr']:.2f}" for r in flagged.to_dicts())
        )
    last = str(out["trade_date"].max())
    return Output(
        out,
        metadata={
            "rows": out.height,
            "days": len(frames),
            "champion_recipe": out["champion_recipe"][-1],
            "weights_last_day": MetadataValue.json(weight_log.get(last, {})),
            "model_correlation": MetadataValue.md(md_table(corr) if corr.height else "n/a"),
            "correlated_pairs_above_threshold": flagged.height,
        },
    )
