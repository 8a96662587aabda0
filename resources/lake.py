"""The Delta Lake store: one Delta table per asset at ``<root>/<layer>/<asset>``, partitioned by ``trade_date``.

A partition write replaces exactly its time window in one Delta transaction (``replaceWhere`` semantics via
delta-rs' predicate overwrite), so a rerun is idempotent, a single-run backfill replaces its whole range, and a
crash mid-write leaves the previous version readable. An output too large for one frame comes as ``WindowChunks``
(frames of consecutive sub-windows): each is one transaction replacing its own days, so memory is bounded by a
chunk and every day is, at any time, either all old or all new rows. A write whose column types differ from the
table's is refused before anything is written. Pure Python (no dagster): the IO manager, the CLI and the benchmarks share it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import polars as pl

if TYPE_CHECKING:
    from deltalake import DeltaTable

PARTITION_COLUMN = "trade_date"


class SchemaDriftError(TypeError):
    """An incoming frame's column type differs from the Delta table's."""


class PartitionWindowError(ValueError):
    """An incoming frame has rows outside the window being written."""


@dataclass(frozen=True)
class WriteResult:
    table: str
    version: int  # the table version written (or kept); -1 when the table does not exist
    rows: int
    start: date | None
    end: date | None
    transactions: int = 1


@dataclass
class WindowChunks:
    """A partitioned output in pieces: frames of consecutive, ascending sub-windows of the run's window.

    Frames are produced lazily (a generator), so only one is in memory while it is written; the IO manager writes
    each in its own transaction (``DeltaLake.write_chunks``)."""

    frames: Iterable[pl.DataFrame]
    # Output metadata known only once every frame has been produced (counts over the chunks): the IO manager adds
    # it after the last write.
    metadata: Callable[[], dict] | None = None


@dataclass(frozen=True)
class TableRead:
    """One read of a Delta table: ``layer.asset`` and the version it was read at."""

    table: str
    version: int


# Open read ledgers (``recording_reads``). A plain list under a lock, not a context variable: the model layer reads
# from worker threads, which do not inherit a context variable.
_LEDGERS: list[list[TableRead]] = []
_LEDGERS_LOCK = threading.Lock()


@contextmanager
def recording_reads() -> Iterator[list[TableRead]]:
    """Every Delta table read (``DeltaLake.scan``/``read``, in any thread of this process) while the block runs,
    with the version read: the list fills as the block reads. Used to compare what a step read with the parents the
    graph declares (``alpha_assets_tests/models/test_model_layer.py::test_every_table_a_step_reads_is_a_declared_parent``)."""
    ledger: list[TableRead] = []
    with _LEDGERS_LOCK:
        _LEDGERS.append(ledger)
    try:
        yield ledger
    finally:
        with _LEDGERS_LOCK:
            for i, open_ledger in enumerate(_LEDGERS):
                if open_ledger is ledger:
                    del _LEDGERS[i]
                    break


def _record_read(table: str, version: int) -> None:
    if not _LEDGERS:  # nothing recording (every read outside the tests): no lock taken
        return
    with _LEDGERS_LOCK:
        for ledger in _LEDGERS:
            ledger.append(TableRead(table, version))


# Days per transaction of ``write_chunks``. delta-rs holds every partition's writer of a write open at once: a
# 1.8 GB frame over 800 daily partitions peaked at 11.5 GB RSS in one write, 3.0 GB (and wrote faster, 9 s vs
# 15 s) in writes of 50 days; 20 days gained nothing more and made more commits. Streaming the 800 days as record
# batches into one write_deltalake did not bound it either (10.6 GB, 22 s).
WRITE_DAYS = 50


def _by_days(df: pl.DataFrame, column: str, days: int) -> Iterable[pl.DataFrame]:
    """``df`` in consecutive pieces of at most ``days`` distinct ``column`` values, in date order (slices, no copy,
    when ``df`` is sorted by the column)."""
    dates = df[column].unique().sort()
    if dates.len() <= days:
        yield df
        return
    ordered = df[column].is_sorted()
    start = 0
    for i in range(0, dates.len(), days):
        hi = dates[min(dates.len(), i + days) - 1]
        if ordered:
            stop = int(df[column].search_sorted(hi, side="right"))
            yield df.slice(start, stop - start)
            start = stop
        else:
            yield df.filter(pl.col(column).is_between(dates[i], hi))


def _is_remote(root: str) -> bool:
    return "://" in root and not root.startswith("file://")


# Path characters delta-rs stores tables under and lists back verbatim. It percent-encodes the others in
# ``file_uris()`` (a space as %20), which polars' native ``scan_delta`` then opens literally (FileNotFoundError), and
# polars reads an '=' in a folder name as a hive partition: a table under such a path is scanned through pyarrow's
# dataset of the table instead, which reads the same files by their real names.
_PLAIN_PATH_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+~!*()':@&$,;"
)
# Characters delta-rs cannot write a table under at all (measured with deltalake 1.6: '[', ']', '|', '^' panic,
# '\\' and control characters fail, a '%' followed by two hex digits is decoded and the files are not found).
UNSUPPORTED_PATH_CHARS = "%[]|^\\"


def unsupported_path(root: str | Path) -> str | None:
    """Why a local lake cannot live at ``root`` (None when it can): one line naming the character."""
    text = str(root)
    if _is_remote(text):
        return None
    bad = sorted({c for c in text if c in UNSUPPORTED_PATH_CHARS or ord(c) < 32 or ord(c) == 127})
    if not bad:
        return None
    shown = ", ".join(repr(c) for c in bad)
    return (
        f"{text} contains {shown}: the Delta Lake library cannot store tables under such a path "
        f"(avoid {' '.join(UNSUPPORTED_PATH_CHARS)} and control characters)"
    )


def _needs_pyarrow_scan(uri: str) -> bool:
    return not _is_remote(uri) and not set(uri.removeprefix("file://")) <= _PLAIN_PATH_CHARS


class DeltaLake:
    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None):
        self.root = str(root).rstrip("/")
        self.storage_options = storage_options or None

    # ----------------------------------------------------------------- locations
    def uri(self, layer: str, asset: str) -> str:
        return f"{self.root}/{layer}/{asset}"

    def exists(self, layer: str, asset: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.uri(layer, asset), storage_options=self.storage_options)

    def tables(self) -> list[tuple[str, str]]:
        """(layer, asset) of every Delta table under the root."""
        if _is_remote(self.root):
            import fsspec  # noqa: F401  (optional; remote listing goes through pyarrow's S3 filesystem)

            raise NotImplementedError("listing tables on object storage: pass the table names explicitly")
        root = Path(self.root)
        if not root.exists():
            return []
        out = []
        for layer_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for t in sorted(p for p in layer_dir.iterdir() if (p / "_delta_log").is_dir()):
                out.append((layer_dir.name, t.name))
        return out

    def table(self, layer: str, asset: str, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable

        return DeltaTable(self.uri(layer, asset), version=version, storage_options=self.storage_options)

    def version(self, layer: str, asset: str) -> int | None:
        return self.table(layer, asset).version() if self.exists(layer, asset) else None

    def _version_or_missing(self, layer: str, asset: str) -> int:
        """The table's version, -1 when it does not exist (version 0 is a real version, not "missing")."""
        v = self.version(layer, asset)
        return -1 if v is None else v

    # ----------------------------------------------------------------- writes
    def _check_schema(self, name: str, incoming: pl.DataFrame, existing_schema) -> None:
        import pyarrow as pa

        have = {f.name: f.type for f in pa.schema(existing_schema.to_arrow())}
        new = incoming.to_arrow().schema
        for f in new:
            if f.name in have:
                a, b = have[f.name], f.type
                same = (
                    a == b
                    or (pa.types.is_large_string(a) and pa.types.is_string(b))
                    or (pa.types.is_string(a) and pa.types.is_large_string(b))
                    or (pa.types.is_string_view(b) and (pa.types.is_string(a) or pa.types.is_large_string(a)))
                )
                if not same:
                    raise SchemaDriftError(
                        f"schema drift refused for table {name}: column '{f.name}' is {a} in the table "
                        f"but {b} in the new data; the table was not changed"
                    )
        missing = set(have) - {f.name for f in new}
        if missing:
            raise SchemaDriftError(
                f"schema drift refused for table {name}: the new data lacks column(s) {sorted(missing)}; "
                "the table was not changed"
            )

    def write_window(
        self,
        layer: str,
        asset: str,
        df: pl.DataFrame,
        start: date | None,
        end: date | None,
        *,
        partition_column: str = PARTITION_COLUMN,
    ) -> WriteResult:
        """Replace the rows with ``start <= trade_date <= end`` by ``df`` in one transaction.

        ``start``/``end`` None means an unpartitioned asset: the whole table is replaced.
        """
        from deltalake import write_deltalake

        name = f"{layer}.{asset}"
        uri = self.uri(layer, asset)
        if df.width == 0:  # nothing computed (no upstream rows): leave the table as it is
            return WriteResult(name, self._version_or_missing(layer, asset), 0, start, end)
        if start is not None:
            assert end is not None, "a window has both ends (None for both means unpartitioned)"
            if partition_column not in df.columns:
                raise PartitionWindowError(f"table {name}: data has no '{partition_column}' column")
            if df.schema[partition_column] != pl.Date:
                df = df.with_columns(pl.col(partition_column).cast(pl.Date))
            if df.height:
                # nulls first: an all-null column has no min or max to compare
                if df[partition_column].null_count():
                    raise PartitionWindowError(f"table {name}: null {partition_column} values")
                # a Date column (cast above): its min and max are dates
                lo, hi = cast(date, df[partition_column].min()), cast(date, df[partition_column].max())
                if lo < start or hi > end:
                    raise PartitionWindowError(
                        f"table {name}: rows dated {lo}..{hi} fall outside the window {start}..{end} being written"
                    )
        # Object columns (python dates from numpy object arrays) would be stored as binary: refuse early.
        for c, t in df.schema.items():
            if t == pl.Object:
                raise SchemaDriftError(f"table {name}: column '{c}' has polars Object dtype; cast it first")
        exists = self.exists(layer, asset)
        added: list[str] = []
        if exists:
            schema = self.table(layer, asset).schema()
            self._check_schema(name, df, schema)
            have = {f.name for f in schema.fields}
            added = [c for c in df.columns if c not in have]
        # New columns (a fund adds an alt-data vendor: the feature matrix gains its columns) evolve the table:
        # the columns are added, null on the rows written before. Dropped or retyped columns are refused above.
        schema_mode: Literal["merge"] | None = "merge" if added else None  # None: write_deltalake's default
        data = df.to_arrow()
        if start is None:
            write_deltalake(
                uri, data, mode="overwrite", storage_options=self.storage_options, schema_mode=schema_mode
            )
        elif not exists:
            write_deltalake(
                uri,
                data,
                mode="overwrite",
                partition_by=[partition_column],
                storage_options=self.storage_options,
            )
        else:
            assert end is not None  # checked above
            predicate = (
                f"{partition_column} >= '{start.isoformat()}' AND {partition_column} <= '{end.isoformat()}'"
            )
            write_deltalake(
                uri,
                data,
                mode="overwrite",
                predicate=predicate,
                storage_options=self.storage_options,
                schema_mode=schema_mode,
            )
        version = self.table(layer, asset).version()
        return WriteResult(name, version, df.height, start, end)

    def write_chunks(
        self,
        layer: str,
        asset: str,
        chunks: Iterable[pl.DataFrame],
        start: date,
        end: date,
        *,
        partition_column: str = PARTITION_COLUMN,
        write_days: int = WRITE_DAYS,
    ) -> WriteResult:
        """Replace the window [start, end] chunk by chunk: one transaction per ``write_days`` days of a chunk.

        Each transaction replaces the days from the day after the previous one's last day (``start`` for the first)
        to its own last day; rows dated after the last chunk's last day, up to ``end``, are cleared at the end.
        Each chunk is written before the next is asked for: memory holds one chunk. A crash leaves the days
        written so far new and the rest of the window old, every day readable and whole; re-running the window
        completes it. No chunk at all (no upstream rows) leaves the table as it is, like an empty frame does in
        ``write_window``.
        """
        name = f"{layer}.{asset}"
        lo, rows, transactions, last, version = start, 0, 0, None, None
        for df in chunks:
            if df.width == 0 or df.height == 0:
                last = pl.DataFrame(schema=df.schema) if df.width else last
                continue  # no rows: its days are replaced by the next chunk's transaction or the final one
            for part in _by_days(df, partition_column, write_days):
                hi = cast(
                    date, part[partition_column].max()
                )  # a chunk's rows are dated (write_window checks)
                res = self.write_window(layer, asset, part, lo, hi, partition_column=partition_column)
                rows, transactions, version = rows + res.rows, transactions + 1, res.version
                lo = hi + timedelta(days=1)
            last = pl.DataFrame(schema=df.schema)  # not df.head(0): a slice would keep the chunk's buffers
            del df, part  # written: let it go before the next chunk is computed (else two are in memory)
        if last is None:
            return WriteResult(name, self._version_or_missing(layer, asset), 0, start, end, 0)
        # Rows dated after the last chunk's last day (up to ``end``, which may be a weekend after the last session)
        # go, as they would with one frame for the whole window; a read first avoids an empty commit.
        if (
            lo <= end
            and self.exists(layer, asset)
            and self.read(layer, asset, lo, end, columns=[partition_column]).height
        ):
            res = self.write_window(layer, asset, last, lo, end, partition_column=partition_column)
            version, transactions = res.version, transactions + 1
        # only empty chunks and nothing to clear: the table as it is (as with no chunk at all)
        return WriteResult(
            name,
            self._version_or_missing(layer, asset) if version is None else version,
            rows,
            start,
            end,
            transactions,
        )

    # ----------------------------------------------------------------- reads
    def scan(self, layer: str, asset: str, version: int | None = None) -> pl.LazyFrame:
        """The table at ``version`` (default: the latest), lazily. The version is pinned when the scan is built, so
        a write committed before ``collect`` is not seen, and it is reported to any open ``recording_reads``."""
        return self.scan_pinned(layer, asset, version)[0]

    def scan_pinned(self, layer: str, asset: str, version: int | None = None) -> tuple[pl.LazyFrame, int]:
        """``scan`` and the version it reads."""
        from deltalake.exceptions import TableNotFoundError

        uri = self.uri(layer, asset)
        try:
            table = self.table(layer, asset, version)
        except TableNotFoundError as e:
            # as a path scan says it: callers treat a missing table as a missing file
            raise FileNotFoundError(f"no Delta table {layer}.{asset} at {uri}") from e
        pinned = table.version()
        _record_read(f"{layer}.{asset}", pinned)
        if _is_remote(uri):  # object storage: polars opens it with the credentials, at the pinned version
            lf = pl.scan_delta(uri, version=pinned, storage_options=self.storage_options)
        else:  # the table just opened: its log is not read a second time
            lf = pl.scan_delta(table, use_pyarrow=_needs_pyarrow_scan(uri))
        return lf, pinned

    def read(
        self,
        layer: str,
        asset: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        version: int | None = None,
        *,
        partition_column: str = PARTITION_COLUMN,
    ) -> pl.DataFrame:
        """Rows in [start, end] (pushed down to Delta partitions), optional column projection and time travel."""
        return self.read_pinned(
            layer, asset, start, end, columns, version, partition_column=partition_column
        )[0]

    def read_pinned(
        self,
        layer: str,
        asset: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        version: int | None = None,
        *,
        partition_column: str = PARTITION_COLUMN,
    ) -> tuple[pl.DataFrame, int]:
        """``read`` and the table version the rows come from."""
        lf, pinned = self.scan_pinned(layer, asset, version)
        if start is not None:
            lf = lf.filter(pl.col(partition_column) >= start)
        if end is not None:
            lf = lf.filter(pl.col(partition_column) <= end)
        if columns is not None:
            lf = lf.select(columns)
        return lf.collect(), pinned
