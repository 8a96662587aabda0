"""Choose each day's prices from two providers and reconcile them.

Rule per trading day, **name by name**: provider A's row when its file is valid, complete and on time and the row
is plausible; otherwise provider B's row for that name; otherwise A's late file; otherwise nothing (the name, or
the day, is reported and the asset keeps the rows the table already holds for it). Plausible (blocking): the other
provider agrees within ``BLOCK_TOLERANCE``, or history says which of two disagreeing providers is right, or a lone
provider's close stays within a robust bound of the name's own history. Every row records its ``source`` and,
when not A's, the ``failover_reason``. Where both providers delivered valid files, every field that disagrees by
more than ``tolerance`` is listed for the reconciliation table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from alpha_assets.lib.ingestion.vendor_files import PRICE_COLUMNS, ParsedPrices

RECON_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.Utf8,
    "field": pl.Utf8,
    "value_a": pl.Float64,
    "value_b": pl.Float64,
    "rel_diff": pl.Float64,
    "chosen_source": pl.Utf8,
}
PRICES_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.Utf8,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Int64,
    "source": pl.Utf8,
    "failover_reason": pl.Utf8,
}


# Plausibility (blocking: a row that fails is never used). A and B further apart than BLOCK_TOLERANCE on any price
# field cannot both be right; the name's own history decides which one is (a jump from its last close beyond
# max(JUMP_FLOOR, JUMP_MADS robust sigmas) is not plausible), and when it cannot, the name is dropped for the day.
# A row from one provider alone that jumps beyond the bound has no corroboration and is not used either.
BLOCK_TOLERANCE = 0.10  # relative, on open/high/low/close
JUMP_FLOOR = 0.40  # |log return| from the last close: about +49% / -33%
JUMP_MADS = 12.0  # robust sigmas (1.4826 * MAD of the name's last log returns)
HISTORY_RETURNS = 60  # log returns the robust sigma is taken over
MIN_HISTORY = 10  # fewer returns: the floor alone is the bound
PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass
class DayInputs:
    trade_date: date
    a: ParsedPrices | None = None
    a_error: str | None = None  # why A is unusable: "missing", or the VendorFileError reason
    a_late: bool = False
    b: ParsedPrices | None = None
    b_error: str | None = None


@dataclass
class DayChoice:
    trade_date: date
    source: str | None  # "A", "B", "A_late", a mix ("A+B") or None
    reason: str | None  # the day's failover reasons (None when every row is A's)
    rows: pl.DataFrame
    reconciliation: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RECON_SCHEMA))
    dropped: list[dict] = field(
        default_factory=list
    )  # {"ticker", "reason"}: names no provider could be trusted
    replaced: list[dict] = field(
        default_factory=list
    )  # {"ticker", "source", "reason"}: names not from the primary


class History:
    """Each name's last accepted close and robust sigma of its log returns, for the plausibility bound."""

    def __init__(self, rows: pl.DataFrame | None = None):
        self.last: dict[str, float] = {}
        self.sigma: dict[str, float] = {}
        self._closes: dict[str, list[float]] = {}
        if rows is not None and rows.height:
            ordered = rows.select("trade_date", "ticker", "close").drop_nulls().sort("ticker", "trade_date")
            for ticker, closes in (
                ordered.group_by("ticker", maintain_order=True).agg(pl.col("close")).iter_rows()
            ):
                self._set(ticker, [float(c) for c in closes if c and c > 0])

    def _set(self, ticker: str, closes: list[float]) -> None:
        closes = closes[-(HISTORY_RETURNS + 1) :]
        if not closes:
            return
        self._closes[ticker] = closes
        self.last[ticker] = closes[-1]
        rets = np.diff(np.log(np.asarray(closes)))
        if rets.size >= MIN_HISTORY:
            self.sigma[ticker] = float(1.4826 * np.median(np.abs(rets - np.median(rets))))
        else:
            self.sigma.pop(ticker, None)

    def add(self, rows: pl.DataFrame) -> None:
        """Accepted rows of a later day."""
        for ticker, close in rows.select("ticker", "close").iter_rows():
            if close is not None and close > 0:
                self._set(ticker, [*self._closes.get(ticker, []), float(close)])

    def bound(self, ticker: str) -> float:
        return max(JUMP_FLOOR, JUMP_MADS * self.sigma.get(ticker, 0.0))

    def jump(self, ticker: str, close: float) -> float | None:
        """|log(close / last close)|, None without history."""
        last = self.last.get(ticker)
        return None if last is None or close is None or close <= 0 else abs(math.log(close / last))


