"""monitoring.model_health and monitoring.feature_drift (daily), and the sensor that asks for retraining.

Model health per model and per recipe ensemble: the live IC (mean daily rank IC over the last 30 sessions whose
next-day return was known at the day's cut-off) tested against the IC the same model/recipe earned out of sample
over the (up to 252) sessions before that window, one-sided with Newey-West standard errors
(``lib/monitoring/health.py``: ``retrain`` at p < 1%, ``warn`` at p < 5%); IC by horizon (1/5/20, each on days
whose horizon had passed), the score's stability against its validation distribution (PSI of the score) and
feature-importance stability against the previous block's model. The validation IC measured at training is kept
as ``training_ic`` for reference only: it is inflated by model selection and says nothing about live decay.
Feature drift: PSI of each raw feature (price features and alt values, before the per-day normalisation that would
hide it) over the last 20 sessions against the block's training window. ``retraining_sensor`` reads the latest
health rows and requests a mid-block retrain of the champion recipe when its ensemble IC is significantly below
what it earned.
"""

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetIn,
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
from alpha_assets.keys import (
    FEATURES_ALT_FEATURES,
    FEATURES_LABELS,
    FEATURES_PRICE_FEATURES,
    MODELS_PREDICTIONS,
    MODELS_PROMOTIONS,
    MONITORING_FEATURE_DRIFT,
    MONITORING_MODEL_HEALTH,
)
from alpha_assets.lib.features.matrix import ALT_VALUE_COLUMNS
from alpha_assets.lib.models.ensemble import recipe_ensembles
from alpha_assets.lib.models.metrics import daily_ic
from alpha_assets.lib.monitoring.drift import (
    MIN_PSI_VALUES,
    csi,
    feature_counts,
    feature_psi_from_counts,
    feature_references,
    importance_stability,
    new_observations,
)
from alpha_assets.lib.monitoring.health import HealthRule, health_by_day, ic_health
from alpha_assets.models.common import ModelBook, block_bounds, champion_by_day
from partitions import LABEL_HORIZONS, block_key, model_days, window_dates
from partitions.calendar import sessions_between, shift_sessions
from resources.lake_resource import DeltaLakeResource
from resources.model_registry import ModelRegistry

HEALTH_RULE = HealthRule()
HEALTH_WINDOW = HEALTH_RULE.live_sessions
# the live window, the out-of-sample reference before it, and the longest IC horizon reported (20)
health_history = TimeWindowPartitionMapping(
    start_offset=-(HEALTH_RULE.reference_sessions + HEALTH_WINDOW + 25),
    end_offset=0,
    allow_nonexistent_upstream_partitions=True,
)
HORIZONS = {f"fwd_ret_{h}": h for h in LABEL_HORIZONS}
HEALTH_SCHEMA = {
    "trade_date": pl.Date,
    "model": pl.String,
    "recipe": pl.String,
    "champion": pl.Boolean,
    "ic_1": pl.Float64,
    "n_sessions": pl.Int64,
    "ic_5": pl.Float64,
    "ic_20": pl.Float64,
    "ic_se": pl.Float64,
    "reference_ic": pl.Float64,
    "reference_se": pl.Float64,
    "reference_sessions": pl.Int64,
    "z_stat": pl.Float64,
    "p_value": pl.Float64,
    "status": pl.String,
    "training_ic": pl.Float64,
    "ic_drop": pl.Float64,
    "score_psi": pl.Float64,
    "importance_stability": pl.Float64,
}


def _with_ensembles(preds: pl.DataFrame) -> pl.DataFrame:
    """The models' scores plus each recipe's equal-weight ensemble as model 'ensemble'."""
    base = preds.select("trade_date", "ticker", "model", "recipe", "score")
    return pl.concat([base, recipe_ensembles(preds).select(base.columns)])


def _on_sessions(ics: pl.DataFrame, sessions: list[date]) -> dict[tuple[str, str], np.ndarray]:
    """(model, recipe) -> that pair's daily IC on each of ``sessions`` (NaN where it has none)."""
    pos = {d: i for i, d in enumerate(sessions)}
    out = {}
    for (model, recipe), g in ics.partition_by("model", "recipe", as_dict=True).items():
        x = np.full(len(sessions), np.nan)
        for d, v in zip(g["trade_date"], g["ic"], strict=True):
            if d in pos:
                x[pos[d]] = v
        out[(model, recipe)] = x
    return out


