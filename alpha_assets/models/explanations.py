"""models.shap_values and models.lime_explanations: why each name in the book got the score it trades.

``models.shap_values`` decomposes the traded ``alpha_score`` of every name in the day's book
(``lib.models.explain.traded_decomposition``): the part carried over from earlier sessions by the exponential
average, and for each recipe in the book and each model with ensemble weight that day, the model's base rank and
each feature's SHAP value carried into traded-score units (``contribution``), plus each recipe ensemble's
re-ranking; the terms add up to ``alpha_score`` (checked on every run, 1e-6). Models with zero weight that day are
not explained (their SHAP would explain nothing traded) and are listed in the metadata. Per model, SHAP itself is
TreeSHAP for the boosted trees and a sampled permutation estimator for the MLP and ridge (sum of shap + base =
prediction, checked). LIME local rules for the day's top-N longs and shorts. The summary plot and the top long's
waterfall are embedded in the asset's metadata so the asset page shows them.
"""

import json

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
)

from alpha_assets.keys import (
    FEATURES_FEATURE_MATRIX,
    FEATURES_FUSED_EMBEDDINGS,
    MODELS_ALPHA_MODELS,
    MODELS_ALPHA_SCORES,
    MODELS_LIME_EXPLANATIONS,
    MODELS_PREDICTIONS,
    MODELS_PROMOTIONS,
    MODELS_SHAP_VALUES,
    PORTFOLIO_TARGET_WEIGHTS,
)
from alpha_assets.lib.models.explain import TERM_SCHEMA
from alpha_assets.metadata import plot_metadata, run_partition
from alpha_assets.models.common import ModelBook, champion_by_day
from partitions import model_days, window_dates
from partitions.calendar import sessions_between
from resources.lake_resource import DeltaLakeResource
from resources.model_registry import ModelRegistry

ADDITIVITY_TOLERANCE = 1e-3
TRADED_TOLERANCE = 1e-6  # the terms of the traded score add up to it (float64 arithmetic on stored values)
EXPLAIN_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.String,
    **{c: t for c, t in TERM_SCHEMA.items() if c != "contribution"},
    "base_value": pl.Float64,
    "prediction": pl.Float64,
    "contribution": pl.Float64,
}