def _plausible(history: History, ticker: str, close: float) -> tuple[bool | None, str]:
    """(within the bound, description); None when there is no history to judge by."""
    jump = history.jump(ticker, close)
    if jump is None:
        return None, "no history"
    text = f"{math.exp(jump) - 1 if close >= history.last[ticker] else math.exp(-jump) - 1:+.1%} from the last close {history.last[ticker]:g}"
    return jump <= history.bound(ticker), text


def _disagreement(ra: dict, rb: dict) -> tuple[float, str]:
    worst, field_name = 0.0, "close"
    for f in PRICE_FIELDS:
        va, vb = ra[f], rb[f]
        rel = abs(va - vb) / abs(vb) if vb else math.inf
        if rel > worst:
            worst, field_name = rel, f
    return worst, field_name


def choose_day(inp: DayInputs, tolerance: float = 0.005, history: History | None = None) -> DayChoice:
    """The day's rows, name by name: the primary provider's row (A on time, else B, else A's late file) where it is
    plausible, the other provider's where the primary lacks the name or is not plausible, nothing where neither is.

    A row is plausible when the other provider agrees within ``BLOCK_TOLERANCE``, or, with no other provider's row
    or a disagreement, when it stays within the name's history bound (``History``); a disagreement history cannot
    settle drops the name. Every row not from A records its ``failover_reason``."""
    history = history or History()
    a_on_time = inp.a if inp.a is not None and not inp.a_late else None
    a_late = inp.a if inp.a is not None and inp.a_late else None
    if a_on_time is None and inp.b is None and a_late is None:
        empty = pl.DataFrame(schema=PRICES_SCHEMA)
        why = f"A: {inp.a_error or 'missing'}; B: {inp.b_error or 'missing'}"
        return DayChoice(inp.trade_date, None, why, empty)
    if a_on_time is not None:
        order = [("A", a_on_time), ("B", inp.b)]
        absent = {"B": f"provider B {inp.b_error or 'missing'}"}
    else:
        order = [("B", inp.b), ("A_late", a_late)]
        absent = {"A_late": f"provider B {inp.b_error or 'missing'}"}
    why_not_a = "provider A late" if a_late is not None else f"provider A {inp.a_error or 'missing'}"
    by_source = {
        src: {r["ticker"]: r for r in p.rows.iter_rows(named=True)} for src, p in order if p is not None
    }
    tickers = sorted(set().union(*[set(v) for v in by_source.values()]))
    out, dropped, replaced = [], [], []
    (first, _), (second, _) = order
    for t in tickers:
        r1, r2 = by_source.get(first, {}).get(t), by_source.get(second, {}).get(t)
        pick, reason = None, None
        if r1 is not None and r2 is not None:
            rel, fld = _disagreement(r1, r2)
            if rel <= BLOCK_TOLERANCE:
                pick = first
            else:
                ok1, h1 = _plausible(history, t, r1["close"])
                ok2, h2 = _plausible(history, t, r2["close"])
                differ = (
                    f"{_label(first)} {fld} {r1[fld]:g} and {_label(second)} {fld} {r2[fld]:g} disagree by "
                    f"{rel:.1%} (beyond {BLOCK_TOLERANCE:.0%})"
                )
                if ok1 and not ok2:
                    pick = first
                elif ok2 and not ok1:
                    pick, reason = (
                        second,
                        f"{differ}; {_label(first)} jumps {h1}, {_label(second)} agrees with history",
                    )
                else:
                    dropped.append(
                        {
                            "ticker": t,
                            "reason": f"{differ}; history cannot tell which is right "
                            f"({_label(first)} {h1}, {_label(second)} {h2})",
                        }
                    )
                    continue
        else:
            src, row = (first, r1) if r1 is not None else (second, r2)
            assert row is not None  # t is a ticker of one of the two providers
            ok, h = _plausible(history, t, row["close"])
            if ok is False:
                dropped.append(
                    {
                        "ticker": t,
                        "reason": f"{_label(src)} close {row['close']:g} jumps {h} (beyond the "
                        f"name's bound) and no other provider corroborates it",
                    }
                )
                continue
            pick = src
            if src == second:
                reason = f"{_label(first)} has no row for {t}" if first in by_source else absent[second]
        row = by_source[pick][t]
        if pick != "A":
            if reason is None:
                reason = why_not_a if pick == "B" else absent.get(pick, why_not_a)
            if pick == "A_late" and "using A's late file" not in reason:
                reason = f"{reason}; using A's late file"
            replaced.append({"ticker": t, "source": pick, "reason": reason})
        out.append({**{c: row[c] for c in PRICE_COLUMNS}, "source": pick, "failover_reason": reason})
    rows = pl.DataFrame(out, schema=PRICES_SCHEMA) if out else pl.DataFrame(schema=PRICES_SCHEMA)
    sources = sorted(set(rows["source"].to_list()), key=["A", "B", "A_late"].index)
    source = "+".join(sources) if sources else None
    reasons = sorted({r["reason"] for r in replaced})
    if dropped:
        reasons.append(
            f"{len(dropped)} name(s) dropped: "
            + "; ".join(f"{d['ticker']}: {d['reason']}" for d in dropped[:3])
        )
    reason = None if not reasons else reasons[0] if len(reasons) == 1 else "; ".join(reasons[:4])
    recon = (
        reconcile(inp.a.rows, inp.b.rows, source or "", tolerance)
        if inp.a and inp.b
        else pl.DataFrame(schema=RECON_SCHEMA)
    )
    return DayChoice(inp.trade_date, source, reason, rows, recon, dropped, replaced)


