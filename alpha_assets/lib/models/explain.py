"""Why a model scored a ticker-day the way it did: SHAP values, LIME rules, plots and what-if scores.

SHAP, trees (XGBoost, LightGBM, CatBoost): exact TreeSHAP (the path-dependent algorithm of
``shap.TreeExplainer``) computed by each framework's own kernel (``pred_contribs`` / ``pred_contrib`` /
``ShapValues``). The native kernels honour the learner's best iteration (early stopping), which a
``shap.TreeExplainer`` over the whole booster would not, so ``sum(shap) + base == prediction`` holds to float32
rounding (tested at 1e-5 absolute on scores of order 1e-2..1).

SHAP, MLP: permutation sampling of Shapley values (the estimator of ``shap.PermutationExplainer`` with an
independent masker), written here in numpy and batched: shap's own spent ~15 s compiling numba kernels per
process and called the model in small batches (100 rows x 80 features took 40-80 s; DeepExplainer ~20 s). The
background is ``nsamples`` training rows sampled with the seed; each explained row walks ``permutations`` (1)
antithetic pairs of random feature orders, 2 x (features + 1) masked evaluations per pair. Each order
telescopes from the mean background score (the base value) to the row's score, so the values are exactly
additive (tested at 1e-5), and equal w_j * (x_j - mean background x_j) for a linear model (tested).

Accepted models: the project's ``Learner`` (anything with ``.kind`` and ``.model``; its ``predict`` gives the
prediction column), or the raw objects: ``xgboost.Booster`` / ``XGBRegressor``, ``lightgbm.Booster`` /
``LGBMRegressor``, ``catboost.CatBoostRegressor``, a torch ``nn.Module`` mapping a float32 (n, features) tensor to
(n,) or (n, 1) scores. Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import polars as pl

TREE_KINDS = ("xgboost", "lightgbm", "catboost")
SHAP_COLUMNS = ["trade_date", "ticker", "model", "feature", "shap_value", "base_value", "prediction"]
LIME_SAMPLES = 2000  # LIME perturbations per explained row (its default is 5,000)


# ------------------------------------------------------------------------------------------------ SHAP
def _is_learner(obj: Any) -> bool:
    return hasattr(obj, "kind") and hasattr(obj, "model") and hasattr(obj, "predict")


def _torch_predict(module: Any) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def predict(X: np.ndarray) -> np.ndarray:
        module.eval()
        with torch.no_grad():
            out = module(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
        return out.reshape(-1).numpy().astype(np.float64)

    return predict


def predict_function(learner_or_model: Any, kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy (n, features) -> (n,) scoring function for a Learner or a raw model of ``kind``."""
    if _is_learner(learner_or_model):
        return lambda X: np.asarray(learner_or_model.predict(X), dtype=np.float64).reshape(-1)
    model = learner_or_model
    if kind == "mlp":
        return _torch_predict(model)
    if kind == "xgboost" and not hasattr(model, "get_booster"):
        import xgboost as xgb

        return lambda X: model.predict(xgb.DMatrix(np.asarray(X, dtype=np.float32))).astype(np.float64)
    return lambda X: np.asarray(model.predict(np.asarray(X, dtype=np.float32)), dtype=np.float64).reshape(-1)


def _tree_contributions(learner_or_model: Any, kind: str, X: np.ndarray) -> np.ndarray:
    """(n, features + 1) TreeSHAP values with the expected value in the last column."""
    learner = learner_or_model if _is_learner(learner_or_model) else None
    model = learner.model if learner is not None else learner_or_model
    best = getattr(learner, "best_iteration", None) if learner is not None else None
    if kind == "xgboost":
        import xgboost as xgb

        booster = model.get_booster() if hasattr(model, "get_booster") else model
        if best is None and hasattr(model, "get_booster"):
            best = getattr(model, "best_iteration", None)
        kwargs = {"iteration_range": (0, best + 1)} if best is not None else {}
        return booster.predict(xgb.DMatrix(X), pred_contribs=True, **kwargs)
    if kind == "lightgbm":
        booster = model.booster_ if hasattr(model, "booster_") else model
        kwargs = {"num_iteration": best + 1} if best is not None else {}
        return booster.predict(X, pred_contrib=True, **kwargs)
    if kind == "catboost":
        from catboost import Pool

        return model.get_feature_importance(Pool(X), type="ShapValues")
    raise ValueError(f"no tree explainer for model kind {kind!r}")