def traded_explanations(
    lake, models: ModelBook, day, rows: pl.DataFrame, tickers: list[str], nsamples: int = 50
) -> tuple[pl.DataFrame, list[str], dict[tuple[str, str], object]]:
    """The traded alpha_score of ``tickers`` on ``day`` split into additive terms (``EXPLAIN_SCHEMA``), the models
    skipped (zero weight that day) and the (recipe, kind) -> LoadedModel explained. ``rows``: the day's feature
    matrix (+ embeddings) for every name (the SHAP background and the cross-section of ranks)."""
    from alpha_assets.lib.models.explain import shap_frame, traded_decomposition

    if not lake.exists("models", "alpha_scores") or not lake.exists("models", "predictions"):
        raise Failure(
            "models.alpha_scores and models.predictions must exist: the explanation is of what is traded"
        )
    scores = lake.read("models", "alpha_scores", day, day)
    preds = lake.read("models", "predictions", day, day)
    if scores.height == 0:
        raise Failure(f"no models.alpha_scores rows on {day}: materialize the daily_book job for it first")
    if "carried_score" not in scores.columns:
        raise Failure(
            f"models.alpha_scores of {day} predates carried_score: re-materialize models/alpha_scores"
        )
    first = scores.row(0, named=True)
    share = float(first["challenger_share"] or 0.0)
    sides = [
        ("champion", first["champion_recipe"], 1 - share),
        ("challenger", first["challenger_recipe"], share),
    ]
    keys = rows.filter(pl.col("ticker").is_in(tickers)).select("trade_date", "ticker")
    explained, shap = {}, {}
    for side, recipe, side_share in sides:
        if not recipe or side_share <= 0:
            continue
        for kind, w in json.loads(first[f"{side}_weights"] or "{}").items():
            if float(w) <= 0:
                continue
            m = models.model_for(kind, recipe, day)
            scored = preds.filter((pl.col("recipe") == recipe) & (pl.col("model") == kind))["model_version"]
            if m is None or (scored.len() and int(scored[0]) != m.version):
                raise Failure(
                    f"{day}: {recipe}/{kind} scored with v{scored[0] if scored.len() else '?'} but the "
                    f"registry gives {m.version if m else 'none'}: re-materialize models/predictions"
                )
            x = m.inputs(rows.filter(pl.col("ticker").is_in(tickers)))
            shap[(recipe, kind)] = shap_frame(
                m.learner, kind, x, m.features, keys, background=m.inputs(rows), nsamples=nsamples
            )
            explained[(recipe, kind)] = m
    frames, skipped = [], set()
    by_ticker = {r["ticker"]: r for r in scores.to_dicts()}
    feature_rows = {r["ticker"]: r for r in rows.filter(pl.col("ticker").is_in(tickers)).to_dicts()}
    for t in tickers:
        if t not in by_ticker:
            continue
        mine = {k: v.filter(pl.col("ticker") == t) for k, v in shap.items()}
        terms, skip = traded_decomposition(by_ticker[t], preds, mine, feature_rows.get(t))
        skipped.update(skip)
        per_model = (
            pl.concat(
                [
                    v.select(pl.lit(k[0]).alias("recipe"), "model", "feature", "base_value", "prediction")
                    for k, v in mine.items()
                ]
            )
            if mine
            else None
        )
        if per_model is not None:
            terms = terms.join(per_model, on=["recipe", "model", "feature"], how="left")
        else:
            terms = terms.with_columns(
                pl.lit(None, pl.Float64).alias("base_value"), pl.lit(None, pl.Float64).alias("prediction")
            )
        frames.append(terms.with_columns(pl.lit(day).alias("trade_date"), pl.lit(t).alias("ticker")))
    out = (
        pl.concat(frames).select(list(EXPLAIN_SCHEMA)).cast(EXPLAIN_SCHEMA)
        if frames
        else pl.DataFrame(schema=EXPLAIN_SCHEMA)
    )
    return out, sorted(skipped), explained


def _book(lake, start, end) -> pl.DataFrame:
    if not lake.exists("portfolio", "target_weights"):
        raise Failure("portfolio.target_weights does not exist yet: the explanations cover the day's book")
    return lake.read(
        "portfolio", "target_weights", start, end, columns=["trade_date", "ticker", "side", "weight"]
    )


def _day_inputs(feature_matrix: pl.DataFrame, fused: pl.DataFrame) -> pl.DataFrame:
    return feature_matrix.join(fused.drop("fusion_version"), on=["trade_date", "ticker"], how="left")


class ExplainConfig(Config):
    mlp_background: int = 50  # rows of the day's cross-section behind the MLP's sampled explainer
    lime_names_per_side: int = 5
    lime_features: int = 10


def explained_inputs() -> dict[str, AssetIn]:
    """The rows an explanation reads through the IO manager: the day's feature matrix and embeddings."""
    return {
        "feature_matrix": AssetIn(key=FEATURES_FEATURE_MATRIX),
        "fused_embeddings": AssetIn(key=FEATURES_FUSED_EMBEDDINGS),
    }


# What an explanation reads itself: the day's predictions and scores (the traded decomposition), the models, the
# promotion decision in force on the day and the day's book (the names explained).
EXPLAINED_DEPS = [
    MODELS_ALPHA_MODELS,
    MODELS_ALPHA_SCORES,
    MODELS_PREDICTIONS,
    MODELS_PROMOTIONS,
    PORTFOLIO_TARGET_WEIGHTS,
]


