"""Declarative contracts for vendor files, validated lazily: every failure of a file is collected, as data.

A ``Contract`` names a file's columns with their kind (date, text, number), whether they may be missing, their
range and format, the key that must be unique and the row-level rules between columns (a high that brackets the
open and close). ``Contract.validate`` checks a whole frame and returns every failure it finds as a ``Failure``
(file, row, column, reason, value) together with the frame cast to the contract's types; nothing raises. This is
pandera's lazy validation written with polars (pandera is not a dependency): the parsers in ``vendor_files``
apply the contracts below, in one place, and turn a non-empty failure list into a quarantine with every reason.

Rows are numbered from 1, the header not counted (CSV line ``row + 1``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import polars as pl

# The ticker shape every vendor file must use: upper case, digits, '.' and '-', at most 12 characters (the same
# shape the delivery names use, ``deliveries._TICKER``). A null, lower-case or space-padded ticker is refused.
TICKER_PATTERN = r"^[A-Z0-9][A-Z0-9.\-]{0,11}$"
TICKER_SHAPE = "upper-case A-Z, 0-9, '.' or '-', at most 12 characters, no spaces"
MAX_PRICE = 1e7  # USD per share; above any listed share (the dearest trades near 1e6)
MAX_VOLUME = 1e13  # shares a day; the largest real prints are near 1e10
MAX_ADV_USD = 1e13  # average daily dollar volume of one name
# A file with fewer names than this share of the day's universe (or of the other provider's file) is incomplete.
COMPLETE_SHARE = 0.9


@dataclass(frozen=True)
class Failure:
    """One contract failure. ``row`` is 1-based (header not counted), None for the whole file or column."""

    file: str
    row: int | None
    column: str | None
    reason: str
    value: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Column:
    """One column of a contract. ``kind``: "date", "text" or "number". Ranges apply to numbers: ``gt``/``ge`` a
    lower bound (strict or not), ``le`` an upper bound; ``pattern`` (a regex, described by ``shape``) to text."""

    name: str
    kind: str
    nullable: bool = False
    finite: bool = True
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    shape: str = ""
    low_reason: str = ""  # the reason for a value under gt/ge (default: "below <bound>")


@dataclass(frozen=True)
class RowRule:
    """A rule between columns: ``bad()`` is true on the rows that break it; ``column`` is the one reported."""

    column: str
    bad: Callable[[], pl.Expr]
    reason: str


@dataclass(frozen=True)
class Contract:
    name: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()
    rules: tuple[RowRule, ...] = ()
    ticker: str | None = None  # the column checked against the universe, when one is given
    date: str | None = None  # the column that must equal the file name's date, when one is given

    def validate(
        self,
        file: str,
        df: pl.DataFrame,
        *,
        universe: Iterable[str] | None = None,
        file_date: datetime.date | None = None,
    ) -> tuple[list[Failure], pl.DataFrame]:
        """Every failure of ``df`` against the contract, and ``df`` cast to the contract's types (the columns
        that could not be cast are left as they were; the frame is only to be used when there is no failure)."""
        failures: list[Failure] = []
        if df.height == 0:
            return [Failure(file, None, None, "file has no rows")], df
        missing = [c.name for c in self.columns if c.name not in df.columns]
        if missing:
            return [Failure(file, None, None, f"missing column(s) {sorted(missing)}; got {df.columns}")], df
        df = df.with_row_index("__row", offset=1)
        usable: set[str] = set()  # columns of the right kind, checked further
        uncast: dict[str, list[int]] = {}  # rows whose value did not cast (already reported, not "missing")
        for col in self.columns:
            df, fails, ok = _cast(file, df, col)
            failures += fails
            uncast[col.name] = [f.row for f in fails if f.row is not None]
            if ok:
                usable.add(col.name)
        # a clean file (nearly every delivery): one pass, no per-check filters
        if not failures and not self._any_problem(df, usable, universe, file_date):
            return [], df.drop("__row")
        for col in self.columns:
            if col.name in usable:
                failures += _column_failures(file, df.filter(~pl.col("__row").is_in(uncast[col.name])), col)
        if self.unique and all(c in usable for c in self.unique):
            key = pl.struct(list(self.unique))
            dup = df.filter(
                ~key.is_first_distinct() & pl.all_horizontal([pl.col(c).is_not_null() for c in self.unique])
            )
            failures += _rows(
                file, dup, self.unique[-1], f"duplicate rows for the key ({', '.join(self.unique)})"
            )
        for rule in self.rules:
            needed = _rule_columns(rule)
            if needed <= usable:
                failures += _rows(file, df.filter(rule.bad().fill_null(False)), rule.column, rule.reason)
        if universe is not None and self.ticker in usable:
            members = sorted(set(universe))
            ticker = pl.col(self.ticker)
            out = df.filter(
                ticker.is_not_null() & ticker.str.contains(TICKER_PATTERN) & ~ticker.is_in(members)
            )
            when = f" on {file_date}" if file_date else ""
            failures += _rows(file, out, self.ticker, f"not in the universe{when}")
        if file_date is not None and self.date in usable:
            other = df.filter(pl.col(self.date).is_not_null() & (pl.col(self.date) != file_date))
            failures += _rows(
                file, other, self.date, f"dated otherwise than the file name says ({file_date})"
            )
        return failures, df.drop("__row")

    def _any_problem(
        self,
        df: pl.DataFrame,
        usable: set[str],
        universe: Iterable[str] | None,
        file_date: datetime.date | None,
    ) -> bool:
        """Whether any check below ``_cast`` could fail on ``df`` (cast, with no cast failure): every condition of
        ``_column_failures``, the key, the rules, the universe and the date, evaluated in one pass. When it is
        false the detailed checks find nothing; when it is true they name every failing row."""
        checks: list[pl.Expr] = []
        for col in self.columns:
            if col.name not in usable:
                continue
            c = pl.col(col.name)
            if not col.nullable:
                checks.append(c.is_null())
            if col.kind == "number":
                if col.finite:
                    checks.append(c.is_nan() | c.is_infinite())
                for bound, bad in ((col.gt, c.__le__), (col.ge, c.__lt__), (col.le, c.__gt__)):
                    if bound is not None:
                        checks.append(bad(bound))
            if col.kind == "text" and col.pattern:
                checks.append(~c.str.contains(col.pattern))
        if self.unique and all(c in usable for c in self.unique):
            key = pl.struct(list(self.unique))
            checks.append(
                ~key.is_first_distinct() & pl.all_horizontal([pl.col(c).is_not_null() for c in self.unique])
            )
        checks += [rule.bad() for rule in self.rules if _rule_columns(rule) <= usable]
        if universe is not None and self.ticker in usable:
            ticker = pl.col(self.ticker)
            checks.append(ticker.str.contains(TICKER_PATTERN) & ~ticker.is_in(sorted(set(universe))))
        if file_date is not None and self.date in usable:
            checks.append(pl.col(self.date) != file_date)
        if not checks:
            return False
        hits = df.select([e.fill_null(False).any().alias(f"c{i}") for i, e in enumerate(checks)])
        return any(hits.row(0))


def _rule_columns(rule: RowRule) -> set[str]:
    return set(rule.bad().meta.root_names())


def _rows(file: str, bad: pl.DataFrame, column: str, reason: str) -> list[Failure]:
    if bad.height == 0:
        return []
    values = bad[column].to_list() if column in bad.columns else [None] * bad.height
    return [
        Failure(
            file, int(r), column, reason, None if v is None else repr(v) if isinstance(v, str) else str(v)
        )
        for r, v in zip(bad["__row"].to_list(), values, strict=True)
    ]


def _cast(file: str, df: pl.DataFrame, col: Column) -> tuple[pl.DataFrame, list[Failure], bool]:
    """The column cast to its kind; a value that does not cast is a row failure, a column of the wrong type a
    column failure (the column is then not checked further)."""
    c, dtype = col.name, df.schema[col.name]
    if dtype == pl.Null:  # every value missing: the null checks report each row
        target = {"date": pl.Date, "text": pl.Utf8, "number": pl.Float64}[col.kind]
        return df.with_columns(pl.col(c).cast(target)), [], True
    if col.kind == "number":
        if dtype.is_numeric():
            return df.with_columns(pl.col(c).cast(pl.Float64)), [], True
        if dtype == pl.Utf8:
            cast = pl.col(c).str.strip_chars().cast(pl.Float64, strict=False)
            bad = df.filter(pl.col(c).is_not_null() & cast.is_null())
            return df.with_columns(cast), _rows(file, bad, c, "not a number"), True
        return df, [Failure(file, None, c, f"column '{c}' is {dtype}, expected a number")], False
    if col.kind == "date":
        if dtype == pl.Date:
            return df, [], True
        if isinstance(dtype, pl.Datetime):
            return df.with_columns(pl.col(c).dt.date()), [], True
        if dtype == pl.Utf8:
            cast = pl.col(c).str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
            bad = df.filter(pl.col(c).is_not_null() & cast.is_null())
            return df.with_columns(cast), _rows(file, bad, c, "not a YYYY-MM-DD date"), True
        return df, [Failure(file, None, c, f"column '{c}' is {dtype}, expected a date")], False
    if dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum):
        return df.with_columns(pl.col(c).cast(pl.Utf8)), [], True
    return df, [Failure(file, None, c, f"column '{c}' is {dtype}, expected text")], False


def _column_failures(file: str, df: pl.DataFrame, col: Column) -> list[Failure]:
    c = pl.col(col.name)
    out: list[Failure] = []
    if not col.nullable:
        out += _rows(file, df.filter(c.is_null()), col.name, "missing value")
    present = df.filter(c.is_not_null())
    if col.kind == "number":
        if col.finite:
            out += _rows(
                file, present.filter(c.is_nan() | c.is_infinite()), col.name, "NaN or infinite values"
            )
            present = present.filter(c.is_finite())
        for bound, bad, why in (
            (col.gt, lambda b: c <= b, col.low_reason or f"at or below {col.gt:g}"),
            (col.ge, lambda b: c < b, col.low_reason or f"below {col.ge:g}"),
            (col.le, lambda b: c > b, f"above the plausible maximum {col.le:g}"),
        ):
            if bound is not None:
                out += _rows(file, present.filter(bad(bound)), col.name, why)
    if col.kind == "text" and col.pattern:
        out += _rows(
            file, present.filter(~c.str.contains(col.pattern)), col.name, f"not a ticker ({col.shape})"
        )
    return out


def summarize(failures: list[Failure], limit: int = 6) -> str:
    """One line per (column, reason), with the count and the first rows and values, joined by '; '."""
    groups: dict[tuple[str | None, str], list[Failure]] = {}
    for f in failures:
        groups.setdefault((f.column, f.reason), []).append(f)
    parts = []
    for (column, reason), fs in groups.items():
        where = ""
        rows = [f for f in fs if f.row is not None]
        if rows:
            shown = ", ".join(
                f"row {f.row}" + (f" {f.value}" if f.value is not None else " null") for f in rows[:3]
            )
            more = f", +{len(rows) - 3} more" if len(rows) > 3 else ""
            where = f" in {len(rows)} row(s) ({shown}{more})"
        parts.append(f"{column + ': ' if column and not reason.startswith('column') else ''}{reason}{where}")
    text = "; ".join(parts[:limit])
    if len(parts) > limit:
        text += f"; and {len(parts) - limit} more problem(s)"
    return text


def _price(name: str) -> Column:
    return Column(name, "number", gt=0.0, le=MAX_PRICE, low_reason="non-positive prices")


PRICES = Contract(
    name="prices",
    columns=(
        Column("trade_date", "date"),
        Column("ticker", "text", pattern=TICKER_PATTERN, shape=TICKER_SHAPE),
        _price("open"),
        _price("high"),
        _price("low"),
        _price("close"),
        Column("volume", "number", ge=0.0, le=MAX_VOLUME, low_reason="negative volume"),
    ),
    unique=("trade_date", "ticker"),
    rules=(
        RowRule(
            "high",
            lambda: (
                (pl.col("high") < pl.max_horizontal("open", "close", "low") * (1 - 1e-6))
                | (pl.col("low") > pl.min_horizontal("open", "close", "high") * (1 + 1e-6))
            ),
            "high/low do not bracket open/close",
        ),
    ),
    ticker="ticker",
    date="trade_date",
)

UNIVERSE = Contract(
    name="universe",
    columns=(
        Column("ticker", "text", pattern=TICKER_PATTERN, shape=TICKER_SHAPE),
        Column("name", "text", nullable=True),
        Column("sector", "text"),
        Column("country", "text"),
        Column("adv_usd", "number", ge=0.0, le=MAX_ADV_USD, low_reason="negative ADV"),
    ),
    unique=("ticker",),
)


def completeness(
    file: str,
    names: Iterable[str],
    universe: Iterable[str] | None,
    other: Iterable[str] | None,
    other_file: str | None = None,
    share: float = COMPLETE_SHARE,
) -> Failure | None:
    """A failure when the file has materially fewer names than the day's universe or the other provider's file
    (fewer than ``share`` of them), else None. The reason lists how many and the first missing names."""
    have = set(names)
    for label, expected in (("the day's universe", universe), (other_file or "the other provider", other)):
        if expected is None:
            continue
        want = set(expected)
        if not want:
            continue
        found = len(have & want)
        if found < share * len(want):
            missing = sorted(want - have)
            return Failure(
                file,
                None,
                "ticker",
                (
                    f"incomplete: {found} of {len(want)} names of {label} "
                    f"(missing {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
                    f"a complete file has at least {share:.0%} of them"
                ),
            )
    return None


__all__ = [
    "COMPLETE_SHARE",
    "MAX_PRICE",
    "MAX_VOLUME",
    "PRICES",
    "TICKER_PATTERN",
    "UNIVERSE",
    "Column",
    "Contract",
    "Failure",
    "RowRule",
    "completeness",
    "summarize",
]
