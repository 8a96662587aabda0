"""IC, quantile spreads, decay and turnover against hand-computed values."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr

from alpha_assets.lib.models.metrics import (
    daily_ic,
    decile_spread,
    ic_decay,
    ic_summary,
    quantile_returns,
    turnover,
)

D1, D2, D3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)


def _day(d, scores, labels, **extra):
    n = len(scores)
    return pl.DataFrame(
        {
            "trade_date": [d] * n,
            "ticker": [f"T{i}" for i in range(n)],
            "score": scores,
            "label": labels,
            **extra,
        }
    )


def test_daily_spearman_ic_matches_scipy_and_skips_days_with_fewer_than_five_names():
    s1, y1 = [0.3, 0.1, 0.5, 0.2, 0.9, 0.4], [0.01, -0.02, 0.03, 0.0, 0.02, -0.01]
    s2, y2 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6.0, 5.0, 4.0, 3.0, 1.0, 2.0]
    frame = pl.concat([_day(D1, s1, y1), _day(D2, s2, y2), _day(D3, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])])
    ic = daily_ic(frame, "score", "label")
    assert ic["trade_date"].to_list() == [D1, D2]
    assert ic["ic"].to_list() == pytest.approx([spearmanr(s1, y1).statistic, spearmanr(s2, y2).statistic])
    assert ic["n"].to_list() == [6, 6]
    pearson = daily_ic(frame, "score", "label", method="pearson")
    assert pearson["ic"][0] == pytest.approx(np.corrcoef(s1, y1)[0, 1])


def test_daily_ic_ignores_rows_with_a_missing_label():
    frame = _day(D1, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0, None])
    assert daily_ic(frame, "score", "label").row(0, named=True) == {"trade_date": D1, "ic": 1.0, "n": 5}


def test_ic_summary_by_hand():
    s = ic_summary(np.array([0.1, 0.0, 0.2, -0.1]))
    std = np.std([0.1, 0.0, 0.2, -0.1], ddof=1)
    assert s["ic"] == pytest.approx(0.05)
    assert s["ic_std"] == pytest.approx(std)
    assert s["icir"] == pytest.approx(0.05 / std)
    assert s["t_stat"] == pytest.approx(0.05 / std * 2)
    assert s["n_days"] == 4 and s["hit_rate"] == 0.5
    assert ic_summary(np.array([]))["n_days"] == 0


def test_quantile_returns_and_decile_spread_by_hand():
    # ten names, label = score: bottom quintile mean 0.5, top 8.5; top-minus-bottom decile = 9
    frame = pl.concat([_day(D1, list(range(10)), [float(i) for i in range(10)])] * 1)
    q = quantile_returns(frame.with_columns(pl.col("score").cast(pl.Float64)), "score", "label", quantiles=5)
    assert q["quantile"].to_list() == [1, 2, 3, 4, 5]
    assert q["mean_label"].to_list() == pytest.approx([0.5, 2.5, 4.5, 6.5, 8.5])
    assert decile_spread(frame, "score", "label", quantiles=10) == pytest.approx(9.0)
    two_days = pl.concat([frame, _day(D2, list(range(10)), [float(-i) for i in range(10)])])
    assert decile_spread(two_days, "score", "label") == pytest.approx(0.0)


def test_ic_decay_reports_each_horizon_present():
    frame = _day(
        D1, [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0], fwd_ret_5=[5.0, 4.0, 3.0, 2.0, 1.0]
    )
    frame = frame.rename({"label": "fwd_ret_1"})
    assert ic_decay(frame, "score") == {"fwd_ret_1": pytest.approx(1.0), "fwd_ret_5": pytest.approx(-1.0)}


def test_turnover_is_zero_for_a_fixed_ranking_and_two_for_a_reversed_one():
    same = pl.concat([_day(d, [1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5) for d in (D1, D2, D3)])
    assert turnover(same, "score") == pytest.approx(0.0)
    flip = pl.concat(
        [_day(D1, [1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5), _day(D2, [5.0, 4.0, 3.0, 2.0, 1.0], [0.0] * 5)]
    )
    assert turnover(flip, "score") == pytest.approx(2.0)


def test_daily_ic_by_groups_equals_daily_ic_of_each_group() -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    days = [date(2024, 1, 2), date(2024, 1, 3)]
    rows = [
        {
            "trade_date": d,
            "ticker": f"T{i}",
            "model": m,
            "score": float(rng.normal()),
            "y": float(rng.normal()),
        }
        for d in days
        for m in ("a", "b")
        for i in range(8)
    ]
    df = pl.DataFrame(rows)
    grouped = daily_ic(df, "score", "y", by=("model",))
    for m in ("a", "b"):
        alone = daily_ic(df.filter(pl.col("model") == m), "score", "y")
        mine = grouped.filter(pl.col("model") == m).sort("trade_date")
        assert mine["ic"].to_list() == pytest.approx(alone["ic"].to_list(), abs=1e-12)
        assert mine["n"].to_list() == alone["n"].to_list()
