"""``alpha explain``: why a name trades the score it trades on a day, and what a changed feature would do.

The traded ``alpha_score`` split into the part carried over from earlier sessions and, per recipe in the book and
model with ensemble weight that day, its features' SHAP values in traded-score units (``traded_explanations``); a
what-if (``--set feature=value``) answered in traded score, rank and book weight (the day's book rebuilt with its
recorded limits and held names). A user's mistake (no such day, ticker or feature; a value outside the feature's
range) is a ``UserError``: one line."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date

import polars as pl

from alpha_assets.app.runs import UserError
from alpha_assets.home import AlphaHome


@dataclass
class WhatIf:
    changes: dict[str, float]
    alpha: float  # the traded score with the changes
    rank: int
    weight_before: float | None  # None: no book from models.alpha_scores on the day
    weight_after: float | None
    book_error: str | None = None  # the book's limits refused the changed scores


@dataclass
class TradedExplanation:
    ticker: str
    day: date
    row: dict  # the name's models.alpha_scores row of the day
    alpha: float
    rank: int  # from the top
    names: int
    stored_weight: float | None  # the name's weight in the day's book (None: not in it)
    terms: pl.DataFrame  # lib.models.explain.EXPLAIN_SCHEMA rows
    skipped: list[str]  # models with zero ensemble weight that day
    explained: dict  # (recipe, kind) -> the loaded model explained
    what_if: WhatIf | None = None


def _range_words(feature: str, lo: float, hi: float, day) -> str:
    from alpha_assets.lib.models.explain import RANK_RANGE

    if feature.endswith("__missing"):
        return "a 0/1 missing-data flag in [0, 1]"
    if (lo, hi) == RANK_RANGE:
        return "a per-day rank in [-0.5, 0.5]"
    return f"observed in [{lo:+.4g}, {hi:+.4g}] on {day}"


def _book_weights(lake, day, alpha) -> dict[str, float] | None:
    """ticker -> target weight of ``day``'s book rebuilt from ``alpha`` (ticker, alpha_score) with the config and
    held book its audit row recorded; None when the day has no book built from models.alpha_scores."""
    import json as _json

    from alpha_assets.lib.portfolio.daily import day_target_weights
    from alpha_assets.portfolio.assets import PortfolioConfig
    from partitions import FEATURE_LOOKBACK_SESSIONS
    from partitions.calendar import shift_sessions

    if not lake.exists("portfolio", "weights_audit"):
        return None
    audit = lake.read("portfolio", "weights_audit", day, day)
    if audit.height == 0:
        return None
    row = audit.row(0, named=True)
    cfg = PortfolioConfig(**_json.loads(row["config"]))
    if cfg.alpha_source != "alpha_scores":
        return None
    prices = lake.read("raw", "prices", shift_sessions(day, -FEATURE_LOOKBACK_SESSIONS), day)
    uni = lake.read("raw", "universe", day, day)
    held = _json.loads(row.get("held_book") or "{}")
    w = day_target_weights(
        day, alpha.select("ticker", "alpha_score"), prices, uni, cfg.limits(), cfg.cov_window, held
    )
    return dict(zip(w["ticker"], w["weight"], strict=True))


def _changes(items: list[str], feats: list[str], rows: pl.DataFrame, day: date) -> dict[str, float]:
    """``feature=number`` items, each a feature of the day's matrix with a value inside its range."""
    from alpha_assets.lib.models.explain import feature_range

    changes: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        name = name.strip()
        try:
            changes[name] = float(value)
        except ValueError:
            raise UserError(f"--set {item!r}: expected feature=number") from None
        if name not in feats:
            hint = difflib.get_close_matches(name, feats, n=3)
            raise UserError(
                f"--set {item}: no feature {name!r} on {day}"
                + (f"; did you mean {', '.join(hint)}?" if hint else "")
            )
        lo, hi = feature_range(name, rows[name].cast(pl.Float64).to_numpy())
        if not lo <= changes[name] <= hi:
            raise UserError(f"--set {item}: {name} is {_range_words(name, lo, hi, day)}")
    return changes


