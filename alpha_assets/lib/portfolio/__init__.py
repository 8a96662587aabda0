"""Portfolio construction: HRP sizing and dollar-neutral target books under position limits."""

from alpha_assets.lib.portfolio.hrp import hrp_weights, returns_matrix
from alpha_assets.lib.portfolio.limits import (
    InfeasibleLimitsError,
    PortfolioLimits,
    build_target_weights,
    check_limits,
    correlation_groups,
    invested_share,
    max_invested_gross,
    wide_returns,
)

__all__ = [
    "InfeasibleLimitsError",
    "PortfolioLimits",
    "build_target_weights",
    "check_limits",
    "correlation_groups",
    "hrp_weights",
    "invested_share",
    "max_invested_gross",
    "returns_matrix",
    "wide_returns",
]
