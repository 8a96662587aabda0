"""Read-only DuckDB over the lake: every Delta table is a view named ``<layer>.<asset>``.

DuckDB's own ``delta`` extension downloads at INSTALL time (fails offline), so each table is registered as the
pyarrow dataset of its current Delta version. Only reading statements are accepted; anything else fails with a
clear error before it reaches DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass

from resources.lake import DeltaLake

READ_ONLY_TYPES = {"SELECT", "EXPLAIN", "PRAGMA"}


class ReadOnlyError(PermissionError):
    pass


@dataclass
class TableInfo:
    name: str
    rows: int
    first_date: str | None
    last_date: str | None
    version: int


class LakeSQL:
    def __init__(self, lake: DeltaLake):
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
            out.append(TableInfo(name, rows, str(lo) if lo else None, str(hi) if hi else None,
                                 self.lake.version(layer, asset)))  # fmt: skip
        return out
