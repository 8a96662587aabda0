"""reports.model_report (out-of-sample evaluation of every model and the ensemble) and models.registry (a
read-only Delta mirror of the MLflow registry, for SQL).

Everything in the report is out of sample: a day's predictions come from the model trained for its block, before
the block started. IC and ICIR per model, recipe and ensemble; IC decay (1/5/20 sessions); quantile returns;
turnover; the ensemble weights over time; and the fusion ablation (the ``fusion`` recipe against ``base``, the same
learners without the fused embeddings). Plots go into the asset's metadata.
"""

import json
import tempfile
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, Failure, MetadataValue, Output, asset

from alpha_assets.keys import (
    FEATURES_LABELS,
    MODELS_ALPHA_MODELS,
    MODELS_ALPHA_SCORES,
    MODELS_PREDICTIONS,
    MODELS_REGISTRY,
    RAW_PRICES,
    REPORTS_MODEL_REPORT,
)
from alpha_assets.lib.models.ensemble import recipe_ensembles
from alpha_assets.lib.models.learners import MODEL_KINDS
from alpha_assets.lib.models.metrics import (
    daily_ic,
    decile_spread,
    ic_decay,
    ic_summary,
    quantile_returns,
    turnover,
)
from alpha_assets.metadata import md_table, plot_metadata
from alpha_assets.models.common import EVAL_LABEL, FUSION_MODEL, registered_name
from resources.lake_resource import DeltaLakeResource
from resources.model_registry import ModelRegistry

LABEL_COLUMNS = ("fwd_ret_1", "fwd_ret_5", "fwd_ret_20")


def evaluate(preds: pl.DataFrame, scores: pl.DataFrame, labels: pl.DataFrame) -> dict:
    """Out-of-sample statistics per model/recipe, per recipe ensemble and for the traded alpha_score."""
    lab = labels.select("trade_date", "ticker", *LABEL_COLUMNS)
    series = [
        p.select("trade_date", "ticker", "score").with_columns(pl.lit(f"{m}/{r}").alias("name"))
        for (m, r), p in preds.partition_by("model", "recipe", as_dict=True).items()
    ]
    for (recipe,), g in recipe_ensembles(preds).partition_by("recipe", as_dict=True).items():
        series.append(g.select("trade_date", "ticker", "score", pl.lit(f"ensemble/{recipe}").alias("name")))
    series.append(
        scores.select("trade_date", "ticker", pl.col("alpha_score").alias("score")).with_columns(
            pl.lit("alpha_score (traded)").alias("name")
        )
    )
    rows, ic_daily = [], []
    for s in series:
        name = s["name"][0]
        df = s.join(lab, on=["trade_date", "ticker"], how="inner")
        ic = daily_ic(df.drop_nulls(EVAL_LABEL), "score", EVAL_LABEL)
        summ = ic_summary(ic)
        decay = ic_decay(df, "score", LABEL_COLUMNS)
        rows.append(
            {
                "name": name,
                "ic": summ["ic"],
                "icir": summ["icir"],
                "t_stat": summ["t_stat"],
                "n_days": summ["n_days"],
                "hit_rate": summ.get("hit_rate"),
                "decile_spread": decile_spread(df.drop_nulls(EVAL_LABEL), "score", EVAL_LABEL),
                "turnover": turnover(s, "score"),
                **{f"ic_{k}": v for k, v in decay.items()},
            }
        )
        ic_daily.append(ic.select("trade_date", "ic").with_columns(pl.lit(name).alias("name")))
    table = pl.DataFrame(rows).sort("name")
    traded = scores.join(lab, on=["trade_date", "ticker"]).drop_nulls(EVAL_LABEL)
    q = quantile_returns(traded, "alpha_score", EVAL_LABEL, 5) if traded.height else pl.DataFrame()
    return {"table": table, "daily_ic": pl.concat(ic_daily) if ic_daily else pl.DataFrame(), "quantiles": q}