@asset(
    key=MODELS_SHAP_VALUES,
    ins=explained_inputs(),
    deps=EXPLAINED_DEPS,
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="models",
    kinds={"shap", "delta"},
    check_specs=[
        AssetCheckSpec(
            "shap_additive",
            asset=MODELS_SHAP_VALUES,
            description="sum of SHAP values + base value = the model's prediction",
        ),
        AssetCheckSpec(
            "explains_traded_score",
            asset=MODELS_SHAP_VALUES,
            description="the terms of each name add up to its traded alpha_score",
        ),
    ],
)
def shap_values(
    context: AssetExecutionContext,
    config: ExplainConfig,
    feature_matrix: pl.DataFrame,
    fused_embeddings: pl.DataFrame,
    lake_store: DeltaLakeResource,
    model_registry: ModelRegistry,
):
    """For every name in the book: its traded alpha_score as additive terms (``EXPLAIN_SCHEMA``: carried, each
    weighted model's base rank and features, each recipe ensemble's re-ranking), with each model's SHAP values."""
    from alpha_assets.lib.models.explain import summary_plot_png, waterfall_png

    start, end = window_dates(*context.partition_time_window)
    lake = lake_store.lake
    book_names = _book(lake, start, end)
    rows_all = _day_inputs(feature_matrix, fused_embeddings)
    models = ModelBook(model_registry)
    frames, skipped = [], {}
    for (day,), rows in sorted(rows_all.partition_by("trade_date", as_dict=True).items()):
        names = book_names.filter((pl.col("trade_date") == day) & (pl.col("weight") != 0))["ticker"].to_list()
        if not names:
            continue
        out, skip, _ = traded_explanations(lake, models, day, rows, names, nsamples=config.mlp_background)
        frames.append(out)
        skipped[str(day)] = skip
    if not frames:
        raise Failure(f"models.shap_values: no book or no model for {start}..{end}")
    out = pl.concat(frames)
    feats = out.filter(pl.col("term") == "feature")
    err = (
        feats.group_by("trade_date", "ticker", "recipe", "model")
        .agg(
            (pl.col("shap_value").sum() + pl.col("base_value").first() - pl.col("prediction").first())
            .abs()
            .alias("err")
        )["err"]
        .max()
    )
    err = float(err) if err is not None else 0.0
    traded = lake.read("models", "alpha_scores", start, end, columns=["trade_date", "ticker", "alpha_score"])
    gap = (
        out.group_by("trade_date", "ticker")
        .agg(pl.col("contribution").sum())
        .join(traded, on=["trade_date", "ticker"])
        .select((pl.col("contribution") - pl.col("alpha_score")).abs().max())
    ).item()
    gap = float(gap) if gap is not None else 0.0
    carried = out.filter(pl.col("term") == "carried").join(traded, on=["trade_date", "ticker"])
    carried_share = float(
        carried["contribution"].abs().sum() / max(carried["alpha_score"].abs().sum(), 1e-12)
    )
    last = out["trade_date"].max()
    top_long = book_names.filter(pl.col("trade_date") == last).sort("weight", descending=True)["ticker"][0]
    plots = {}
    drawn_by, partition = "/".join(MODELS_SHAP_VALUES.path), run_partition(context)
    if feats.height:
        shap_long = feats.with_columns((pl.col("recipe") + "/" + pl.col("model")).alias("model"))
        summary = summary_plot_png(shap_long.filter(pl.col("trade_date") == last))
        top = shap_long.filter((pl.col("trade_date") == last) & (pl.col("ticker") == top_long))
        if top.height:
            model0 = top["model"].unique().sort()[0]
            waterfall = waterfall_png(shap_long, last, top_long, model0)
            plots.update(
                plot_metadata(
                    "waterfall_top_long",
                    waterfall,
                    f"{top_long} on {last} ({model0})",
                    drawn_by,
                    partition=partition,
                    day=last,
                )
            )
        plots.update(
            plot_metadata(
                "summary_plot", summary, f"mean |SHAP| on {last}", drawn_by, partition=partition, day=last
            )
        )
    yield Output(
        out,
        metadata={
            "rows": out.height,
            "names": out["ticker"].n_unique(),
            "max_additivity_error": err,
            "max_traded_gap": gap,
            "carried_share_of_traded_score": round(carried_share, 4),
            "skipped_zero_weight_models": MetadataValue.json(skipped),
            **plots,
        },
    )
    yield AssetCheckResult(
        check_name="shap_additive",
        passed=bool(err <= ADDITIVITY_TOLERANCE),
        metadata={"max_abs_error": err, "tolerance": ADDITIVITY_TOLERANCE},
    )
    yield AssetCheckResult(
        check_name="explains_traded_score",
        passed=bool(gap <= TRADED_TOLERANCE),
        metadata={"max_abs_gap": gap, "tolerance": TRADED_TOLERANCE},
    )


