"""monitoring.model_health and monitoring.feature_drift (daily), and the sensor that asks for retraining.

Model health per model and per recipe ensemble: rolling 30-session IC on days whose next-day return was known at
the day's cut-off, the drop against the IC measured on the model's validation slice at training (warn > 10%,
retrain > 20%), IC by horizon (1/5/20, each on days whose horizon had passed), the score's stability against its
validation distribution (PSI of the score) and feature-importance stability against the previous block's model.
Feature drift: PSI of each raw feature (price features and alt values, before the per-day normalisation that would
hide it) over the last 20 sessions against the block's training window. ``retraining_sensor`` reads the latest
health rows and requests a mid-block retrain of the champion recipe when its ensemble IC has collapsed.
"""

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    BackfillPolicy,
    DefaultSensorStatus,
    MetadataValue,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    TimeWindowPartitionMapping,
    asset,
    sensor,
)

from alpha_assets.automation import downstream
from alpha_assets.lib.features.matrix import ALT_VALUE_COLUMNS
from alpha_assets.lib.models.ensemble import recipe_ensembles
from alpha_assets.lib.models.metrics import daily_ic
from alpha_assets.lib.monitoring.drift import (
    MIN_PSI_VALUES,
    HealthThresholds,
    csi,
    feature_counts,
    feature_psi_from_counts,
    feature_references,
    ic_drop,
    importance_stability,
    new_observations,
)
from alpha_assets.models.common import (
    LABELS,
    PREDICTIONS,
    PROMOTIONS,
    ModelBook,
    block_bounds,
    champion_by_day,
)
from partitions import block_key, trading_days, window_dates
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource
from resources.model_registry import ModelRegistry

MODEL_HEALTH = AssetKey(["monitoring", "model_health"])
FEATURE_DRIFT = AssetKey(["monitoring", "feature_drift"])
HEALTH_WINDOW = 30
health_history = TimeWindowPartitionMapping(start_offset=-(HEALTH_WINDOW + 25), end_offset=0,
                                            allow_nonexistent_upstream_partitions=True)  # fmt: skip
HORIZONS = {"fwd_ret_1": 1, "fwd_ret_5": 5, "fwd_ret_20": 20}


def _with_ensembles(preds: pl.DataFrame) -> pl.DataFrame:
    """The models' scores plus each recipe's equal-weight ensemble as model 'ensemble'."""
    base = preds.select("trade_date", "ticker", "model", "recipe", "score")
    return pl.concat([base, recipe_ensembles(preds).select(base.columns)])


