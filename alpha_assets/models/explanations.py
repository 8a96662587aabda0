"""models.shap_values and models.lime_explanations: why each name in the book got its score.

SHAP (TreeExplainer for the boosted trees, a sampled explainer for the MLP) for every name in the day's book and
every champion-recipe model, in long format, additive (sum of shap + base = prediction, checked on every run);
LIME local rules for the day's top-N longs and shorts. The summary plot and the top long's waterfall are embedded
in the asset's metadata so the asset page shows them.
"""

import tempfile
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    BackfillPolicy,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
)

from alpha_assets.metadata import png_markdown
from alpha_assets.models.common import (
    ALPHA_MODELS,
    FEATURE_MATRIX,
    FUSED,
    LIME,
    SHAP_VALUES,
    ModelBook,
    champion_by_day,
)
from partitions import trading_days, window_dates
from partitions.calendar import sessions_between
from resources.lake_resource import DeltaLakeResource
from resources.model_registry import ModelRegistry

WEIGHTS = AssetKey(["portfolio", "target_weights"])
ADDITIVITY_TOLERANCE = 1e-3


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


@asset(
    key=SHAP_VALUES,
    ins={"feature_matrix": AssetIn(key=FEATURE_MATRIX), "fused_embeddings": AssetIn(key=FUSED)},
    deps=[ALPHA_MODELS, WEIGHTS],
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="models",
    kinds={"shap", "delta"},
    check_specs=[AssetCheckSpec("shap_additive", asset=SHAP_VALUES,
                                description="sum of SHAP values + base value = the model's prediction")],
)  # fmt: skip
def shap_values(context: AssetExecutionContext, config: ExplainConfig, feature_matrix: pl.DataFrame,
                fused_embeddings: pl.DataFrame, lake_store: DeltaLakeResource,
                model_registry: ModelRegistry):  # fmt: skip
    """trade_date, ticker, model, feature, shap_value, base_value, prediction for every name in the book."""
    from alpha_assets.lib.models.explain import shap_frame, summary_plot_png, waterfall_png

    start, end = window_dates(*context.partition_time_window)
    lake = lake_store.lake
    book_names = _book(lake, start, end)
    rows_all = _day_inputs(feature_matrix, fused_embeddings)
    models = ModelBook(model_registry)
    champions = champion_by_day(lake, sessions_between(start, end))
    frames = []
    for (day,), rows in sorted(rows_all.partition_by("trade_date", as_dict=True).items()):
        names = book_names.filter((pl.col("trade_date") == day) & (pl.col("weight") != 0))["ticker"]
        in_book = rows.filter(pl.col("ticker").is_in(names.to_list()))
        if in_book.height == 0:
            continue
        recipe = champions[day]
        for kind in models.kinds:
            m = models.model_for(kind, recipe, day)
            if m is None:
                continue
            x = m.inputs(in_book)
            background = m.inputs(rows)
            frames.append(shap_frame(m.learner, kind, x, m.features, in_book.select("trade_date", "ticker"),
                                     background=background, nsamples=config.mlp_background))  # fmt: skip
    if not frames:
        raise Failure(f"models.shap_values: no book or no model for {start}..{end}")
    out = pl.concat(frames)
    err = (out.group_by("trade_date", "ticker", "model")
           .agg((pl.col("shap_value").sum() + pl.col("base_value").first() - pl.col("prediction").first()).abs()
                .alias("err"))["err"].max())  # fmt: skip
    last = out["trade_date"].max()
    top_long = book_names.filter(pl.col("trade_date") == last).sort("weight", descending=True)["ticker"][0]
    with tempfile.TemporaryDirectory() as tmp:
        summary = summary_plot_png(out.filter(pl.col("trade_date") == last), Path(tmp) / "summary.png")
        model0 = out["model"].unique().sort()[0]
        waterfall = waterfall_png(out, last, top_long, model0, Path(tmp) / "waterfall.png")
        plots = {"summary_plot": MetadataValue.md(png_markdown(summary, f"mean |SHAP| on {last}")),
                 "waterfall_top_long": MetadataValue.md(png_markdown(waterfall,
                                                                     f"{top_long} on {last} ({model0})"))}  # fmt: skip
    yield Output(out, metadata={"rows": out.height, "names": out["ticker"].n_unique(),
                                "max_additivity_error": float(err), **plots})  # fmt: skip
    yield AssetCheckResult(check_name="shap_additive", passed=bool(err <= ADDITIVITY_TOLERANCE),
                           metadata={"max_abs_error": float(err), "tolerance": ADDITIVITY_TOLERANCE})  # fmt: skip


@asset(
    key=LIME,
    ins={"feature_matrix": AssetIn(key=FEATURE_MATRIX), "fused_embeddings": AssetIn(key=FUSED)},
    deps=[ALPHA_MODELS, WEIGHTS],
    partitions_def=trading_days,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": "trade_date"},
    group_name="models",
    kinds={"lime", "delta"},
)
def lime_explanations(context: AssetExecutionContext, config: ExplainConfig, feature_matrix: pl.DataFrame,
                      fused_embeddings: pl.DataFrame, lake_store: DeltaLakeResource,
                      model_registry: ModelRegistry):  # fmt: skip
    """LIME rules for the day's top-N longs and shorts, explaining the champion recipe's LightGBM (or the first
    model available) with the day's cross-section as the sampling distribution."""
    from alpha_assets.lib.models.explain import lime_frame, predict_function

    start, end = window_dates(*context.partition_time_window)
    lake = lake_store.lake
    book = _book(lake, start, end)
    rows_all = _day_inputs(feature_matrix, fused_embeddings)
    models = ModelBook(model_registry)
    champions = champion_by_day(lake, sessions_between(start, end))
    frames = []
    for (day,), rows in sorted(rows_all.partition_by("trade_date", as_dict=True).items()):
        b = book.filter(pl.col("trade_date") == day)
        picks = pl.concat([b.sort("weight", descending=True).head(config.lime_names_per_side),
                           b.sort("weight").head(config.lime_names_per_side)])["ticker"].to_list()  # fmt: skip
        if not picks:
            continue
        recipe = champions[day]
        m = next((x for k in ("lightgbm", *models.kinds) if (x := models.model_for(k, recipe, day))), None)
        if m is None:
            continue
        chosen = rows.filter(pl.col("ticker").is_in(picks))
        x_all = m.inputs(rows)
        x = m.inputs(chosen)
        lf = lime_frame(predict_function(m.learner, m.kind), x_all, x, m.features,
                        chosen.select("trade_date", "ticker"), num_features=config.lime_features)  # fmt: skip
        frames.append(lf.with_columns(pl.lit(m.kind).alias("model"), pl.lit(m.version, dtype=pl.Int64)
                                      .alias("model_version")))  # fmt: skip
    if not frames:
        raise Failure(f"models.lime_explanations: no book or no model for {start}..{end}")
    out = pl.concat(frames)
    return Output(out, metadata={"rows": out.height, "names": out["ticker"].n_unique()})
