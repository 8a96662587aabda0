"""Models' part of the code location: per-block training, daily scores and ensemble, explanations, the report
and the registry mirror."""

from __future__ import annotations

from dagster import Definitions

from alpha_assets.models.explanations import lime_explanations, shap_values
from alpha_assets.models.report import model_report, registry
from alpha_assets.models.scoring import alpha_scores, fused_embeddings, predictions, promotions
from alpha_assets.models.training import alpha_models, fusion_encoder

DAILY_ASSETS = [fused_embeddings, predictions, promotions, alpha_scores]
EXPLAIN_ASSETS = [shap_values, lime_explanations]
BLOCK_ASSETS = [fusion_encoder, alpha_models]
REPORT_ASSETS = [model_report, registry]
defs = Definitions(assets=[*DAILY_ASSETS, *EXPLAIN_ASSETS, *BLOCK_ASSETS, *REPORT_ASSETS])
