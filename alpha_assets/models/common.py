"""What the model assets share: keys, recipes, the block's dates, and point-in-time model selection.

A *recipe* is a feature set the four learners are trained on: ``fusion`` (the feature matrix + the block's fused
embeddings) and ``base`` (the feature matrix alone, the ablation). One recipe is the champion and drives the book;
the other is the challenger that scores alongside it (``models.promotions`` decides). A model version is chosen for
day D point in time: the newest version trained for D's block whose ``available_from`` is on or before D, so a
mid-quarter retrain scores only the days after it was trained.
"""

from __future__ import annotations

import bisect
import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alpha_assets.lib.models.learners import MODEL_KINDS
from alpha_assets.lib.models.metrics import cross_sectional_rank
from partitions import block_key
from partitions.calendar import sessions_between

RECIPES = ("fusion", "base")  # every recipe the scoring, promotion and explanation assets know
# What the training blocks fit unless configured otherwise (BlockTrainingConfig.recipes). The fusion encoder is off
# by default: the research benchmark measured no IC gain from its embeddings (ridge on matrix + embeddings 0.997 of
# the oracle against 1.007 on the matrix alone). `recipes: [base, fusion]` on models/fusion_encoder and
# models/alpha_models trains it again, as the challenger.
DEFAULT_RECIPES = ("base",)
# The book's recipe until the promotion rule hands it to the challenger (the seed's design had "fusion" here).
DEFAULT_CHAMPION_RECIPE = "base"
FUSION_MODEL = "alpha_fusion"
# The training label is what is traded: the book holds each day's ranking for the next session, and every
# evaluation scores the next-day return. (The seed trained on fwd_ret_5 while trading fwd_ret_1.) The purge (5
# sessions) still covers it.
TRAIN_LABEL = "fwd_ret_1"
EVAL_LABEL = "fwd_ret_1"  # the planted alpha and the book act on the next day's return
EMBEDDING_PREFIX = "emb_"
CHAMPION_TAG = "alpha/champion_recipe"


def registered_name(kind: str) -> str:
    return f"alpha_{kind}"


def model_budget(explicit: str = "") -> str:
    """``seed`` (the design's hyper-parameters) or ``demo`` (smaller budgets that fit the demo's 10 minutes)."""
    budget = explicit or os.environ.get("ALPHA_MODEL_BUDGET", "seed")
    if budget not in ("seed", "demo"):
        raise ValueError(f"model budget must be 'seed' or 'demo', not {budget!r}")
    return budget


def block_bounds(block: str) -> tuple[date, date]:
    """First and last calendar day of a quarterly block partition key."""
    start = date.fromisoformat(block)
    nxt = date(start.year + (start.month + 3 > 12), (start.month + 2) % 12 + 1, 1)
    return start, nxt - timedelta(days=1)


def block_sessions(block: str) -> list[date]:
    return sessions_between(*block_bounds(block))


def modality_columns(features: list[str]) -> dict[str, list[str]]:
    """The fusion transformer's modality tokens from feature-matrix columns: imagery (parking, tanks), text (calls,
    filings), web, and price (everything else)."""
    groups: dict[str, list[str]] = {"image": [], "text": [], "web": [], "price": []}
    for c in features:
        if c.startswith(("parking_", "tanks_")):
            groups["image"].append(c)
        elif c.startswith(("call_", "filing_")):
            groups["text"].append(c)
        elif c.startswith("web_"):
            groups["web"].append(c)
        else:
            groups["price"].append(c)
    return {k: v for k, v in groups.items() if v}


def rank_label(df: pl.DataFrame, label: str) -> pl.DataFrame:
    """The training target: the label's cross-sectional rank per day in [-0.5, 0.5] (market moves removed)."""
    return df.with_columns(cross_sectional_rank(label).alias("target"))