def _permutation_shap(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    background: np.ndarray,
    permutations: int,
    seed: int,
    chunk_rows: int = 50_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Antithetic permutation sampling of Shapley values against an independent background.

    For a random feature order and its reverse, features are switched one at a time from the background rows to
    the explained row; a feature's value is the mean change of the background-averaged score when it switches.
    Each order telescopes from mean f(background) to f(x), so the values are exactly additive.
    """
    n, m = X.shape
    k = background.shape[0]
    pairs = max(1, int(permutations))
    rng = np.random.default_rng(seed)
    base = float(np.mean(predict(background)))
    values = np.zeros((n, m), dtype=np.float64)
    orders = []
    for _ in range(pairs):
        order = rng.permutation(m)
        orders += [order, order[::-1]]
    steps = np.tril(
        np.ones((m + 1, m), dtype=bool), k=-1
    )  # step s switches on the first s features of an order
    rows_per_call = max(1, chunk_rows // (len(orders) * (m + 1) * k))
    for start in range(0, n, rows_per_call):
        block = X[start : start + rows_per_call]
        stacked = []
        for x in block:
            for order in orders:
                switched = np.zeros((m + 1, m), dtype=bool)
                switched[:, order] = steps
                masked = np.where(switched[:, None, :], x[None, None, :], background[None, :, :])
                stacked.append(masked.reshape(-1, m))
        scores = np.asarray(predict(np.concatenate(stacked)), dtype=np.float64).reshape(
            len(block), len(orders), m + 1, k
        )
        path = scores.mean(axis=3)  # (rows, orders, m + 1): background-averaged score after each switch
        for o, order in enumerate(orders):
            values[start : start + len(block), order] += np.diff(path[:, o, :], axis=1)
    values /= len(orders)
    return values, np.full(n, base)


def shap_frame(
    learner_or_model: Any,
    kind: str,
    X: np.ndarray,
    feature_names: list[str],
    keys: pl.DataFrame,
    background: np.ndarray | None = None,
    nsamples: int = 100,
    seed: int = 7,
    *,
    permutations: int = 1,
) -> pl.DataFrame:
    """Long SHAP table: one row per (trade_date, ticker, feature) with the row's base value and prediction.

    ``keys`` holds trade_date and ticker in X's row order. MLP only: ``background`` (training rows, of which
    ``nsamples`` are sampled with ``seed``; without one the explained rows serve) and ``permutations`` (antithetic
    pairs of feature orders per row). MLP cost: rows x permutations x 2 x (features + 1) x nsamples model rows.
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    if X.ndim != 2 or X.shape[1] != len(feature_names):
        raise ValueError(f"X {X.shape} does not match {len(feature_names)} feature names")
    if keys.height != X.shape[0]:
        raise ValueError(f"keys have {keys.height} rows, X has {X.shape[0]}")
    predict = predict_function(learner_or_model, kind)
    prediction = predict(X)
    if kind in TREE_KINDS:
        contributions = np.asarray(_tree_contributions(learner_or_model, kind, X), dtype=np.float64)
        values, base = contributions[:, :-1], contributions[:, -1]
    elif kind in ("mlp", "ridge", "ic_weighted"):
        # the sampled permutation estimator; exact for a linear score
        pool = X if background is None else np.asarray(background, dtype=np.float32)
        rng = np.random.default_rng(seed)
        if pool.shape[0] > nsamples:
            pool = pool[np.sort(rng.choice(pool.shape[0], nsamples, replace=False))]
        values, base = _permutation_shap(predict, X, pool, permutations, seed)
    else:
        raise ValueError(f"unknown model kind {kind!r}")

    n, m = values.shape
    return pl.DataFrame(
        {
            "trade_date": np.repeat(keys["trade_date"].to_numpy(), m),
            "ticker": np.repeat(keys["ticker"].to_numpy(), m),
            "model": [kind] * (n * m),
            "feature": np.tile(np.asarray(feature_names, dtype=object), n).tolist(),
            "shap_value": values.reshape(-1),
            "base_value": np.repeat(base.reshape(-1), m),
            "prediction": np.repeat(prediction, m),
        }
    ).with_columns(pl.col("trade_date").cast(pl.Date), pl.col("ticker").cast(pl.String))


