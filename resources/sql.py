"""Read-only DuckDB over the lake: every Delta table is a view named ``<layer>.<asset>``.

DuckDB's own ``delta`` extension downloads at INSTALL time (fails offline), so each table is registered as the
pyarrow dataset of its current Delta version. Only reading statements are accepted; anything else fails with a
clear error before it reaches DuckDB.

The dbt marts (``$ALPHA_HOME/marts/marts.duckdb``) are attached read-only as the catalog ``marts``: ``marts.<name>``.
When the file is absent or locked by a running dbt build, lake queries still work and a query naming ``marts.``
fails with one line saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from resources.lake import DeltaLake

READ_ONLY_TYPES = {"SELECT", "EXPLAIN", "PRAGMA"}


class ReadOnlyError(PermissionError):
    pass


class MartsUnavailableError(RuntimeError):
    """The marts file cannot be read (not built yet, or locked by a dbt build)."""


_MARTS_REF = re.compile(r"\bmarts\s*\.", re.IGNORECASE)


@dataclass
class TableInfo:
    name: str
    rows: int
    first_date: str | None
    last_date: str | None
    version: int


class LakeSQL:
    def __init__(self, lake: DeltaLake, marts_db: str | Path | None = None):
        import duckdb

        self.lake = lake
        self.con = duckdb.connect(":memory:")
        self.tables: list[str] = []
        for layer, asset in lake.tables():
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
            ds = lake.table(layer, asset).to_pyarrow_dataset()
            tmp = f"__{layer}__{asset}"
            self.con.register(tmp, ds)
            self.con.execute(f'CREATE VIEW "{layer}"."{asset}" AS SELECT * FROM "{tmp}"')
            self.tables.append(f"{layer}.{asset}")
        self.marts_error = self._attach_marts(Path(marts_db)) if marts_db is not None else None

    def _attach_marts(self, path: Path) -> str | None:
        """Attach the marts read-only; returns why they are unavailable (None when attached)."""
        import duckdb

        if not path.exists():
            return f"no marts at {path}: build them with `alpha materialize --job serving` (or `alpha demo`)"
        try:
            self.con.execute(f"ATTACH '{path}' AS marts (READ_ONLY)")
        except duckdb.Error as e:
            if "lock" in str(e).lower():
                return f"the marts file {path} is locked by another process (a dbt build running?); retry when it ends"
            return f"cannot open the marts file {path}: {e}"
        for (name,) in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'marts' "
            "AND table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall():
            self.tables.append(f"marts.{name}")
        return None

    def check_read_only(self, sql: str) -> None:
        for st in self.con.extract_statements(sql):
            kind = str(st.type).rsplit(".", 1)[-1]
            if kind not in READ_ONLY_TYPES:
                raise ReadOnlyError(
                    f"the lake is read-only through SQL: {kind} statements are refused "
                    "(tables are written only by materializing their assets)"
                )
            if kind == "PRAGMA" and "=" in sql:
                raise ReadOnlyError("the lake is read-only through SQL: PRAGMA assignments are refused")

    def query(self, sql: str):
        """Run a read-only query; returns a polars DataFrame."""
        self.check_read_only(sql)
        if self.marts_error and _MARTS_REF.search(sql):
            raise MartsUnavailableError(self.marts_error)
        import polars as pl

        return pl.from_arrow(self.con.execute(sql).to_arrow_table())

    def table_infos(self) -> list[TableInfo]:
        out = []
        for name in self.tables:
            layer, asset = name.split(".")
            cols = [d[0] for d in self.con.execute(f'SELECT * FROM "{layer}"."{asset}" LIMIT 0').description]
            if "trade_date" in cols:
                rows, lo, hi = self.con.execute(
                    f'SELECT count(*), min(trade_date), max(trade_date) FROM "{layer}"."{asset}"'
                ).fetchone()
            else:
                rows, lo, hi = (
                    self.con.execute(f'SELECT count(*) FROM "{layer}"."{asset}"').fetchone()[0],
                    None,
                    None,
                )
            version = None if layer == "marts" else self.lake.version(layer, asset)
            out.append(TableInfo(name, rows, str(lo) if lo else None, str(hi) if hi else None, version))
        return out