def _label(source: str) -> str:
    return {"A": "provider A", "B": "provider B", "A_late": "provider A's late file"}[source]


def reconcile(a: pl.DataFrame, b: pl.DataFrame, chosen: str, tolerance: float) -> pl.DataFrame:
    """Fields where A and B differ by more than ``tolerance`` (relative), and names only one provider has."""
    j = a.join(b, on=["trade_date", "ticker"], how="full", suffix="_b", coalesce=True)
    parts = []
    for f in ("open", "high", "low", "close", "volume"):
        va, vb = pl.col(f).cast(pl.Float64), pl.col(f"{f}_b").cast(pl.Float64)
        tol = tolerance if f != "volume" else max(tolerance, 0.05)
        diff = ((va - vb).abs() / vb.abs()).alias("rel_diff")
        parts.append(
            j.select(
                "trade_date",
                "ticker",
                pl.lit(f).alias("field"),
                va.alias("value_a"),
                vb.alias("value_b"),
                diff,
            ).filter(pl.col("rel_diff").is_null() | (pl.col("rel_diff") > tol))
        )
    out = pl.concat(parts).with_columns(pl.lit(chosen).alias("chosen_source"))
    # A name missing at one provider shows once (as its close), not five times.
    out = out.filter(pl.col("rel_diff").is_not_null() | (pl.col("field") == "close"))
    # polars types cast()'s Mapping key as a union (keys are invariant): a dict[str, dtype], its documented use, misses it
    return out.cast(RECON_SCHEMA).sort("ticker", "field")  # type: ignore[arg-type]