def top_features(shap_long: pl.DataFrame, n: int = 3) -> pl.DataFrame:
    """Per (trade_date, ticker, model) the ``n`` features with the largest |shap| (rank 1 = largest)."""
    keys = ["trade_date", "ticker", "model"]
    return (
        shap_long.with_columns(pl.col("shap_value").abs().alias("abs_shap"))
        .sort([*keys, "abs_shap", "feature"], descending=[False, False, False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over(keys).alias("rank"))
        .filter(pl.col("rank") <= n)
        .select([*keys, pl.col("rank").cast(pl.Int32), "feature", "shap_value", "base_value", "prediction"])
    )


# ------------------------------------------------------------------------------------------------ LIME
def lime_frame(
    predict_fn: Callable[[np.ndarray], np.ndarray],
    X_train_sample: np.ndarray,
    X_rows: np.ndarray,
    feature_names: list[str],
    keys: pl.DataFrame,
    num_features: int = 10,
    seed: int = 7,
    *,
    num_samples: int = LIME_SAMPLES,
) -> pl.DataFrame:
    """One LIME regression explanation per row: its ``num_features`` rules ranked by |weight|.

    Columns: trade_date, ticker, rank, feature_rule (LIME's text, e.g. "mom_60_5 > 0.20"), feature, weight,
    intercept, local_prediction (the local linear model at the row), prediction (the model's score).
    """
    from lime.lime_tabular import LimeTabularExplainer

    X_rows = np.asarray(X_rows, dtype=np.float64)
    if keys.height != X_rows.shape[0]:
        raise ValueError(f"keys have {keys.height} rows, X_rows has {X_rows.shape[0]}")
    explainer = LimeTabularExplainer(
        np.asarray(X_train_sample, dtype=np.float64),
        mode="regression",
        feature_names=list(feature_names),
        discretize_continuous=True,
        random_state=seed,
    )

    def score(A: np.ndarray) -> np.ndarray:
        return np.asarray(predict_fn(A), dtype=np.float64).reshape(-1)

    k = min(num_features, len(feature_names))
    records: dict[str, list] = {c: [] for c in ["row", "rank", "feature_rule", "feature", "weight"]}
    per_row: dict[str, list] = {"intercept": [], "local_prediction": [], "prediction": []}
    for i, row in enumerate(X_rows):
        exp = explainer.explain_instance(row, score, num_features=k, num_samples=num_samples)
        rules = exp.as_list(label=1)
        indices = exp.as_map()[1]
        for rank, ((rule, weight), (idx, _)) in enumerate(zip(rules, indices, strict=True), start=1):
            records["row"].append(i)
            records["rank"].append(rank)
            records["feature_rule"].append(rule)
            records["feature"].append(feature_names[idx])
            records["weight"].append(float(weight))
        per_row["intercept"].append(float(exp.intercept[1]))
        per_row["local_prediction"].append(float(np.ravel(exp.local_pred)[0]))
        per_row["prediction"].append(float(exp.predicted_value))
    rows = keys.select(pl.col("trade_date").cast(pl.Date), pl.col("ticker").cast(pl.String)).with_columns(
        pl.Series("intercept", per_row["intercept"], dtype=pl.Float64),
        pl.Series("local_prediction", per_row["local_prediction"], dtype=pl.Float64),
        pl.Series("prediction", per_row["prediction"], dtype=pl.Float64),
        pl.int_range(0, pl.len()).alias("row"),
    )
    rules_frame = pl.DataFrame(records, schema_overrides={"rank": pl.Int32, "weight": pl.Float64})
    return rules_frame.join(rows, on="row", how="left").select(
        "trade_date",
        "ticker",
        "rank",
        "feature_rule",
        "feature",
        "weight",
        "intercept",
        "local_prediction",
        "prediction",
    )


# ----------------------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig, plt) -> bytes:
    import io

    out = io.BytesIO()
    fig.savefig(out, dpi=100, format="png")
    plt.close(fig)
    return out.getvalue()


def summary_plot_png(shap_long: pl.DataFrame, max_features: int = 15) -> bytes:
    """Mean |shap| per feature (bars, one colour per model) next to the spread of the values (dots), as PNG bytes."""
    plt = _pyplot()
    ranked = (
        shap_long.group_by("feature")
        .agg(pl.col("shap_value").abs().mean().alias("mean_abs"))
        .sort(["mean_abs", "feature"], descending=[True, False])
        .head(max_features)
    )
    features = ranked["feature"].to_list()[::-1]  # largest on top
    models = sorted(shap_long["model"].unique().to_list())
    by_model = (
        shap_long.filter(pl.col("feature").is_in(features))
        .group_by("model", "feature")
        .agg(pl.col("shap_value").abs().mean().alias("mean_abs"))
    )
    fig, (bars, dots) = plt.subplots(1, 2, figsize=(12, max(3.0, 0.4 * len(features) + 1.5)), sharey=True)
    y = np.arange(len(features))
    height = 0.8 / max(1, len(models))
    for k, model in enumerate(models):
        lookup = dict(by_model.filter(pl.col("model") == model).select("feature", "mean_abs").iter_rows())
        bars.barh(
            y + k * height - 0.4 + height / 2, [lookup.get(f, 0.0) for f in features], height, label=model
        )
    bars.set_yticks(y, features)
    bars.set_xlabel("mean |SHAP value|")
    if len(models) > 1:
        bars.legend(fontsize=8)
    jitter = np.random.default_rng(0)  # fixed jitter: the same frame draws the same picture
    for i, feature in enumerate(features):
        values = shap_long.filter(pl.col("feature") == feature)["shap_value"].to_numpy()
        dots.scatter(values, i + jitter.uniform(-0.3, 0.3, values.size), s=6, alpha=0.5, color="tab:blue")
    dots.axvline(0.0, color="grey", linewidth=0.8)
    dots.set_xlabel("SHAP value (impact on the score)")
    fig.suptitle(f"Feature impact — {', '.join(models)}")
    fig.tight_layout()
    return _png(fig, plt)


def waterfall_png(
    shap_long: pl.DataFrame, trade_date: date, ticker: str, model: str, max_features: int = 12
) -> bytes:
    """From the base value to the ticker-day's score, one step per feature (the smallest folded into 'other'), as
    PNG bytes."""
    plt = _pyplot()
    rows = shap_long.filter(
        (pl.col("trade_date") == trade_date) & (pl.col("ticker") == ticker) & (pl.col("model") == model)
    )
    if rows.is_empty():
        raise ValueError(f"no SHAP values for {ticker} on {trade_date} ({model})")
    base = float(rows["base_value"][0])
    prediction = float(rows["prediction"][0])
    ordered = rows.with_columns(pl.col("shap_value").abs().alias("a")).sort(
        ["a", "feature"], descending=[True, False]
    )
    labels = ordered["feature"].to_list()
    values = ordered["shap_value"].to_list()
    if len(labels) > max_features:
        keep = max(1, max_features - 1)
        rest = float(np.sum(values[keep:]))
        labels = labels[:keep] + [f"other {len(values) - keep} features"]
        values = values[:keep] + [rest]
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.45 * len(labels) + 1.5)))
    running = base
    for i, value in enumerate(values):
        ax.barh(i, value, left=running, color="tab:green" if value >= 0 else "tab:red")
        ax.text(running + value, i, f" {value:+.4f}", va="center", fontsize=8)
        running += value
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.invert_yaxis()
    ax.margins(x=0.15)
    ax.axvline(base, color="grey", linestyle="--", linewidth=0.8, label=f"base {base:.4f}")
    ax.axvline(prediction, color="black", linewidth=0.8, label=f"score {prediction:.4f}")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{ticker} {trade_date} — {model}")
    fig.tight_layout()
    return _png(fig, plt)


