"""Asset metadata the Dagster UI renders: Markdown tables and PNG plots embedded as data URIs.

Dagster shows a Markdown picture only behind a "[Show Markdown]" link, so every plot also goes to the dashboard:
``plot_metadata`` keeps the picture in the metadata, stores its PNG in the serving store (the dashboard's Reports
page shows the latest picture of each plot) and adds a link to it there (``<key>_dashboard``, a URL the asset's
metadata table shows as a link). The dashboard's address: ``ALPHA_DASHBOARD_URL`` (default the local dashboard).
"""

from __future__ import annotations

import base64
import os
from datetime import date
from pathlib import Path

import polars as pl

DASHBOARD_URL_ENV = "ALPHA_DASHBOARD_URL"
DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8050"  # `alpha dashboard`'s default address


def png_markdown(path: Path, title: str) -> str:
    return _png_markdown(Path(path).read_bytes(), title)


def _png_markdown(png: bytes, title: str) -> str:
    return f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


def dashboard_url(plot: str | None = None) -> str:
    """The dashboard's Reports page (``ALPHA_DASHBOARD_URL``), at the anchor of ``plot`` when given."""
    base = (os.environ.get(DASHBOARD_URL_ENV, "").strip() or DEFAULT_DASHBOARD_URL).rstrip("/")
    return f"{base}/reports" + (f"#{plot}" if plot else "")


def run_partition(context) -> str | None:
    """The partition a run materialized, as text: its key, a range as ``first...last``; None when unpartitioned."""
    if not getattr(context, "has_partition_key_range", False):
        return None
    r = context.partition_key_range
    return r.start if r.start == r.end else f"{r.start}...{r.end}"


def plot_metadata(
    name: str,
    png: bytes | Path,
    title: str,
    asset_key: str,
    *,
    key: str | None = None,
    partition: str | None = None,
    day: date | None = None,
) -> dict:
    """The metadata of one picture: under ``key`` (default ``name``) the PNG (bytes, or the file at a path) as
    Markdown, under ``<key>_dashboard`` the link to it on the dashboard's Reports page; and the PNG stored in the serving store as
    the latest picture of the plot ``name`` (``store.write_plot``: ``asset_key`` drew it, for ``partition``,
    showing ``day``).

    Storing is best effort: a serving store that cannot be written (a database down) is a warning in the run's log,
    never a failed asset (the picture is still in the metadata; the dashboard keeps the previous one)."""
    from dagster import MetadataValue

    if not isinstance(png, bytes):
        png = Path(png).read_bytes()
    url = None
    try:
        from alpha_assets.serving.store import redacted_url, serving_engine, serving_url, write_plot

        url = serving_url()
        write_plot(serving_engine(url), name, title, asset_key, png, partition=partition, trade_date=day)
    except Exception as e:  # noqa: BLE001 - the dashboard's copy must never fail the asset that drew it
        from dagster import get_dagster_logger

        where = redacted_url(url) if url else "the serving store"
        get_dagster_logger().warning(
            f"plot {name}: not stored in {where} ({type(e).__name__}: {e}); the "
            "dashboard's Reports page keeps its previous picture"
        )
    key = key or name
    return {
        key: MetadataValue.md(_png_markdown(png, title)),
        f"{key}_dashboard": MetadataValue.url(dashboard_url(name)),
    }


def md_table(df: pl.DataFrame, digits: int = 4) -> str:
    cols = df.columns
    fmt = [(f"{{:.{digits}f}}" if df.schema[c].is_float() else "{}") for c in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.iter_rows():
        lines.append(
            "| " + " | ".join("" if v is None else f.format(v) for f, v in zip(fmt, r, strict=True)) + " |"
        )
    return "\n".join(lines)