def _heaviest_model_by_day(lake, start, end) -> dict:
    """trade_date -> the champion recipe's model with the largest ensemble weight that day (ties: by name)."""
    if not lake.exists("models", "alpha_scores"):
        return {}
    rows = (
        lake.read("models", "alpha_scores", start, end, columns=["trade_date", "champion_weights"])
        .unique("trade_date")
        .to_dicts()
    )
    out = {}
    for r in rows:
        w = json.loads(r["champion_weights"] or "{}")
        if w:
            out[r["trade_date"]] = max(sorted(w), key=lambda k: w[k])
    return out


@asset(
    key=MODELS_LIME_EXPLANATIONS,
    ins=explained_inputs(),
    deps=EXPLAINED_DEPS,
    partitions_def=model_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="models",
    kinds={"lime", "delta"},
)
def lime_explanations(
    context: AssetExecutionContext,
    config: ExplainConfig,
    feature_matrix: pl.DataFrame,
    fused_embeddings: pl.DataFrame,
    lake_store: DeltaLakeResource,
    model_registry: ModelRegistry,
):
    """LIME rules for the day's top-N longs and shorts, explaining the model with the largest ensemble weight in
    the champion recipe that day (``alpha_scores.champion_weights``: the model the book trades most; LightGBM,
    then the first model available, for a day without weights), with the day's cross-section as the sampling
    distribution."""
    from alpha_assets.lib.models.explain import lime_frame, predict_function

    start, end = window_dates(*context.partition_time_window)
    lake = lake_store.lake
    book = _book(lake, start, end)
    rows_all = _day_inputs(feature_matrix, fused_embeddings)
    models = ModelBook(model_registry)
    champions = champion_by_day(lake, sessions_between(start, end))
    heaviest = _heaviest_model_by_day(lake, start, end)
    frames = []
    for (day,), rows in sorted(rows_all.partition_by("trade_date", as_dict=True).items()):
        b = book.filter(pl.col("trade_date") == day)
        picks = pl.concat(
            [
                b.sort("weight", descending=True).head(config.lime_names_per_side),
                b.sort("weight").head(config.lime_names_per_side),
            ]
        )["ticker"].to_list()
        if not picks:
            continue
        recipe = champions[day]
        order = ((heaviest[day],) if day in heaviest else ()) + ("lightgbm", *models.kinds)
        m = next((x for k in order if (x := models.model_for(k, recipe, day))), None)
        if m is None:
            continue
        chosen = rows.filter(pl.col("ticker").is_in(picks))
        x_all = m.inputs(rows)
        x = m.inputs(chosen)
        lf = lime_frame(
            predict_function(m.learner, m.kind),
            x_all,
            x,
            m.features,
            chosen.select("trade_date", "ticker"),
            num_features=config.lime_features,
        )
        frames.append(
            lf.with_columns(
                pl.lit(m.kind).alias("model"), pl.lit(m.version, dtype=pl.Int64).alias("model_version")
            )
        )
    if not frames:
        raise Failure(f"models.lime_explanations: no book or no model for {start}..{end}")
    out = pl.concat(frames)
    return Output(out, metadata={"rows": out.height, "names": out["ticker"].n_unique()})