# ------------------------------------------------------------------------------------------------ what-if
def what_if(
    predict_fn: Callable[[np.ndarray], np.ndarray],
    x_row: np.ndarray,
    feature_names: list[str],
    changes: dict[str, float],
) -> dict:
    """Score a row before and after setting some features: base_score, new_score, delta, per-feature changes."""
    x_row = np.asarray(x_row, dtype=np.float64).reshape(-1)
    if x_row.size != len(feature_names):
        raise ValueError(f"row has {x_row.size} values for {len(feature_names)} features")
    unknown = [f for f in changes if f not in feature_names]
    if unknown:
        raise KeyError(f"unknown features: {unknown}")
    changed = x_row.copy()
    applied = {}
    for feature, value in changes.items():
        j = feature_names.index(feature)
        applied[feature] = {
            "from": float(x_row[j]),
            "to": float(value),
            "delta": float(value) - float(x_row[j]),
        }
        changed[j] = value
    scores = np.asarray(predict_fn(np.stack([x_row, changed])), dtype=np.float64).reshape(-1)
    return {
        "base_score": float(scores[0]),
        "new_score": float(scores[1]),
        "delta": float(scores[1] - scores[0]),
        "changes": applied,
    }


# ------------------------------------------------------------------------------------- the traded score
# models.alpha_scores builds the traded score of a name in four steps, each linear in the one before except two
# cross-sectional ranks; the decomposition below follows them so that its terms add up to alpha_score exactly:
#   alpha_score   = smoothing_weight x blended_score + carried_score   (the exponential average over sessions)
#   blended_score = (1 - share) x champion_score + share x challenger_score
#   side_score    = rank_d(E)  with  E = sum_k w_k x rank_d(score_k)  (each recipe's ensemble, ranked per day)
#   rank_d(score_k) = rank_d(base_k) + sum_j c_k x shap_kj,  c_k = (rank_d(score_k) - rank_d(base_k)) / sum_j shap_kj
# c_k is the secant slope of the day's rank function between the model's SHAP base value and its score: each
# feature's SHAP value in model units, carried into rank units. The re-ranking of each recipe's ensemble
# (side_score - E) and each model's base rank are terms of their own.
TERMS = ("carried", "model_base", "feature", "ensemble_rerank", "unattributed")
# One term of a traded score's decomposition (models.shap_values adds the day, the name and the model's base value
# and prediction: models.explanations.EXPLAIN_SCHEMA)
TERM_SCHEMA = {
    "term": pl.String,
    "recipe": pl.String,
    "model": pl.String,
    "weight": pl.Float64,
    "feature": pl.String,
    "source": pl.String,
    "value": pl.Float64,
    "filled": pl.Boolean,
    "shap_value": pl.Float64,
    "contribution": pl.Float64,
}
SOURCE_NAMES = {
    "price": "prices",
    "parking": "satellite parking lots",
    "tanks": "satellite oil tanks",
    "call": "earnings-call transcripts",
    "filing": "SEC filings",
    "web": "web prices",
    "fused": "fusion encoder",
}
RANK_RANGE = (-0.5, 0.5)


