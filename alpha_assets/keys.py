"""Every asset key of the graph, named once.

A key is the path of the asset's Delta table in the lake (``<prefix>/<table>``; the marts are DuckDB tables named
the same way), so a key is never renamed: a new name would orphan the stored table. Each constant is named after
its path (``raw/prices`` -> ``RAW_PRICES``) and the constants are grouped by table prefix. The rest of the Dagster
layer refers to assets through these names only (``alpha_assets_tests/unit/test_asset_keys.py`` checks that every
key here is an asset of the Definitions and the other way round, that no other module writes an ``AssetKey``
literal, and that each asset's group is its prefix, with the listed exceptions).
"""

from __future__ import annotations

from dagster import AssetKey

# raw: vendor deliveries (ingestion) and the alt-data tables extracted from them (altdata)
RAW_UNIVERSE = AssetKey(["raw", "universe"])
RAW_PRICES = AssetKey(["raw", "prices"])
RAW_PRICE_RECONCILIATION = AssetKey(["raw", "price_reconciliation"])
RAW_PARKING_LOT_IMAGES = AssetKey(["raw", "parking_lot_images"])
RAW_PARKING_LOT_COUNTS = AssetKey(["raw", "parking_lot_counts"])
RAW_OIL_TANKS = AssetKey(["raw", "oil_tanks"])
RAW_OIL_TANK_LEVELS = AssetKey(["raw", "oil_tank_levels"])
RAW_CALL_SENTIMENT = AssetKey(["raw", "call_sentiment"])
RAW_FILING_FEATURES = AssetKey(["raw", "filing_features"])
RAW_WEB_PRODUCTS = AssetKey(["raw", "web_products"])
RAW_WEB_SIGNALS = AssetKey(["raw", "web_signals"])

# features
FEATURES_PRICE_FEATURES = AssetKey(["features", "price_features"])
FEATURES_LABELS = AssetKey(["features", "labels"])
FEATURES_ALT_FEATURES = AssetKey(["features", "alt_features"])
FEATURES_FEATURE_MATRIX = AssetKey(["features", "feature_matrix"])
FEATURES_FUSED_EMBEDDINGS = AssetKey(["features", "fused_embeddings"])

# models
MODELS_CAR_DETECTOR = AssetKey(["models", "car_detector"])
MODELS_FUSION_ENCODER = AssetKey(["models", "fusion_encoder"])
MODELS_ALPHA_MODELS = AssetKey(["models", "alpha_models"])
MODELS_PREDICTIONS = AssetKey(["models", "predictions"])
MODELS_PROMOTIONS = AssetKey(["models", "promotions"])
MODELS_ALPHA_SCORES = AssetKey(["models", "alpha_scores"])
MODELS_SHAP_VALUES = AssetKey(["models", "shap_values"])
MODELS_LIME_EXPLANATIONS = AssetKey(["models", "lime_explanations"])
MODELS_REGISTRY = AssetKey(["models", "registry"])

# portfolio
PORTFOLIO_TARGET_WEIGHTS = AssetKey(["portfolio", "target_weights"])
PORTFOLIO_WEIGHTS_AUDIT = AssetKey(["portfolio", "weights_audit"])
PORTFOLIO_ORDERS = AssetKey(["portfolio", "orders"])

# risk
RISK_RISK_REPORT = AssetKey(["risk", "risk_report"])

# reports: the backtest and the model report
REPORTS_BACKTEST_PNL = AssetKey(["reports", "backtest_pnl"])
REPORTS_BACKTEST_FILLS = AssetKey(["reports", "backtest_fills"])
REPORTS_BACKTEST_POSITIONS = AssetKey(["reports", "backtest_positions"])
REPORTS_MODEL_REPORT = AssetKey(["reports", "model_report"])

# monitoring
MONITORING_MODEL_HEALTH = AssetKey(["monitoring", "model_health"])
MONITORING_FEATURE_DRIFT = AssetKey(["monitoring", "feature_drift"])
MONITORING_PIPELINE_RUNS = AssetKey(["monitoring", "pipeline_runs"])

# marts: the dbt models (serving/marts.py; MartsTranslator gives a dbt model the key MARTS_PREFIX/<model>)
MARTS_PREFIX = "marts"
MARTS_BOOK_POSITIONS = AssetKey(["marts", "book_positions"])
MARTS_FUND_PERFORMANCE = AssetKey(["marts", "fund_performance"])
MARTS_PNL_ATTRIBUTION = AssetKey(["marts", "pnl_attribution"])
MARTS_EXPOSURES = AssetKey(["marts", "exposures"])
MARTS_RISK_SUMMARY = AssetKey(["marts", "risk_summary"])
MARTS_MODEL_KPIS = AssetKey(["marts", "model_kpis"])
MARTS_PIPELINE_KPIS = AssetKey(["marts", "pipeline_kpis"])

# serving
SERVING_PUBLISHED = AssetKey(["serving", "published"])
