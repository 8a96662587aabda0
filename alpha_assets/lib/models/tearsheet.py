"""The factor tear sheet of a score, by alphalens-reloaded: the library quants already read, so the model report's
numbers can be compared with theirs, and ours are tested against it (``metrics.daily_ic`` equals alphalens' IC).

alphalens works on pandas: the score as a Series on a (date, asset) MultiIndex and prices as a wide frame. Its
forward return for period h is the close h sessions ahead over today's close, the same as ``fwd_ret_h``.
"""

from __future__ import annotations

import warnings

import polars as pl

from alpha_assets.lib.settings import LABEL_HORIZONS


def alphalens_factor_data(
    scores: pl.DataFrame,
    prices: pl.DataFrame,
    score: str = "alpha_score",
    periods: tuple[int, ...] = LABEL_HORIZONS,
    quantiles: int = 5,
):
    """alphalens' clean factor data (factor, forward returns, quantile) for ``score`` over ``prices`` closes."""
    import pandas as pd
    from alphalens.utils import get_clean_factor_and_forward_returns

    factor = scores.select("trade_date", "ticker", score).drop_nulls().to_pandas()
    factor["trade_date"] = pd.to_datetime(factor["trade_date"]).dt.tz_localize("UTC")
    factor = factor.set_index(["trade_date", "ticker"])[score]
    wide = prices.pivot(on="ticker", index="trade_date", values="close", aggregate_function="first").sort(
        "trade_date"
    )
    px = wide.to_pandas().set_index("trade_date")
    px.index = pd.to_datetime(px.index).tz_localize("UTC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_clean_factor_and_forward_returns(
            factor, px, quantiles=quantiles, periods=periods, max_loss=1.0
        )


def alphalens_summary(
    scores: pl.DataFrame,
    prices: pl.DataFrame,
    score: str = "alpha_score",
    periods: tuple[int, ...] = LABEL_HORIZONS,
    quantiles: int = 5,
) -> dict:
    """Mean daily IC and IC t-stat per period, and the mean forward return per quantile (period 1), by alphalens."""
    from alphalens import performance

    data = alphalens_factor_data(scores, prices, score, periods, quantiles)
    ic = performance.factor_information_coefficient(data)
    mean_q, _ = performance.mean_return_by_quantile(data, by_date=False)
    out: dict[str, object] = {
        "ic_mean": {c: float(ic[c].mean()) for c in ic.columns},
        "ic_t_stat": {c: float(ic[c].mean() / ic[c].std() * len(ic[c].dropna()) ** 0.5) for c in ic.columns},
        "mean_return_by_quantile_1d": {int(q): float(v) for q, v in mean_q.iloc[:, 0].items()},
    }
    out["daily_ic_1d"] = pl.DataFrame(
        {"trade_date": [d.date() for d in ic.index], "ic": ic.iloc[:, 0].to_numpy()}
    )
    return out