def feature_source(feature: str) -> str:
    """The data source a feature comes from, in words: 'earnings-call transcripts', 'prices', 'fusion encoder'..."""
    from alpha_assets.lib.features.matrix import ALT_SOURCES, MISSING_SUFFIX

    if feature.startswith("emb_"):
        return SOURCE_NAMES["fused"]
    if feature.endswith(MISSING_SUFFIX):
        src = feature[: -len(MISSING_SUFFIX)]
        return f"{SOURCE_NAMES.get(src, src)} (missing flag)"
    for src in ALT_SOURCES:
        if feature.startswith(f"{src}_"):
            return SOURCE_NAMES[src]
    return SOURCE_NAMES["price"]


def source_key(feature: str) -> str:
    """The feature matrix's source prefix of a feature (``<key>__missing`` is its missing flag)."""
    from alpha_assets.lib.features.matrix import ALT_SOURCES, MISSING_SUFFIX, PRICE_SOURCE

    if feature.startswith("emb_"):
        return "fused"
    if feature.endswith(MISSING_SUFFIX):
        return feature[: -len(MISSING_SUFFIX)]
    return next((s for s in ALT_SOURCES if feature.startswith(f"{s}_")), PRICE_SOURCE)


def is_filled(feature: str, row: dict) -> bool:
    """Was the name's value of ``feature`` a fill (the neutral 0 of a missing value) rather than data? True when the
    value is null (scoring fills it) or the feature's source has no data that day (``<source>__missing`` = 1)."""
    from alpha_assets.lib.features.matrix import MISSING_SUFFIX

    if feature.endswith(MISSING_SUFFIX):
        return False
    if row.get(feature) is None:
        return True
    flag = row.get(f"{source_key(feature)}{MISSING_SUFFIX}")
    return flag is not None and float(flag) >= 0.5