@asset(
    key=MONITORING_MODEL_HEALTH,
    ins={
        "predictions": AssetIn(key=MODELS_PREDICTIONS, partition_mapping=health_history),
        "labels": AssetIn(key=FEATURES_LABELS, partition_mapping=health_history),
    },
    deps=[MODELS_PROMOTIONS],  # which recipe is the champion on each day
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="monitoring",
    kinds={"polars", "delta"},
    automation_condition=downstream,
)
def model_health(
    context: AssetExecutionContext,
    predictions: pl.DataFrame,
    labels: pl.DataFrame,
    lake_store: DeltaLakeResource,
    model_registry: ModelRegistry,
):
    """Per day, model and recipe: the live 30-session IC against the IC the pair earned out of sample before it
    (one-sided test with Newey-West standard errors; ``retrain`` at p < 1%, ``warn`` at p < 5%), IC decay by
    horizon, score PSI, importance stability. ``training_ic`` (the validation slice's) is shown, never judged."""
    start, end = window_dates(*context.partition_time_window)
    rule = HEALTH_RULE
    scored = _with_ensembles(predictions).join(labels, on=["trade_date", "ticker"], how="left")
    sessions = sessions_between(shift_sessions(start, -(rule.reference_sessions + HEALTH_WINDOW + 25)), end)
    ics = {
        label: _on_sessions(daily_ic(scored, "score", label, by=("model", "recipe")), sessions)
        for label in HORIZONS
    }
    verdicts = {pair: health_by_day(x, rule) for pair, x in ics["fwd_ret_1"].items()}
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
            v = verdicts[(model, recipe)][i] if (model, recipe) in verdicts else ic_health([], [], rule)
            row = {
                "trade_date": day,
                "model": model,
                "recipe": recipe,
                "champion": recipe == champ,
                "ic_1": v["live_ic"] if v["n_live"] else None,
                "n_sessions": v["n_live"],
                "ic_se": v["live_se"],
                "reference_ic": v["reference_ic"],
                "reference_se": v["reference_se"],
                "reference_sessions": v["n_reference"],
                "z_stat": v["z_stat"],
                "p_value": v["p_value"],
                "status": v["status"],
                # for reading only: the live IC's relative drop from the reference (the status is the test's)
                "ic_drop": (v["reference_ic"] - v["live_ic"]) / v["reference_ic"]
                if v["n_live"] and v["n_reference"] and v["reference_ic"] > 0
                else None,
            }
            for label, h in HORIZONS.items():
                if h == 1:
                    continue
                x = ics[label].get((model, recipe))
                window = x[max(0, i - h - HEALTH_WINDOW + 1) : max(0, i - h + 1)] if x is not None else x
                known = window[np.isfinite(window)] if window is not None else []
                row[f"ic_{h}"] = float(np.mean(known)) if len(known) else None
            members = (
                [book.model_for(k, recipe, day) for k in book.kinds]
                if model == "ensemble"
                else [book.model_for(model, recipe, day)]
            )
            members = [m for m in members if m is not None]
            train_ics = [_training_ic(model_registry, m, ic_cache) for m in members]
            training_ic = float(np.nanmean(train_ics)) if train_ics else np.nan
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
                    stability = importance_stability(
                        members[0].meta.get("feature_importance", {}), prev.meta.get("feature_importance", {})
                    )
            rows.append(
                {
                    **row,
                    "training_ic": training_ic,
                    "score_psi": float(score_psi),
                    "importance_stability": float(stability),
                }
            )
    out = pl.DataFrame(rows, schema=HEALTH_SCHEMA).with_columns(pl.col(pl.Float64).fill_nan(None))
    latest = out.filter(pl.col("trade_date") == out["trade_date"].max()) if out.height else out
    return Output(
        out,
        metadata={
            "rows": out.height,
            "rule": MetadataValue.json(
                {
                    "live_sessions": rule.live_sessions,
                    "reference_sessions": rule.reference_sessions,
                    "retrain_alpha": rule.retrain_alpha,
                    "warn_alpha": rule.warn_alpha,
                }
            ),
            "latest": MetadataValue.json(
                {
                    f"{r['model']}/{r['recipe']}": {
                        "ic_30": r["ic_1"],
                        "reference_ic": r["reference_ic"],
                        "p_value": r["p_value"],
                        "status": r["status"],
                    }
                    for r in latest.to_dicts()
                }
            ),
            "retrain_flags": int(latest.filter(pl.col("status") == "retrain").height),
            "retrain_share": float((out["status"] == "retrain").mean()) if out.height else 0.0,
        },
    )


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
    registry.log_run_json(
        mv.run_id,
        DRIFT_REFERENCE,
        {
            "format": DRIFT_REFERENCE_VERSION,
            "model": m.name,
            "version": int(m.version),
            "window": [start.isoformat(), through.isoformat()],
            "features": references,
        },
    )
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
drift_window = TimeWindowPartitionMapping(
    start_offset=-DRIFT_SESSIONS, end_offset=0, allow_nonexistent_upstream_partitions=True
)


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
        frames.append(
            feature_psi_from_counts(refs, pooled, feats, observations=observed).with_columns(
                pl.lit(day).alias("trade_date"), pl.lit(block).alias("block")
            )
        )
    return frames