def explain_traded(
    home: AlphaHome, ticker: str, day: date, set_items: list[str] | None = None
) -> TradedExplanation:
    """The explanation of ``ticker``'s traded score on ``day`` (and the what-if of ``set_items``)."""
    from alpha_assets.definitions import local_resources
    from alpha_assets.lib.features.matrix import feature_columns
    from alpha_assets.lib.models.explain import traded_scores
    from alpha_assets.models.common import ModelBook
    from alpha_assets.models.explanations import traded_explanations
    from resources.lake import DeltaLake

    lake = DeltaLake(home.lake)
    if not lake.exists("features", "feature_matrix"):
        raise UserError("no features.feature_matrix yet: run `alpha demo` or `alpha materialize` first")
    rows = lake.read("features", "feature_matrix", day, day)
    if lake.exists("features", "fused_embeddings"):
        emb = lake.read("features", "fused_embeddings", day, day)
        if emb.height:
            rows = rows.join(emb, on=["trade_date", "ticker"], how="left")
    if rows.height == 0:
        raise UserError(f"no feature rows on {day} (not a session, or not materialized)")
    ticker = ticker.upper()
    if ticker not in rows["ticker"].to_list():
        close = difflib.get_close_matches(ticker, rows["ticker"].to_list(), n=5)
        raise UserError(
            f"{ticker} has no row on {day}" + (f"; did you mean {', '.join(close)}?" if close else "")
        )
    feats = [c for c in feature_columns(rows) if c != "fusion_version"]
    changes = _changes(set_items or [], feats, rows, day)
    book = ModelBook(local_resources(home)["model_registry"])
    try:
        terms, skipped, explained = traded_explanations(lake, book, day, rows, [ticker])
    except Exception as e:  # dagster.Failure and the decomposition's own check: one line, no traceback
        raise UserError(str(getattr(e, "description", None) or e)) from None
    if terms.height == 0:
        raise UserError(f"{ticker} has no traded score on {day} (models.alpha_scores)")
    scores = lake.read("models", "alpha_scores", day, day)
    me = scores.filter(pl.col("ticker") == ticker).row(0, named=True)
    alpha = float(me["alpha_score"])
    rank = int((scores["alpha_score"] > alpha).sum()) + 1
    stored = (
        lake.read("portfolio", "target_weights", day, day).filter(pl.col("ticker") == ticker)["weight"]
        if lake.exists("portfolio", "target_weights")
        else pl.Series([], dtype=pl.Float64)
    )
    out = TradedExplanation(
        ticker=ticker,
        day=day,
        row=me,
        alpha=alpha,
        rank=rank,
        names=scores.height,
        stored_weight=float(stored[0]) if stored.len() else None,
        terms=terms,
        skipped=skipped,
        explained=explained,
    )
    if not changes:
        return out
    weights = _book_weights(lake, day, scores)
    preds = lake.read("models", "predictions", day, day)
    changed = rows.filter(pl.col("ticker") == ticker).with_columns(
        *[pl.lit(v, dtype=pl.Float64).cast(rows.schema[c]).alias(c) for c, v in changes.items()]
    )
    new_scores = {
        (recipe, kind, ticker): float(m.learner.predict(m.inputs(changed))[0])
        for (recipe, kind), m in explained.items()
    }
    after = traded_scores(scores, preds, new_scores)
    new_alpha = float(after.filter(pl.col("ticker") == ticker)["alpha_score"][0])
    what_if = WhatIf(
        changes=changes,
        alpha=new_alpha,
        rank=int((after["alpha_score"] > new_alpha).sum()) + 1,
        weight_before=None if weights is None else weights.get(ticker, 0.0),
        weight_after=None,
    )
    try:
        w_after = _book_weights(lake, day, after)
    except Exception as e:  # the book's limits may refuse the changed scores: say so, keep the answer above
        what_if.book_error = str(e).splitlines()[0][:120]
    else:
        if weights is not None and w_after is not None:
            what_if.weight_after = w_after.get(ticker, 0.0)
        else:
            what_if.weight_before = None
    out.what_if = what_if
    return out
