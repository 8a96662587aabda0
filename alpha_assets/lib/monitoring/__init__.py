"""Model monitoring statistics: feature and score stability (PSI / CSI), rolling IC decay and retraining triggers."""

from alpha_assets.lib.monitoring.drift import (
    HealthThresholds,
    csi,
    feature_psi,
    ic_drop,
    importance_stability,
    needs_retraining,
    psi,
    rolling_ic,
)

__all__ = [
    "HealthThresholds",
    "csi",
    "feature_psi",
    "ic_drop",
    "importance_stability",
    "needs_retraining",
    "psi",
    "rolling_ic",
]