@asset(
    key=MONITORING_FEATURE_DRIFT,
    deps=[
        AssetDep(FEATURES_PRICE_FEATURES, partition_mapping=drift_window),
        AssetDep(FEATURES_ALT_FEATURES, partition_mapping=drift_window),
        MODELS_PREDICTIONS,
    ],
    partitions_def=model_days,
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
    feats = [
        c
        for c in current.columns
        if c not in ("trade_date", "ticker", "close", "is_filled") and current.schema[c].is_numeric()
    ]
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
        return Output(
            pl.DataFrame(
                schema={
                    "trade_date": pl.Date,
                    "block": pl.String,
                    "feature": pl.String,
                    "psi": pl.Float64,
                    "drift": pl.Boolean,
                    "values": pl.Int64,
                    "observations": pl.Int64,
                }
            ),
            metadata={"rows": 0, "note": "no trained model for these days"},
        )
    out = pl.concat(frames).select("trade_date", "block", "feature", "psi", "drift", "values", "observations")
    last = out.filter(pl.col("trade_date") == out["trade_date"].max()).sort(
        "psi", descending=True, nulls_last=True
    )
    scored = last.filter(pl.col("psi").is_not_null())
    return Output(
        out,
        metadata={
            "rows": out.height,
            "drifting_features_last_day": int(last["drift"].sum()),
            "features_scored_last_day": scored.height,
            "too_few_values_last_day": MetadataValue.json(
                last.filter(pl.col("psi").is_null())["feature"].to_list()
            ),
            "pooled_sessions": DRIFT_SESSIONS,
            "min_values": MIN_PSI_VALUES,
            "top_psi_last_day": MetadataValue.json(
                {r["feature"]: round(r["psi"], 3) for r in scored.head(10).to_dicts()}
            ),
        },
    )


def retrain_requests(health: pl.DataFrame, last_requested: dict[str, str]) -> list[dict]:
    """Which blocks to retrain now: the champion ensemble's latest status is 'retrain', and that block was not
    retrained within the last HEALTH_WINDOW sessions (a retrained model needs a live window of its own before it
    can be judged; until then the window still holds the old model's days). Pure, for the sensor and its tests."""
    if health.height == 0:
        return []
    latest_day = health["trade_date"].max()
    row = health.filter(
        (pl.col("trade_date") == latest_day) & (pl.col("model") == "ensemble") & pl.col("champion")
    )
    if row.height == 0 or row["status"][0] != "retrain":
        return []
    block = block_key(latest_day)
    if last_requested.get(block, "") >= shift_sessions(latest_day, -HEALTH_WINDOW).isoformat():
        return []
    r = row.to_dicts()[0]

    def f(v) -> float:
        return float("nan") if v is None else float(v)

    return [
        {
            "block": block,
            "as_of": latest_day.isoformat(),
            "reason": f"champion ensemble ({r['recipe']}) live IC {f(r['ic_1']):+.4f} over {r['n_sessions']} "
            f"sessions vs {f(r['reference_ic']):+.4f} earned out of sample before "
            f"(z {f(r['z_stat']):.2f}, one-sided p {f(r['p_value']):.2g})",
        }
    ]


# STOPPED by default: it trains (hours of CPU); start it once the fund runs live (README: "Sensors").
@sensor(
    job_name="train_alpha",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description="Requests a mid-block retrain when monitoring.model_health says the champion's IC fell significantly.",
)
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
    return [
        RunRequest(
            run_key=f"retrain-{r['block']}-{r['as_of']}",
            partition_key=r["block"],
            run_config={
                "ops": {
                    op: {"config": {"as_of": r["as_of"]}}
                    for op in ("models__fusion_encoder", "models__alpha_models")
                }
            },
            tags={"alpha/retrain_reason": r["reason"][:200]},
        )
        for r in reqs
    ]
