"""Asset metadata the Dagster UI renders: Markdown tables and PNG plots embedded as data URIs."""

from __future__ import annotations

import base64
from pathlib import Path

import polars as pl


def png_markdown(path: Path, title: str) -> str:
    return f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(Path(path).read_bytes()).decode()})"


def md_table(df: pl.DataFrame, digits: int = 4) -> str:
    cols = df.columns
    fmt = [(f"{{:.{digits}f}}" if df.schema[c].is_float() else "{}") for c in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.iter_rows():
        lines.append(
            "| " + " | ".join("" if v is None else f.format(v) for f, v in zip(fmt, r, strict=True)) + " |"
        )
    return "\n".join(lines)