@asset(
    key=MODEL_HEALTH,
    ins={"predictions": AssetIn(key=PREDICTIONS, partition_mapping=health_history),
         "labels": AssetIn(key=LABELS, partition_mapping=health_history)},
    deps=[PROMOTIONS],  # which recipe is the champion on each day
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="monitoring",
    kinds={"polars", "delta"},
    automation_condition=downstream,
)  # fmt: skip
def model_health(context: AssetExecutionContext, predictions: pl.DataFrame, labels: pl.DataFrame,
                 lake_store: DeltaLakeResource, model_registry: ModelRegistry):  # fmt: skip
    """Per day, model and recipe: rolling IC, training IC, drop and status, IC decay by horizon, score PSI,
    importance stability."""
    start, end = window_dates(*context.partition_time_window)
    th = HealthThresholds()
    scored = _with_ensembles(predictions).join(labels, on=["trade_date", "ticker"], how="left")
    sessions = sessions_between(shift_sessions(start, -(HEALTH_WINDOW + 25)), end)
    ics = {label: daily_ic(scored, "score", label, by=("model", "recipe")) for label in HORIZONS}
    book = ModelBook(model_registry)
    champions = champion_by_day(lake_store.lake, sessions_between(start, end))
    rows, ic_cache = [], {}
    for day in sessions_between(start, end):
        today = scored.filter(pl.col("trade_date") == day)  # models and ensembles, ranked per day already
        if today.height == 0:
            continue
        champ = champions[day]
        i = sessions.index(day)
        for (model, recipe), g in today.partition_by("model", "recipe", as_dict=True).items():
            row = {"trade_date": day, "model": model, "recipe": recipe, "champion": recipe == champ}
            for label, h in HORIZONS.items():
                known_to = sessions[i - h] if i - h >= 0 else None
                lo = sessions[max(0, i - h - HEALTH_WINDOW + 1)]
                sel = (ics[label].filter((pl.col("model") == model) & (pl.col("recipe") == recipe)
                                         & pl.col("trade_date").is_between(lo, known_to))
                       if known_to is not None else None)  # fmt: skip
                row[f"ic_{h}"] = float(sel["ic"].mean()) if sel is not None and sel.height else None
                if h == 1:
                    row["n_sessions"] = sel.height if sel is not None else 0
            members = [book.model_for(k, recipe, day) for k in book.kinds] if model == "ensemble" else \
                [book.model_for(model, recipe, day)]  # fmt: skip
            members = [m for m in members if m is not None]
            train_ics = [_training_ic(model_registry, m, ic_cache) for m in members]
            training_ic = float(np.nanmean(train_ics)) if train_ics else np.nan
            status = ic_drop(row["ic_1"] if row["ic_1"] is not None else np.nan, training_ic,
                             th.warn_ic_drop, th.retrain_ic_drop)  # fmt: skip
            if row["n_sessions"] < th.min_sessions and status["status"] != "ok":
                status["status"] = "ok"  # too few live sessions to judge
            score_psi = np.nan
            if model != "ensemble" and members:
                q = np.asarray(members[0].meta.get("validation_score_quantiles", []), dtype=float)
                if q.size == 11:
                    # the validation scores' deciles stand in for the training distribution (10% per bin)
                    expected = np.interp(np.linspace(0, 1, 200), np.linspace(0, 1, 11), q)
                    score_psi = csi(expected, g["score"].to_numpy())
            stability = np.nan
            if model != "ensemble" and members:
                prev_day = block_bounds(block_key(day))[0] - timedelta(days=1)
                prev = book.model_for(model, recipe, prev_day)
                if prev is not None and prev.version != members[0].version:
                    stability = importance_stability(members[0].meta.get("feature_importance", {}),
                                                     prev.meta.get("feature_importance", {}))  # fmt: skip
            rows.append({**row, "training_ic": training_ic, "ic_drop": status["drop_share"],
                         "status": status["status"], "score_psi": float(score_psi),
                         "importance_stability": float(stability)})  # fmt: skip
    schema = {"trade_date": pl.Date, "model": pl.String, "recipe": pl.String, "champion": pl.Boolean,
              "ic_1": pl.Float64, "n_sessions": pl.Int64, "ic_5": pl.Float64, "ic_20": pl.Float64,
              "training_ic": pl.Float64, "ic_drop": pl.Float64, "status": pl.String, "score_psi": pl.Float64,
              "importance_stability": pl.Float64}  # fmt: skip
    out = pl.DataFrame(rows, schema=schema)
    latest = out.filter(pl.col("trade_date") == out["trade_date"].max()) if out.height else out
    return Output(out, metadata={
        "rows": out.height,
        "latest": MetadataValue.json({f"{r['model']}/{r['recipe']}": {"ic_30": r["ic_1"], "status": r["status"]}
                                      for r in latest.to_dicts()}),
        "retrain_flags": int(latest.filter(pl.col("status") == "retrain").height),
    })  # fmt: skip


def _training_ic(registry: ModelRegistry, m, cache: dict) -> float:
    """The IC the model showed on its validation slice at training (one MLflow query per version and run)."""
    key = (m.name, m.version)
    if key not in cache:
        cache[key] = registry.run_metrics(registry.get_version(m.name, m.version).run_id).get("ic", np.nan)
    return cache[key]


DRIFT_REFERENCE = "monitoring/drift_reference.json"  # artifact of the model's MLflow run
DRIFT_REFERENCE_VERSION = 1  # bump when psi_reference changes what it keeps


