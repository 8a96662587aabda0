"""Read-only DuckDB over the lake: every Delta table is a view named ``<layer>.<asset>``.

DuckDB's own ``delta`` extension downloads at INSTALL time (fails offline), so each table is registered as the
pyarrow dataset of its current Delta version (pyarrow reads its files, not DuckDB), the first time a query names it
(registering every table up front took ~15 s on a demo lake of 36 tables; ``SELECT 1`` now opens none). A table
that cannot be opened (a corrupt ``_delta_log`` commit, say) is skipped and named in ``skipped``; the others still
work.

The boundary is DuckDB's own sandbox, set when the connection opens (the views a query needs are created after it,
from this module, never from a statement): ``enable_external_access = false`` (no file, no
extension, no ATTACH of a path: COPY, EXPORT/IMPORT DATABASE, read_csv/read_text/glob, INSTALL/LOAD are refused by
DuckDB itself, whatever statement wraps them), ``allowed_directories = []`` and ``temp_directory = ''`` (no
directory is exempt, nothing spills to disk), then ``lock_configuration = true`` (no SET or RESET can undo any of
it). The connection holds no file of its own: a mart (``$ALPHA_HOME/marts/marts.duckdb``) is read the first time a
query names it, through a separate short-lived read-only connection, and registered in memory as ``marts.<name>``,
so no statement can reach that file either. In front of the sandbox, a statement that is not a read (CREATE, DROP, INSERT, SET ...) is refused with a
plain message before DuckDB sees it: that check only words the refusal; it is not what keeps the lake safe.

When the marts file is absent or locked by a running dbt build, lake queries still work and a query naming
``marts.`` fails with one line saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resources.lake import DeltaLake

if TYPE_CHECKING:
    from deltalake import DeltaTable

# Statement types that only read (DESCRIBE, SHOW, SUMMARIZE and FROM-first queries are SELECTs to DuckDB).
READ_ONLY_TYPES = {"SELECT", "EXPLAIN", "PRAGMA", "CALL"}
SANDBOX = (
    "SET temp_directory = ''",
    "SET allowed_directories = []",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)


class ReadOnlyError(PermissionError):
    pass


class MartsUnavailableError(RuntimeError):
    """The marts file cannot be read (not built yet, or locked by a dbt build)."""


class TableUnavailableError(RuntimeError):
    """A lake table the query names cannot be opened (its log is corrupt, say)."""


_MARTS_REF = re.compile(r"\bmarts\s*\.", re.IGNORECASE)
_MART_NAME = re.compile(r'\bmarts\s*\.\s*"?(\w+)', re.IGNORECASE)
_QUALIFIED = re.compile(r'"?(\w+)"?\s*\.\s*"?(\w+)')  # layer.asset, either part possibly quoted
# statements that list the catalog see every table: information_schema, duckdb_tables(), SHOW [ALL] TABLES
_CATALOG = re.compile(r"\b(information_schema|duckdb_\w+|show|pg_catalog|sqlite_master)\b", re.IGNORECASE)


@dataclass
class TableInfo:
    name: str
    rows: int
    first_date: str | None
    last_date: str | None
    version: int | None


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class LakeSQL:
    """``tables`` lists every table at once (a directory listing); a lake table is opened and registered as a view
    only when a query names it (``layer.asset``, quoted or not; a query naming none, like ``SELECT 1``, reads no
    table), and the first query naming any lake table opens every table's log once to name an unreadable one
    (``skipped``, reported through ``on_skip``). A query the name scan misses (a catalog error) registers the rest
    and runs again."""

    def __init__(self, lake: DeltaLake, marts_db: str | Path | None = None, on_skip=None):
        import duckdb

        self.lake = lake
        self.con = duckdb.connect(":memory:")
        self.skipped: dict[str, str] = {}  # table -> why it could not be opened
        self.on_skip = on_skip  # called once per skipped table with (name, why)
        self.registered: list[str] = []  # lake tables opened and registered as views so far
        self._lake_names = [f"{layer}.{asset}" for layer, asset in lake.tables()]
        self._lake_pending = {n.lower(): n for n in self._lake_names}  # listed, not registered yet
        self._opened: dict[str, DeltaTable] = {}  # name -> DeltaTable, once the logs were checked
        self._checked = False
        for layer in sorted({n.split(".")[0] for n in self._lake_names}):
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')  # views are created after the lock
        self._mart_names: list[str] = []
        self.marts_path = Path(marts_db) if marts_db is not None else None
        self._marts_pending: set[str] = set()  # marts listed but not read yet (read when a query names them)
        self.marts_error = self._list_marts() if self.marts_path is not None else None
        for statement in SANDBOX:
            self.con.execute(statement)

    @property
    def tables(self) -> list[str]:
        """Every table a query may name: the lake's (but those found unreadable) and the marts."""
        return [n for n in self._lake_names if n not in self.skipped] + self._mart_names

    def _skip(self, name: str, e: BaseException) -> None:
        self.skipped[name] = _one_line(e)
        self._lake_pending.pop(name.lower(), None)
        self._opened.pop(name, None)
        if self.on_skip is not None:
            self.on_skip(name, self.skipped[name])

    def _check_tables(self) -> None:
        """Open every lake table's log once (metadata only: no data file is read), so that one unreadable table
        is named once, whichever table the query reads."""
        if self._checked:
            return
        self._checked = True
        for name in self._lake_names:
            if name in self.skipped or name.lower() not in self._lake_pending:
                continue
            try:
                layer, asset = name.split(".")
                self._opened[name] = self.lake.table(layer, asset)
            except Exception as e:  # one unreadable table must not take the others down
                self._skip(name, e)

    def _register(self, names: set[str]) -> None:
        """Register the named lake tables (lower-case ``layer.asset``) as views over their current version."""
        wanted = [self._lake_pending[n] for n in sorted(names) if n in self._lake_pending]
        if not wanted:
            return
        self._check_tables()
        for name in wanted:
            if name in self.skipped:
                continue
            layer, asset = name.split(".")
            try:
                table = self._opened.pop(name, None) or self.lake.table(layer, asset)
                ds = table.to_pyarrow_dataset()
            except Exception as e:
                self._skip(name, e)
                continue
            tmp = f"__{layer}__{asset}"
            self.con.register(tmp, ds)
            self.con.execute(f'CREATE VIEW "{layer}"."{asset}" AS SELECT * FROM "{tmp}"')
            self._lake_pending.pop(name.lower(), None)
            self.registered.append(name)

    def _register_named(self, sql: str) -> None:
        """Register the lake tables the statement names; every table when it lists the catalog."""
        if _CATALOG.search(sql):
            self._register(set(self._lake_pending))
            return
        named = {f"{a}.{b}".lower() for a, b in _QUALIFIED.findall(sql)}
        self._register(named)
        for name in sorted(named):
            for table in self.skipped:
                if table.lower() == name:
                    raise TableUnavailableError(f"table {table} cannot be read: {self.skipped[table]}")

    def _open_marts(self):
        """A short-lived read-only connection to the marts file, or MartsUnavailableError saying why not."""
        import duckdb

        path = self.marts_path
        assert path is not None  # only with a marts file: without one no mart is listed, so none is read
        if not path.exists():
            raise MartsUnavailableError(
                f"no marts at {path}: build them with `alpha materialize --job serving` (or `alpha demo`)"
            )
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.Error as e:
            if "lock" in str(e).lower():
                raise MartsUnavailableError(
                    f"the marts file {path} is locked by another process (a dbt build running?); retry when it ends"
                ) from None
            raise MartsUnavailableError(f"cannot open the marts file {path}: {_one_line(e)}") from None

    def _list_marts(self) -> str | None:
        """List the marts as tables ``marts.<name>``; returns why they are unavailable (None when listed)."""
        import duckdb

        try:
            src = self._open_marts()
        except MartsUnavailableError as e:
            return str(e)
        try:
            names = [
                n
                for (n,) in src.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                    "AND table_type = 'BASE TABLE' ORDER BY 1"
                ).fetchall()
            ]
        except duckdb.Error as e:
            return f"cannot read the marts file {self.marts_path}: {_one_line(e)}"
        finally:
            src.close()
        self.con.execute('CREATE SCHEMA IF NOT EXISTS "marts"')
        self._marts_pending = set(names)
        self._mart_names = [f"marts.{n}" for n in names]
        return None

    def _read_marts(self, names: set[str]) -> None:
        """Copy the named marts into this connection's memory as views ``marts.<name>`` (once each)."""
        import duckdb

        names = names & self._marts_pending
        if not names:
            return
        src = self._open_marts()
        try:
            frames = {n: src.execute(f'SELECT * FROM main."{n}"').to_arrow_table() for n in sorted(names)}
        except duckdb.Error as e:
            raise MartsUnavailableError(
                f"cannot read the marts file {self.marts_path}: {_one_line(e)}"
            ) from None
        finally:
            src.close()
        for name, frame in frames.items():
            tmp = f"__marts__{name}"
            self.con.register(tmp, frame)
            self.con.execute(f'CREATE VIEW "marts"."{name}" AS SELECT * FROM "{tmp}"')
            self._marts_pending.discard(name)

    def check_read_only(self, sql: str) -> None:
        for st in self.con.extract_statements(sql):
            kind = str(st.type).rsplit(".", 1)[-1]
            if kind not in READ_ONLY_TYPES:
                raise ReadOnlyError(
                    f"the lake is read-only through SQL: {kind} statements are refused "
                    "(tables are written only by materializing their assets)"
                )

    def query(self, sql: str):
        """Run a read-only query; returns a polars DataFrame. What the sandbox refuses raises ReadOnlyError with
        DuckDB's one-line reason."""
        import duckdb

        self.check_read_only(sql)
        if self.marts_error and _MARTS_REF.search(sql):
            raise MartsUnavailableError(self.marts_error)
        import polars as pl

        self._read_marts({m.lower() for m in _MART_NAME.findall(sql)})
        self._register_named(sql)
        try:
            try:
                return pl.from_arrow(self.con.execute(sql).to_arrow_table())
            except duckdb.CatalogException:
                if not (self._marts_pending or self._lake_pending):
                    raise
                # named in a way the patterns missed: read them all
                self._register(set(self._lake_pending))
                if self._marts_pending:
                    self._read_marts(set(self._marts_pending))
                return pl.from_arrow(self.con.execute(sql).to_arrow_table())
        except duckdb.PermissionException as e:
            raise ReadOnlyError(
                f"refused by the SQL sandbox (the lake's tables only): {_one_line(e)}"
            ) from None
        except duckdb.InvalidInputException as e:
            if "configuration has been locked" in str(e):
                raise ReadOnlyError(f"refused by the SQL sandbox: {_one_line(e)}") from None
            raise

    def table_infos(self) -> list[TableInfo]:
        self._register(set(self._lake_pending))
        self._read_marts(set(self._marts_pending))
        out = []
        for name in self.tables:
            layer, asset = name.split(".")
            cols = [d[0] for d in self.con.execute(f'SELECT * FROM "{layer}"."{asset}" LIMIT 0').description]
            if "trade_date" in cols:
                stats = self.con.execute(
                    f'SELECT count(*), min(trade_date), max(trade_date) FROM "{layer}"."{asset}"'
                ).fetchone()
                assert stats is not None  # an aggregate query returns one row
                rows, lo, hi = stats
            else:
                count = self.con.execute(f'SELECT count(*) FROM "{layer}"."{asset}"').fetchone()
                assert count is not None  # an aggregate query returns one row
                rows, lo, hi = count[0], None, None
            version = None if layer == "marts" else self.lake.version(layer, asset)
            out.append(TableInfo(name, rows, str(lo) if lo else None, str(hi) if hi else None, version))
        return out
