"""Serving: the dbt marts over the lake, the serving store they are published to, and (API helper) its readers.

Nothing here imports dbt, FastAPI or Plotly at module top level: the code location imports this package.
"""

import os
from pathlib import Path


def marts_db_path(home=None) -> Path:
    """The marts DuckDB file: ALPHA_MARTS_DB if set, else $ALPHA_HOME/marts/marts.duckdb."""
    if os.environ.get("ALPHA_MARTS_DB"):
        return Path(os.environ["ALPHA_MARTS_DB"])
    if home is None:
        from alpha_assets.home import AlphaHome

        home = AlphaHome.from_env()
    return Path(home.root) / "marts" / "marts.duckdb"