def _drift_reference(context, lake, registry: ModelRegistry, m, feats: list[str]) -> dict:
    """Per feature, the training window's PSI bins and shares (``feature_references``) for model version ``m``.

    Computed once per model version from the 252 sessions it was trained through, and kept with the model (a JSON
    artifact of its MLflow run): a daily run then reads a few numbers per feature instead of a year of feature
    rows (at 5,000 names that read was ~6 s of a ~30 s day). Recomputed when a feature is missing from the kept
    one (a source added since) or the format changed. The reference is of the rows as they were when first
    computed; like the model itself, it does not follow later restatements of its training window."""
    mv = registry.get_version(m.name, m.version)
    try:
        kept = registry.run_json(mv.run_id, DRIFT_REFERENCE)
    except ValueError as e:  # a torn or foreign file: computed again and replaced, never trusted
        context.log.warning(f"drift reference of {m.name} v{m.version} unreadable ({e}): computing it again")
        kept = None
    if kept and kept.get("format") == DRIFT_REFERENCE_VERSION and set(feats) <= set(kept["features"]):
        return kept["features"]
    through = date.fromisoformat(mv.tags["trained_through"])
    start = shift_sessions(through, -251)
    references = feature_references(_raw_features(lake, start, through), feats)
    registry.log_run_json(mv.run_id, DRIFT_REFERENCE, {
        "format": DRIFT_REFERENCE_VERSION, "model": m.name, "version": int(m.version),
        "window": [start.isoformat(), through.isoformat()], "features": references})  # fmt: skip
    context.log.info(
        f"drift reference of {m.name} v{m.version} ({start}..{through}) computed and kept with the model"
    )
    return references


def _raw_features(lake, start: date, end: date) -> pl.DataFrame:
    price = lake.read("features", "price_features", start, end)
    if lake.exists("features", "alt_features"):
        alt = lake.read("features", "alt_features", start, end)
        keep = [c for c in ALT_VALUE_COLUMNS if c in alt.columns]
        price = price.join(alt.select("trade_date", "ticker", *keep), on=["trade_date", "ticker"], how="left")
    return price


# A day's drift is measured on its last 20 sessions pooled: one day's cross-section of a return or a sparse alt value
# (5 names with tank data in the demo) is too small a sample, and moves with that day's market as a whole.
DRIFT_SESSIONS = 20
drift_window = TimeWindowPartitionMapping(start_offset=-DRIFT_SESSIONS, end_offset=0,
                                          allow_nonexistent_upstream_partitions=True)  # fmt: skip


def pooled_drift(
    current: pl.DataFrame, feats: list[str], blocks: dict[date, str], references: dict[str, dict]
) -> list[pl.DataFrame]:
    """feature_drift's rows for each day of ``blocks`` (day -> the block of its model) that has rows in
    ``current``: PSI of the day's last DRIFT_SESSIONS sessions against ``references[block]``. ``current`` must
    start one session before the first pool (its values are the baseline of ``new_observations``). Each session
    is binned once per reference and the bins are added up, so a backfill costs about one binning per day."""
    by_day = {k[0]: v for k, v in current.partition_by("trade_date", as_dict=True).items()}
    fresh = {r.pop("trade_date"): r for r in new_observations(current, feats).to_dicts()}
    frames, day_counts = [], {}
    for day, block in sorted(blocks.items()):
        if day not in by_day:
            continue
        refs = references[block]
        pooled, observed = dict.fromkeys(feats), dict.fromkeys(feats, 0)
        for d in sessions_between(shift_sessions(day, -(DRIFT_SESSIONS - 1)), day):
            if d not in by_day:
                continue
            for f in feats:
                observed[f] += fresh[d][f]
            if (block, d) not in day_counts:
                day_counts[(block, d)] = feature_counts(refs, by_day[d], feats)
            for f, c in day_counts[(block, d)].items():
                if c is not None:  # None: no training values for f (then never counted)
                    pooled[f] = c if pooled[f] is None else pooled[f] + c
        frames.append(feature_psi_from_counts(refs, pooled, feats, observations=observed).with_columns(
            pl.lit(day).alias("trade_date"), pl.lit(block).alias("block")))  # fmt: skip
    return frames