@dataclass
class LoadedModel:
    kind: str
    recipe: str
    name: str
    version: int
    block: str
    available_from: date
    learner: Any
    features: list[str]
    meta: dict

    def inputs(self, rows: pl.DataFrame) -> np.ndarray:
        """The model's input matrix for ``rows``: its training features in order, nulls at the neutral 0."""
        return rows.select(self.features).fill_null(0.0).to_numpy().astype(np.float32)


class ModelBook:
    """Every registered alpha model version, loaded lazily and kept for the run (one MLflow query per model)."""

    def __init__(self, registry, kinds: tuple[str, ...] = MODEL_KINDS):
        self.registry = registry
        self.kinds = kinds
        self._versions = {k: registry.versions(registered_name(k)) for k in kinds}
        self._fusion_versions = registry.versions(FUSION_MODEL)
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._fusion: dict[int, Any] = {}

    @staticmethod
    def _pick(versions, day: date, **tags: str):
        block = block_key(day)
        hits = [
            v
            for v in versions
            if v.tags.get("block") == block
            and date.fromisoformat(v.tags.get("available_from", "9999-12-31")) <= day
            and all(v.tags.get(k) == t for k, t in tags.items())
        ]
        return max(hits, key=lambda v: (v.tags.get("available_from"), v.version)) if hits else None

    def model_for(self, kind: str, recipe: str, day: date) -> LoadedModel | None:
        from alpha_assets.lib.models.learners import Learner

        mv = self._pick(self._versions[kind], day, recipe=recipe)
        if mv is None:
            return None
        key = (mv.name, mv.version)
        if key not in self._loaded:
            path = self.registry.download(mv)
            meta = json.loads((Path(path) / "alpha_meta.json").read_text())
            self._loaded[key] = LoadedModel(
                kind=kind,
                recipe=recipe,
                name=mv.name,
                version=mv.version,
                block=mv.tags["block"],
                available_from=date.fromisoformat(mv.tags["available_from"]),
                learner=Learner.load(Path(path)),
                features=meta["features"],
                meta=meta,
            )
        return self._loaded[key]

    def fusion_for(self, day: date):
        """(version, FusionModel) trained for ``day``'s block, or None."""
        from alpha_assets.lib.models.fusion import FusionModel

        mv = self._pick(self._fusion_versions, day)
        if mv is None:
            return None
        if mv.version not in self._fusion:
            path = Path(self.registry.download(mv))
            self._fusion[mv.version] = FusionModel.load(path / "fusion")
        return mv.version, self._fusion[mv.version]


def embed_frame(fusion, matrix: pl.DataFrame, modalities: dict[str, list[str]]) -> pl.DataFrame:
    """trade_date, ticker and the fused embedding columns for the matrix rows."""
    from alpha_assets.lib.models.fusion import modality_arrays

    emb = fusion.embed(modality_arrays(matrix, modalities))
    cols = {f"{EMBEDDING_PREFIX}{i:03d}": emb[:, i] for i in range(emb.shape[1])}
    return matrix.select("trade_date", "ticker").with_columns(
        **{k: pl.Series(v, dtype=pl.Float32) for k, v in cols.items()}
    )


def champion_by_day(lake, days: list[date]) -> dict[date, str]:
    """The recipe driving each day's book: the latest promotion decision made on or before it (a decision on D
    uses only ICs known before D, so D's book already follows it). One read of models.promotions."""
    if not days:
        return {}
    dates, after = [], []
    if lake.exists("models", "promotions"):
        rows = lake.read("models", "promotions", None, max(days), columns=["trade_date", "champion_after"])
        rows = rows.sort("trade_date")
        dates, after = rows["trade_date"].to_list(), rows["champion_after"].to_list()
    out = {}
    for d in days:
        i = bisect.bisect_right(dates, d)
        out[d] = after[i - 1] if i else DEFAULT_CHAMPION_RECIPE
    return out


def champion_recipe(lake, day: date) -> str:
    return champion_by_day(lake, [day])[day]
