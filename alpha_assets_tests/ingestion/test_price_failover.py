"""Provider selection, validation and quarantine, at the lib level and through the asset."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone

import polars as pl
import pytest

from alpha_assets.lib.ingestion.prices import DayInputs, choose_day
from alpha_assets.lib.ingestion.vendor_files import (
    VendorFileError,
    is_late,
    parse_provider_a,
    parse_provider_b,
)

D = date(2024, 3, 5)


def _csv(rows: list[dict], published="2024-03-05T21:30:00+00:00") -> bytes:
    df = pl.DataFrame(rows).with_columns(pl.lit(published).alias("published_at"))
    return df.write_csv().encode()


def _row(t="AAA", close=10.0, d="2024-03-05"):
    return {
        "ticker": t,
        "date": d,
        "open": close,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": 1000,
    }


def _parquet(rows: list[dict]) -> bytes:
    df = pl.DataFrame(
        [
            {
                "symbol": r["ticker"],
                "session_date": date.fromisoformat(r["date"]),
                "px_open": r["open"],
                "px_high": r["high"],
                "px_low": r["low"],
                "px_last": r["close"],
                "shares_traded": r["volume"],
            }
            for r in rows
        ]
    )
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def test_failover_picks_b_when_a_is_missing_and_records_it():
    b = parse_provider_b("prices_b_2024-03-05.parquet", _parquet([_row(), _row("BBB", 20.0)]))
    choice = choose_day(DayInputs(D, a=None, a_error=None, b=b))
    assert choice.source == "B"
    assert choice.rows["source"].unique().to_list() == ["B"]
    assert choice.rows["failover_reason"].unique().to_list() == ["provider A missing"]


def test_failover_picks_b_when_a_is_corrupt():
    with pytest.raises(VendorFileError) as err:
        parse_provider_a("prices_a_2024-03-05.csv", b"ticker,date\x00\x00\xff")
    assert "prices_a_2024-03-05.csv" in str(err.value)
    b = parse_provider_b("prices_b_2024-03-05.parquet", _parquet([_row()]))
    choice = choose_day(DayInputs(D, a_error=f"corrupt file ({err.value.reason})", b=b))
    assert choice.source == "B" and "corrupt" in choice.reason


def test_a_late_file_loses_to_an_on_time_backup_but_beats_nothing():
    a = parse_provider_a("prices_a_2024-03-05.csv", _csv([_row()], published="2024-03-06T15:00:00+00:00"))
    assert is_late(a, date(2024, 3, 6))
    b = parse_provider_b("prices_b_2024-03-05.parquet", _parquet([_row()]))
    assert choose_day(DayInputs(D, a=a, a_late=True, b=b)).source == "B"
    assert choose_day(DayInputs(D, a=a, a_late=True)).source == "A_late"


def test_disagreements_above_tolerance_are_listed():
    a = parse_provider_a("prices_a_2024-03-05.csv", _csv([_row("AAA", 10.0), _row("BBB", 20.0)]))
    b = parse_provider_b("prices_b_2024-03-05.parquet", _parquet([_row("AAA", 10.001), _row("BBB", 21.0)]))
    recon = choose_day(DayInputs(D, a=a, b=b), tolerance=0.005).reconciliation
    assert set(recon["ticker"]) == {"BBB"}
    close = recon.filter(pl.col("field") == "close").row(0, named=True)
    assert (
        close["value_a"] == 20.0 and close["value_b"] == 21.0 and close["rel_diff"] == pytest.approx(1 / 21)
    )


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("prices_a_2024-03-05.csv", b"", "empty"),
        ("prices_a.csv", b"ticker,date\n", "no valid YYYY-MM-DD"),
        (
            "prices_a_2024-03-05.csv",
            b"ticker,date,open,high,low,close\nAAA,2024-03-05,1,1,1,1\n",
            "missing column",
        ),
        ("prices_a_2024-03-05.csv", _csv([_row(close=float("nan"))]), "NaN"),
        ("prices_a_2024-03-05.csv", _csv([_row(close=float("inf"))]), "infinite"),
        ("prices_a_2024-03-05.csv", _csv([_row(close=-1.0)]), "non-positive"),
        ("prices_a_2024-03-05.csv", _csv([_row(d="2024-03-04")]), "file name says"),
        ("prices_a_2024-03-05.csv", _csv([_row(), _row()]), "duplicate"),
    ],
)
def test_bad_vendor_files_raise_an_error_naming_the_file_and_reason(name, data, reason):
    with pytest.raises(VendorFileError) as err:
        parse_provider_a(name, data)
    assert name in str(err.value) and reason in str(err.value)


def test_a_future_dated_file_is_refused():
    with pytest.raises(VendorFileError, match="future"):
        parse_provider_a("prices_a_2024-03-05.csv", _csv([_row()]), today=date(2024, 3, 1))


def test_a_corrupt_file_is_quarantined_and_no_rows_are_lost(home, instance):
    from alpha_assets.app.runs import materialize
    from alpha_assets_tests.conftest import WORLD_START
    from partitions.calendar import sessions_from
    from resources.lake import DeltaLake

    days = sessions_from(WORLD_START, 40)
    d = days[5]
    materialize(home, days[0], days[9], quiet=True, instance=instance, job_name="daily_data")
    lake = DeltaLake(home.lake)
    before = lake.read("raw", "prices", d, d)
    # Both providers now deliver garbage for day d: the day keeps its rows, both files are quarantined.
    (home.landing / "prices_a" / f"prices_a_{d}.csv").write_bytes(b"\x00\x01garbage")
    (home.landing / "prices_b" / f"prices_b_{d}.parquet").write_bytes(b"not parquet")
    res = materialize(home, d, d, quiet=True, instance=instance, job_name="daily_data")
    assert res["success"]
    after = lake.read("raw", "prices", d, d)
    assert after.sort("ticker").equals(before.sort("ticker"))
    reasons = sorted(
        json.loads(p.read_text())["reason"]
        for p in home.quarantine.rglob("*.reason.json")
        if str(d) in p.name
    )
    assert len(reasons) == 2 and any("Parquet" in r for r in reasons) and any("binary" in r for r in reasons)
    _ = datetime, timezone


def test_the_day_fails_over_name_by_name_and_a_disagreement_history_cannot_settle_drops_the_name():
    from alpha_assets.lib.ingestion.prices import History

    a = parse_provider_a("prices_a_2024-03-05.csv", _csv([_row("AAA", 10.0), _row("CCC", 20.0)]))
    b = parse_provider_b(
        "prices_b_2024-03-05.parquet", _parquet([_row("AAA", 10.0), _row("BBB", 20.0), _row("CCC", 45.0)])
    )
    choice = choose_day(DayInputs(D, a=a, b=b))  # no history: CCC's 56% disagreement cannot be settled
    rows = {r["ticker"]: r for r in choice.rows.iter_rows(named=True)}
    assert rows["AAA"]["source"] == "A" and rows["AAA"]["failover_reason"] is None
    assert rows["BBB"]["source"] == "B" and rows["BBB"]["failover_reason"] == "provider A has no row for BBB"
    assert "CCC" not in rows and "history cannot tell" in choice.dropped[0]["reason"]
    # with CCC's history at 45, B is right and replaces A's row for CCC only
    history = History(pl.DataFrame({"trade_date": [date(2024, 3, 4)], "ticker": ["CCC"], "close": [45.0]}))
    rows = {
        r["ticker"]: r for r in choose_day(DayInputs(D, a=a, b=b), history=history).rows.iter_rows(named=True)
    }
    assert rows["CCC"]["source"] == "B" and rows["CCC"]["close"] == 45.0 and rows["AAA"]["source"] == "A"


def test_a_bad_value_is_refused_with_its_row_and_column_never_raised_raw():
    data = _csv([_row("AAA"), {**_row("BBB"), "volume": 1e30}, _row("ccc")])
    with pytest.raises(VendorFileError) as err:
        parse_provider_a("prices_a_2024-03-05.csv", data, universe={"AAA", "BBB", "CCC"})
    got = {(f.row, f.column) for f in err.value.failures}
    assert got == {(2, "volume"), (3, "ticker")}
    assert "above the plausible maximum" in err.value.reason and "not a ticker" in err.value.reason