@asset(
    key=FEATURE_DRIFT,
    deps=[
        AssetDep(AssetKey(["features", "price_features"]), partition_mapping=drift_window),
        AssetDep(AssetKey(["features", "alt_features"]), partition_mapping=drift_window),
        PREDICTIONS,
    ],
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="monitoring",
    kinds={"polars", "delta"},
    automation_condition=downstream,
)
def feature_drift(
    context: AssetExecutionContext, lake_store: DeltaLakeResource, model_registry: ModelRegistry
):
    """PSI of each raw feature over the day's last 20 sessions (pooled) against the training window of the day's
    model (drift above 0.2). `values` is the pooled sample's size, `observations` how many of them are new values
    (a value carried forward is one observation): PSI is not computed (null, no drift) below 100 observations,
    where it measures the sample size rather than the data (a sparse alt feature on a few names)."""
    start, end = window_dates(*context.partition_time_window)
    lake = lake_store.lake
    book = ModelBook(model_registry, kinds=("lightgbm",))
    # one session more than the pools reach: their first day's values are compared with the day before
    current = _raw_features(lake, shift_sessions(start, -DRIFT_SESSIONS), end)
    feats = [c for c in current.columns if c not in ("trade_date", "ticker", "close", "is_filled")
             and current.schema[c].is_numeric()]  # fmt: skip
    models, train_cache = {}, {}
    for day in sessions_between(start, end):
        m = book.model_for("lightgbm", "base", day) or book.model_for("lightgbm", "fusion", day)
        if m is None:
            continue
        if m.block not in train_cache:
            train_cache[m.block] = _drift_reference(context, lake, model_registry, m, feats)
        models[day] = m.block
    frames = pooled_drift(current, feats, models, train_cache)
    if not frames:
        return Output(pl.DataFrame(schema={"trade_date": pl.Date, "block": pl.String, "feature": pl.String,
                                           "psi": pl.Float64, "drift": pl.Boolean, "values": pl.Int64,
                                           "observations": pl.Int64}),
                      metadata={"rows": 0, "note": "no trained model for these days"})  # fmt: skip
    out = pl.concat(frames).select("trade_date", "block", "feature", "psi", "drift", "values", "observations")
    last = out.filter(pl.col("trade_date") == out["trade_date"].max()).sort(
        "psi", descending=True, nulls_last=True
    )
    scored = last.filter(pl.col("psi").is_not_null())
    return Output(out, metadata={
        "rows": out.height, "drifting_features_last_day": int(last["drift"].sum()),
        "features_scored_last_day": scored.height,
        "too_few_values_last_day": MetadataValue.json(
            last.filter(pl.col("psi").is_null())["feature"].to_list()),
        "pooled_sessions": DRIFT_SESSIONS, "min_values": MIN_PSI_VALUES,
        "top_psi_last_day": MetadataValue.json(
            {r["feature"]: round(r["psi"], 3) for r in scored.head(10).to_dicts()})})  # fmt: skip


def retrain_requests(health: pl.DataFrame, last_requested: dict[str, str]) -> list[dict]:
    """Which blocks to retrain now: the champion ensemble's latest status is 'retrain' on enough live sessions, and
    that block was not already retrained on or after that day. Pure, for the sensor and its tests."""
    if health.height == 0:
        return []
    latest_day = health["trade_date"].max()
    row = health.filter(
        (pl.col("trade_date") == latest_day) & (pl.col("model") == "ensemble") & pl.col("champion")
    )
    if row.height == 0 or row["status"][0] != "retrain":
        return []
    block = block_key(latest_day)
    if last_requested.get(block, "") >= latest_day.isoformat():
        return []
    r = row.to_dicts()[0]
    return [{"block": block, "as_of": latest_day.isoformat(),
             "reason": f"champion ensemble ({r['recipe']}) rolling IC {r['ic_1']:+.4f} vs training IC "
                       f"{r['training_ic']:+.4f} (drop {r['ic_drop'] if r['ic_drop'] is not None else float('nan'):.0%})"}]  # fmt: skip


@sensor(job_name="train_alpha", minimum_interval_seconds=300, default_status=DefaultSensorStatus.RUNNING,
        description="Requests a mid-block retrain when monitoring.model_health says the champion's IC collapsed.")  # fmt: skip
def retraining_sensor(context: SensorEvaluationContext, lake_store: DeltaLakeResource):
    lake = lake_store.lake
    if not lake.exists("monitoring", "model_health"):
        return SkipReason("no monitoring.model_health yet")
    health = lake.scan("monitoring", "model_health")
    last_day = health.select(pl.col("trade_date").max()).collect().item()
    health = health.filter(pl.col("trade_date") == last_day).collect()
    state = json.loads(context.cursor) if context.cursor else {}
    reqs = retrain_requests(health, state)
    if not reqs:
        return SkipReason(f"model health on {last_day}: no retraining needed")
    for r in reqs:
        state[r["block"]] = r["as_of"]
    context.update_cursor(json.dumps(state))
    return [RunRequest(run_key=f"retrain-{r['block']}-{r['as_of']}", partition_key=r["block"],
                       run_config={"ops": {op: {"config": {"as_of": r["as_of"]}}
                                           for op in ("models__fusion_encoder", "models__alpha_models")}},
                       tags={"alpha/retrain_reason": r["reason"][:200]}) for r in reqs]  # fmt: skip
