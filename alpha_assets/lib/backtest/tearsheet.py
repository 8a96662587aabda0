"""Backtest tear sheet: summary statistics plus PNG charts and a self-contained HTML page from the daily pnl."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import cast

import numpy as np
import polars as pl

from alpha_assets.lib.backtest.validation import probabilistic_sharpe_ratio, return_moments, sharpe_ratio
from alpha_assets.lib.settings import SESSIONS_PER_YEAR

COST_KINDS = ("impact_cost", "slippage_cost", "commission", "fee", "financing")


def summary_stats(pnl: pl.DataFrame, periods_per_year: int = SESSIONS_PER_YEAR) -> dict:
    """CAGR, annualised vol and Sharpe, max drawdown, turnover, costs by kind and PSR (vs 0) of a daily pnl."""
    pnl = pnl.sort("trade_date")
    returns = pnl["return"].to_numpy()
    equity = pnl["equity"].to_numpy()
    n = returns.size
    start_equity = float(equity[0] - pnl["net_pnl"][0]) if n else float("nan")
    sr = sharpe_ratio(returns)
    skew, kurtosis = return_moments(returns) if n > 2 else (0.0, 3.0)
    final_ratio = float(equity[-1]) / start_equity if n else float("nan")
    costs = {kind: float(pnl[kind].sum()) for kind in COST_KINDS}
    stats = {
        "start_date": str(pnl["trade_date"][0]) if n else None,
        "end_date": str(pnl["trade_date"][-1]) if n else None,
        "n_days": n,
        "start_equity": start_equity,
        "end_equity": float(equity[-1]) if n else float("nan"),
        "total_return": final_ratio - 1.0,
        "cagr": final_ratio ** (periods_per_year / n) - 1.0 if n and final_ratio > 0 else float("nan"),
        "ann_vol": float(np.std(returns, ddof=1)) * math.sqrt(periods_per_year) if n > 1 else float("nan"),
        "sharpe": sr * math.sqrt(periods_per_year) if not math.isnan(sr) else sr,
        "max_drawdown": float(cast(float, pnl["drawdown"].min())) if n else float("nan"),
        "avg_daily_turnover": float(cast(float, pnl["turnover"].mean())) if n else float("nan"),
        "ann_turnover": float(cast(float, pnl["turnover"].mean())) * periods_per_year if n else float("nan"),
        "avg_gross_exposure": float(cast(float, pnl["gross_exposure"].mean())) if n else float("nan"),
        "skew": skew,
        "kurtosis": kurtosis,
        "psr": (
            probabilistic_sharpe_ratio(sr, 0.0, n, skew, kurtosis)
            if n > 2 and not math.isnan(sr)
            else float("nan")
        ),
        "total_costs": costs,
    }
    costs["all"] = float(sum(costs.values()))
    return stats


def monthly_returns(pnl: pl.DataFrame) -> pl.DataFrame:
    """Compounded net return per calendar month: columns ``year``, ``month`` (1-12), ``return``."""
    return (
        pnl.sort("trade_date")
        .group_by(
            pl.col("trade_date").dt.year().alias("year"), pl.col("trade_date").dt.month().alias("month")
        )
        .agg(((1.0 + pl.col("return").fill_null(0.0)).product() - 1.0).alias("return"))
        .sort("year", "month")
    )


def _monthly_heatmap(ax, table: pl.DataFrame) -> None:
    """Year x month grid of returns in percent, red for losses and green for gains, each cell labelled."""
    years = sorted(set(table["year"].to_list()))
    grid = np.full((len(years), 12), np.nan)
    for y, m, r in table.iter_rows():
        grid[years.index(y), m - 1] = r
    bound = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.01
    ax.imshow(grid, cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(
        range(12), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
    ax.set_yticks(range(len(years)), [str(y) for y in years])
    for i in range(len(years)):
        for j in range(12):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:+.1%}", ha="center", va="center", fontsize=8)


def write_tearsheet(pnl: pl.DataFrame, out_dir: Path) -> dict:
    """Write equity, drawdown, monthly-returns, turnover and cost-breakdown PNGs, ``tearsheet.html`` (charts
    embedded) and ``summary.json`` into ``out_dir``; return the summary statistics (see ``summary_stats``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pnl = pnl.sort("trade_date")
    stats = summary_stats(pnl)
    dates = pnl["trade_date"].to_list()

    def save(fig, name: str) -> Path:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    charts: list[tuple[str, Path]] = []
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(dates, pnl["equity"].to_numpy(), color="tab:blue")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))  # no 1e7 offset
    ax.set_title("Equity (net of costs and financing)")
    charts.append(("Equity curve", save(fig, "equity.png")))

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.fill_between(dates, pnl["drawdown"].to_numpy(), 0.0, color="tab:red", alpha=0.5)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Drawdown")
    charts.append(("Drawdown", save(fig, "drawdown.png")))

    monthly = monthly_returns(pnl)
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.45 * max(monthly["year"].n_unique(), 1)))
    if monthly.height:
        _monthly_heatmap(ax, monthly)
    ax.set_title("Monthly net returns")
    charts.append(("Monthly returns", save(fig, "monthly_returns.png")))

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot(dates, pnl["turnover"].to_numpy(), color="tab:gray", linewidth=0.8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Daily turnover (traded value / equity)")
    charts.append(("Turnover", save(fig, "turnover.png")))

    fig, ax = plt.subplots(figsize=(10, 4))
    cumulative = [pnl[kind].cum_sum().to_numpy() for kind in COST_KINDS]
    ax.stackplot(dates, *cumulative, labels=list(COST_KINDS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Cumulative costs by kind")
    charts.append(("Cost breakdown", save(fig, "costs.png")))

    def fmt(value) -> str:
        return f"{value:,.4f}" if isinstance(value, float) else html.escape(str(value))

    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in stats.items() if k != "total_costs"
    )
    rows += "".join(
        f"<tr><th>cost: {html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in stats["total_costs"].items()
    )
    images = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"/>'
        for title, path in charts
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Backtest tear sheet</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>Backtest tear sheet</h1><table>{rows}</table>{images}</body></html>"
    )
    (out_dir / "tearsheet.html").write_text(page, encoding="utf-8")
    (out_dir / "summary.json").write_text(json.dumps(stats, indent=2, default=str), encoding="utf-8")
    return stats
