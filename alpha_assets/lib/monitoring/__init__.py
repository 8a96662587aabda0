"""Model monitoring statistics: feature and score stability (PSI / CSI), the live IC tested against the out-of-sample
record (``health``), and retraining triggers."""

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
from alpha_assets.lib.monitoring.health import HealthRule, health_by_day, ic_health

__all__ = [
    "HealthRule",
    "HealthThresholds",
    "csi",
    "feature_psi",
    "health_by_day",
    "ic_health",
    "ic_drop",
    "importance_stability",
    "needs_retraining",
    "psi",
    "rolling_ic",
]