def feature_range(feature: str, day_values: np.ndarray) -> tuple[float, float]:
    """The values ``feature`` can take on the day: a missing flag 0..1; a per-day rank [-0.5, 0.5]; anything else
    (an embedding, a matrix built with another normalisation) the day's observed range."""
    from alpha_assets.lib.features.matrix import MISSING_SUFFIX

    if feature.endswith(MISSING_SUFFIX):
        return 0.0, 1.0
    v = np.asarray(day_values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if feature.startswith("emb_") or (
        v.size and (v.min() < RANK_RANGE[0] - 1e-9 or v.max() > RANK_RANGE[1] + 1e-9)
    ):
        return (float(v.min()), float(v.max())) if v.size else RANK_RANGE
    return RANK_RANGE


def day_ranks(scores: np.ndarray) -> np.ndarray:
    """``metrics.cross_sectional_rank`` of one day's scores in numpy: [-0.5, 0.5], ties averaged, NaN stays NaN; the
    values rounded first as there (``determinism.round_sig``), so a blend that ties in exact arithmetic ties here
    too, whatever order its terms were summed in."""
    from scipy.stats import rankdata

    from alpha_assets.lib.determinism import round_sig

    s = round_sig(np.asarray(scores, dtype=np.float64))
    out = np.full(s.shape, np.nan)
    ok = np.isfinite(s)
    n = int(ok.sum())
    if n == 1:
        out[ok] = 0.0
    elif n > 1:
        out[ok] = (rankdata(s[ok], method="average") - 1) / (n - 1) - 0.5
    return out


def rank_of_value(scores: np.ndarray, value: float) -> float:
    """The rank in [-0.5, 0.5] ``value`` takes among the day's ``scores``: a score's own (tie-averaged) rank,
    linear between neighbouring scores, the end ranks beyond them."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size < 2:
        return 0.0
    ranks = day_ranks(s)
    u, idx = np.unique(s, return_index=True)
    return float(np.interp(value, u, ranks[idx]))


def traded_decomposition(
    score_row: dict,
    day_predictions: pl.DataFrame,
    shap_by_model: dict[tuple[str, str], pl.DataFrame],
    feature_row: dict | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """The name's traded ``alpha_score`` of one day split into additive terms, and the models skipped.

    ``score_row``: the name's models.alpha_scores row (alpha_score, carried_score, smoothing_weight,
    champion_score, challenger_score, champion_recipe, challenger_recipe, challenger_share, champion_weights and
    challenger_weights as JSON). ``day_predictions``: the day's models.predictions for every name (ticker, model,
    recipe, score). ``shap_by_model``: (recipe, model) -> the name's SHAP rows (feature, shap_value, base_value)
    for every model with weight (``shap_frame``). ``feature_row``: the name's feature values (for value, filled).

    Rows: term (``TERMS``), recipe, model, weight (the model's ensemble weight that day), feature, source, value,
    filled, shap_value (model units), contribution (traded-score units). Sum of contribution = alpha_score.
    Skipped: "recipe/model" of every model with zero weight that day (its SHAP would explain nothing traded)."""
    import json

    alpha = float(score_row["alpha_score"])
    carried = float(score_row.get("carried_score") or 0.0)
    smoothing_weight = score_row.get("smoothing_weight")
    smoothing = float(smoothing_weight if smoothing_weight is not None else 1.0)
    share = float(score_row.get("challenger_share") or 0.0)
    ticker = score_row["ticker"]
    feature_row = feature_row or {}
    rows: list[dict] = [
        {
            "term": "carried",
            "recipe": None,
            "model": None,
            "weight": 1.0 - smoothing,
            "feature": "(carried from earlier sessions)",
            "source": "exponential average",
            "value": None,
            "filled": False,
            "shap_value": None,
            "contribution": carried,
        }
    ]
    skipped: list[str] = []
    sides = [
        ("champion", score_row["champion_recipe"], 1.0 - share),
        ("challenger", score_row.get("challenger_recipe") or "", share),
    ]
    for side, recipe, side_share in sides:
        if not recipe or side_share <= 0:
            continue
        scale = smoothing * side_share
        weights = json.loads(score_row[f"{side}_weights"] or "{}")
        preds = day_predictions.filter(pl.col("recipe") == recipe)
        ensemble = 0.0
        for model, w in sorted(weights.items()):
            g = preds.filter(pl.col("model") == model)
            if g.height == 0:
                continue
            ranks = day_ranks(g["score"].to_numpy())
            mine = np.flatnonzero((g["ticker"] == ticker).to_numpy())
            r = float(ranks[mine[0]]) if mine.size and np.isfinite(ranks[mine[0]]) else 0.0
            ensemble += float(w) * r
            if float(w) == 0.0:
                skipped.append(f"{recipe}/{model}")
                continue
            if (
                not mine.size
            ):  # the model did not score the name: neutral (0) in the ensemble, nothing to explain
                continue
            shap = shap_by_model.get((recipe, model))
            if shap is None:
                raise KeyError(f"no SHAP values for {recipe}/{model}, which has weight {w} on the day")
            base = float(shap["base_value"][0])
            base_rank = rank_of_value(g["score"].to_numpy(), base)
            total = float(shap["shap_value"].sum())
            part = scale * float(w)
            rows.append(
                {
                    "term": "model_base",
                    "recipe": recipe,
                    "model": model,
                    "weight": float(w),
                    "feature": "(base rank)",
                    "source": "model",
                    "value": base,
                    "filled": False,
                    "shap_value": None,
                    "contribution": part * base_rank,
                }
            )
            if abs(total) > 1e-12:
                slope = (r - base_rank) / total
                for f, phi in zip(shap["feature"], shap["shap_value"], strict=True):
                    v = feature_row.get(f)
                    rows.append(
                        {
                            "term": "feature",
                            "recipe": recipe,
                            "model": model,
                            "weight": float(w),
                            "feature": f,
                            "source": feature_source(f),
                            "value": None if v is None else float(v),
                            "filled": is_filled(f, feature_row),
                            "shap_value": float(phi),
                            "contribution": part * slope * float(phi),
                        }
                    )
            else:  # the model scored the name at its base value: its rank is not the features' doing
                rows.append(
                    {
                        "term": "unattributed",
                        "recipe": recipe,
                        "model": model,
                        "weight": float(w),
                        "feature": "(score at the base value)",
                        "source": "model",
                        "value": None,
                        "filled": False,
                        "shap_value": None,
                        "contribution": part * (r - base_rank),
                    }
                )
        side_score = float(score_row[f"{side}_score"])
        rows.append(
            {
                "term": "ensemble_rerank",
                "recipe": recipe,
                "model": None,
                "weight": side_share,
                "feature": f"({side} ensemble ranked across names)",
                "source": "ensemble",
                "value": None,
                "filled": False,
                "shap_value": None,
                "contribution": scale * (side_score - ensemble),
            }
        )
    out = pl.DataFrame(rows, schema=TERM_SCHEMA)
    gap = float(out["contribution"].sum()) - alpha
    if abs(gap) > 1e-6:
        raise ValueError(
            f"{ticker}: the terms add up to {alpha + gap:+.8f}, not the traded alpha_score {alpha:+.8f}: the "
            "alpha_scores row does not match the day's predictions and weights (rescored since?)"
        )
    return out, skipped


def traded_scores(
    day_scores: pl.DataFrame,
    day_predictions: pl.DataFrame,
    new_scores: dict[tuple[str, str, str], float] | None = None,
) -> pl.DataFrame:
    """ticker, alpha_score of one day rebuilt the way models.alpha_scores built it, after replacing some model
    scores: ``new_scores`` maps (recipe, model, ticker) to the score that model would give the name (a what-if).
    Without replacements it returns the stored alpha_score (to float rounding). The day's weights, challenger
    share, smoothing weight and carried part are the stored ones: a what-if changes today's inputs, not the past."""
    import json

    new_scores = new_scores or {}
    first = day_scores.row(0, named=True)
    share = float(first["challenger_share"] or 0.0)
    tickers = day_scores["ticker"].to_list()
    blended = np.zeros(len(tickers))
    for side, recipe, side_share in (
        ("champion", first["champion_recipe"], 1 - share),
        ("challenger", first["challenger_recipe"], share),
    ):
        if not recipe or side_share <= 0:
            continue
        preds = day_predictions.filter(pl.col("recipe") == recipe)
        names = preds["ticker"].unique().sort().to_list()
        pos = {t: i for i, t in enumerate(names)}
        ensemble = np.zeros(len(names))
        for model, w in json.loads(first[f"{side}_weights"] or "{}").items():
            g = preds.filter(pl.col("model") == model)
            if g.height == 0:
                continue
            s = g["score"].to_numpy().astype(np.float64).copy()
            for k, t in enumerate(g["ticker"]):
                s[k] = new_scores.get((recipe, model, t), s[k])
            r = np.nan_to_num(day_ranks(s), nan=0.0)
            ensemble[[pos[t] for t in g["ticker"]]] += float(w) * r
        side_rank = dict(zip(names, day_ranks(ensemble), strict=True))
        blended += side_share * np.array([side_rank.get(t, 0.0) for t in tickers])
    carried = day_scores["carried_score"].fill_null(0.0).to_numpy()
    smoothing = day_scores["smoothing_weight"].fill_null(1.0).to_numpy()
    return pl.DataFrame({"ticker": tickers, "alpha_score": smoothing * blended + carried})