def _plots(ev: dict, weights: pl.DataFrame, tmp: Path, day=None) -> dict[str, MetadataValue]:
    """The report's pictures as metadata (each with its link on the dashboard's Reports page, where it is stored:
    ``metadata.plot_metadata``); ``day``: the last day they cover."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def plot(name: str, path: Path, title: str) -> dict[str, MetadataValue]:
        return plot_metadata(name, path, title, "/".join(REPORTS_MODEL_REPORT.path), day=day)

    out = {}
    ic = ev["daily_ic"]
    if ic.height:
        fig, ax = plt.subplots(figsize=(9, 4))
        for name in ("ensemble/fusion", "ensemble/base", "alpha_score (traded)"):
            s = ic.filter(pl.col("name") == name).sort("trade_date")
            if s.height:
                ax.plot(
                    s["trade_date"].to_list(), s["ic"].rolling_mean(21, min_samples=5).to_list(), label=name
                )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title("Out-of-sample rank IC with the next-day return (21-session mean)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(tmp / "ic.png", dpi=80)
        plt.close(fig)
        out.update(plot("ic_over_time", tmp / "ic.png", "IC over time"))
    q = ev["quantiles"]
    if q.height:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        qcol = [c for c in q.columns if c != "mean_label" and c not in ("n",)][0]
        val = [c for c in q.columns if c not in (qcol, "n")][0]
        ax.bar([str(x) for x in q[qcol].to_list()], [v * 1e4 for v in q[val].to_list()])
        ax.set_ylabel("mean next-day return (bp)")
        ax.set_title("Next-day return by alpha_score quintile")
        fig.tight_layout()
        fig.savefig(tmp / "quantiles.png", dpi=80)
        plt.close(fig)
        out.update(plot("quantile_returns", tmp / "quantiles.png", "Quantile returns"))
    if weights.height:
        fig, ax = plt.subplots(figsize=(9, 3.5))
        for m in sorted(weights["model"].unique()):
            s = weights.filter(pl.col("model") == m).sort("trade_date")
            ax.plot(s["trade_date"].to_list(), s["weight"].to_list(), label=m)
        ax.set_title("Ensemble weights of the champion recipe")
        ax.legend()
        fig.tight_layout()
        fig.savefig(tmp / "weights.png", dpi=80)
        plt.close(fig)
        out.update(plot("ensemble_weights", tmp / "weights.png", "Ensemble weights"))
    return out


@asset(
    key=REPORTS_MODEL_REPORT,
    deps=[
        MODELS_PREDICTIONS,
        MODELS_ALPHA_SCORES,
        FEATURES_LABELS,
        RAW_PRICES,  # the oracle's returns
    ],
    group_name="reports",
    kinds={"polars", "delta"},
)
def model_report(context: AssetExecutionContext, lake_store: DeltaLakeResource):
    """The out-of-sample model report over every scored day: one row per model/recipe, per recipe ensemble and for
    the traded alpha_score, plus the fusion ablation and plots."""
    lake = lake_store.lake
    if not lake.exists("models", "predictions") or not lake.exists("models", "alpha_scores"):
        raise Failure("models.predictions and models.alpha_scores must exist: run the daily book first")
    preds = lake.read("models", "predictions")
    scores = lake.read("models", "alpha_scores")
    labels = lake.read("features", "labels", preds["trade_date"].min(), None)
    ev = evaluate(preds, scores, labels)
    table = ev["table"]
    weights = pl.DataFrame(
        [
            {"trade_date": r["trade_date"], "model": m, "weight": w}
            for r in scores.select("trade_date", "champion_weights").unique("trade_date").to_dicts()
            for m, w in json.loads(r["champion_weights"]).items()
        ],
        schema={"trade_date": pl.Date, "model": pl.String, "weight": pl.Float64},
    )
    get = {r["name"]: r for r in table.to_dicts()}
    fusion, base = get.get("ensemble/fusion"), get.get("ensemble/base")
    ablation = {
        "ensemble_ic_with_fusion": fusion["ic"] if fusion else None,
        "ensemble_ic_without_fusion": base["ic"] if base else None,
        "fusion_helps": bool(fusion and base and fusion["ic"] > base["ic"]),
    }
    from alpha_assets.lib.models.tearsheet import alphalens_summary

    px = lake.read(
        "raw", "prices", preds["trade_date"].min(), None, columns=["trade_date", "ticker", "close"]
    )
    al = alphalens_summary(
        scores.select("trade_date", "ticker", "alpha_score"), px.unique(["trade_date", "ticker"], keep="last")
    )
    al.pop("daily_ic_1d")
    with tempfile.TemporaryDirectory() as tmp:
        plots = _plots(ev, weights, Path(tmp), preds["trade_date"].max())
    out = table.with_columns(
        pl.lit(preds["trade_date"].min()).alias("first_day"),
        pl.lit(preds["trade_date"].max()).alias("last_day"),
    )
    return Output(
        out,
        metadata={
            "models": MetadataValue.md(
                md_table(
                    table.select(
                        "name",
                        "ic",
                        "icir",
                        "t_stat",
                        "n_days",
                        "decile_spread",
                        "turnover",
                        "ic_fwd_ret_1",
                        "ic_fwd_ret_5",
                        "ic_fwd_ret_20",
                    )
                )
            ),
            "fusion_ablation": MetadataValue.json(ablation),
            "alphalens_traded_score": MetadataValue.json(al),
            **plots,
        },
    )


@asset(key=MODELS_REGISTRY, deps=[MODELS_ALPHA_MODELS], group_name="models", kinds={"mlflow", "delta"})
def registry(model_registry: ModelRegistry):
    """Every registered model version with its aliases, block, recipe, tags and metrics: a read-only mirror of the
    MLflow registry (the registry itself decides what is current)."""
    names = [registered_name(k) for k in MODEL_KINDS] + [
        FUSION_MODEL,
        "car_detector",
    ]
    rows = model_registry.mirror_rows(names)
    schema = {
        "model": pl.String,
        "version": pl.Int64,
        "aliases": pl.String,
        "block": pl.String,
        "recipe": pl.String,
        "fingerprint": pl.String,
        "run_id": pl.String,
        "source": pl.String,
        "tags": pl.String,
        "metrics": pl.String,
    }
    out = pl.DataFrame(rows, schema=schema)
    return Output(
        out,
        metadata={
            "versions": out.height,
            "champions": MetadataValue.json(
                {r["model"]: r["version"] for r in out.to_dicts() if "champion" in r["aliases"].split(",")}
            ),
        },
    )
