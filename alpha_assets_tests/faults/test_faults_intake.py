"""The intake faults of issue 19: vendor files that used to be accepted with exit 0 (or to fail the whole step),
each now refused with a reason naming the file, failed over name by name, with no row lost.

Same baseline as ``test_faults``: raw.prices materialized over the world's first ``N`` sessions (12 names a day),
then one fault, then the CLI path again. Where provider B has the truth, the day's prices are B's; where no
provider can be trusted for a name, the table keeps the row it had."""

from __future__ import annotations

import io
import json
import os
from datetime import date, timedelta

import polars as pl
import pytest

from alpha_assets_tests.faults.test_faults import (
    _a,
    _assert_nothing_lost,
    _b,
    _lake,
    _materialize,
    _metadata,
    _reasons,
    _sessions,
)

PRICE_FIELDS = ["open", "high", "low", "close"]


@pytest.fixture
def baseline(home, instance):
    """(home, instance, prices before the fault, Delta version before the fault), as in ``test_faults``."""
    assert _materialize(home, instance)["success"]
    lake = _lake(home)
    return home, instance, lake.read("raw", "prices"), lake.version("raw", "prices")


def _day(home, d: date) -> pl.DataFrame:
    return _lake(home).read("raw", "prices", d, d).sort("ticker")


def _b_truth(home, d: date) -> pl.DataFrame:
    """Provider B's rows for ``d`` in the table's columns (B has the truth in these cases)."""
    return (
        pl.read_parquet(_b(home, d))
        .select(
            pl.col("symbol").alias("ticker"),
            pl.col("px_open").alias("open"),
            pl.col("px_high").alias("high"),
            pl.col("px_low").alias("low"),
            pl.col("px_last").alias("close"),
        )
        .sort("ticker")
    )


def _assert_day_is_b(home, d: date, names: int = 12) -> None:
    day = _day(home, d)
    assert day.height == names, f"{d}: {day.height} names, expected {names}"
    assert set(day["source"]) == {"B"}
    assert day.select("ticker", *PRICE_FIELDS).equals(_b_truth(home, d))


# ------------------------------------------------------------------------------------- completeness
def _cut_inside_volume(data: bytes, rows: int) -> bytes:
    """The file as a transfer cut short: the header, ``rows`` rows, the last cut inside its volume."""
    lines = data.decode().splitlines()
    last = lines[rows].split(",")
    return "\n".join([*lines[:rows], ",".join(last[:6]) + "," + last[6][:2]]).encode()


@pytest.mark.parametrize("b_delivered", [True, False], ids=["B has the day", "B missing too"])
def test_a_partial_file_is_incomplete_quarantined_and_never_wipes_names(baseline, b_delivered):
    home, instance, before, version = baseline
    d = _sessions()[3]
    _a(home, d).write_bytes(_cut_inside_volume(_a(home, d).read_bytes(), 5))
    if not b_delivered:
        _b(home, d).unlink()
    res = _materialize(home, instance)
    assert res["success"], res
    reason = _reasons(home)[f"prices_a/{_a(home, d).name}"]
    assert "incomplete: 5 of 12 names of the day's universe" in reason, reason
    if b_delivered:
        _assert_day_is_b(home, d)
        assert "refused file prices_a_" in _day(home, d)["failover_reason"][0]
    else:  # no provider for the day: the table keeps every name it had
        assert _day(home, d).equals(before.filter(pl.col("trade_date") == d).sort("ticker"))
    _assert_nothing_lost(
        f"partial A file ({'B has the day' if b_delivered else 'B missing'})", home, before, version
    )


# ------------------------------------------------------------------------------------- atomic deliveries
def test_the_fingerprint_is_of_the_bytes_parsed_and_a_file_read_half_written_is_read_again(
    baseline, monkeypatch
):
    """The run reads A's file while the vendor is still writing it (half the bytes); the file is complete on disk
    by the time anything looks again. That read is not used nor recorded, so the sensor asks for the day again
    and the next run reads the whole file."""
    from alpha_assets.definitions import local_resources
    from alpha_assets.ingestion.sensors import PRICE_KEYS, evaluate_landing, materialized_sources
    from resources.landing import LocalVendorLanding

    home, instance, before, version = baseline
    d = _sessions()[3]
    name = _a(home, d).name
    real = LocalVendorLanding.read_bytes
    reads = {"n": 0}

    def half_written(self, prefix, file):
        data = real(self, prefix, file)
        if file == name and reads["n"] == 0:
            reads["n"] += 1
            return data[: len(data) // 2]
        return data

    monkeypatch.setattr(LocalVendorLanding, "read_bytes", half_written)
    assert _materialize(home, instance)["success"]
    monkeypatch.undo()
    _assert_day_is_b(home, d)
    assert "still being written" in _day(home, d)["failover_reason"][0]
    assert f"prices_a/{name}" not in _metadata(instance)["source_fingerprints"]
    landing = local_resources(home)["landing"]
    requests, _, _ = evaluate_landing(
        "prices_a",
        landing,
        None,
        PRICE_KEYS,
        materialized=lambda keys: materialized_sources(instance, PRICE_KEYS, keys),
    )
    assert d.isoformat() in [r.partition_key for r in requests]
    assert _materialize(home, instance, d, d)["success"]  # the run the sensor asks for
    assert set(_day(home, d)["source"]) == {"A"}
    assert _day(home, d).equals(before.filter(pl.col("trade_date") == d).sort("ticker"))
    _assert_nothing_lost("file read half-written", home, before, version)


def test_a_file_still_growing_is_not_read_yet_and_a_settled_one_is_read_with_its_own_fingerprint(tmp_path):
    from alpha_assets.intake import Intake, NotReadYet
    from resources.landing import LocalVendorLanding, content_fingerprint

    landing = LocalVendorLanding(root=str(tmp_path / "landing"), quarantine_root=str(tmp_path / "quarantine"))
    folder = tmp_path / "landing" / "prices_a"
    folder.mkdir(parents=True)
    path = folder / "prices_a_2024-01-05.csv"
    path.write_text("ticker,date,open,high,low,close,volume\n")
    intake = Intake(landing, settle=0.3)
    [delivery] = intake.deliveries("prices_a")  # the first look
    with path.open("a") as f:  # the vendor is still writing
        f.write("T0,2024-01-05,1,1,1,1,0\n")
    with pytest.raises(NotReadYet, match="still being written"):
        intake.read_bytes("prices_a", delivery.name)
    assert intake.fingerprints == {} and intake.not_read_yet[0]["file"] == f"prices_a/{delivery.name}"
    settled = Intake(landing, settle=0.3)
    settled.deliveries("prices_a")
    data = settled.read_bytes("prices_a", delivery.name)
    assert data.count(b"\n") == 2
    assert settled.fingerprints[f"prices_a/{delivery.name}"] == content_fingerprint(data)


# ------------------------------------------------------------------------------------- plausibility
def _times_100(home, d: date, ticker: str, provider: str = "A") -> None:
    if provider == "A":
        df = pl.read_csv(_a(home, d))
        cols = PRICE_FIELDS
        df.with_columns(
            [
                pl.when(pl.col("ticker") == ticker).then(pl.col(c) * 100).otherwise(pl.col(c)).alias(c)
                for c in cols
            ]
        ).write_csv(_a(home, d))
    else:
        df = pl.read_parquet(_b(home, d))
        cols = ["px_open", "px_high", "px_low", "px_last"]
        df.with_columns(
            [
                pl.when(pl.col("symbol") == ticker).then(pl.col(c) * 100).otherwise(pl.col(c)).alias(c)
                for c in cols
            ]
        ).write_parquet(_b(home, d))


def test_a_100x_price_that_b_contradicts_is_replaced_by_b_for_that_name_only(baseline):
    home, instance, before, version = baseline
    d = _sessions()[4]
    ticker = sorted(before["ticker"].unique())[2]
    _times_100(home, d, ticker)
    res = _materialize(home, instance)
    assert res["success"] and not {"prices_valid", "prices_plausible"} & set(res["failed_checks"]), res
    day = _day(home, d)
    row = day.filter(pl.col("ticker") == ticker).row(0, named=True)
    truth = _b_truth(home, d).filter(pl.col("ticker") == ticker).row(0, named=True)
    assert row["source"] == "B" and row["close"] == truth["close"]
    assert "disagree" in row["failover_reason"] and "agrees with history" in row["failover_reason"]
    # every other name stays A's, as before the fault
    others = day.filter(pl.col("ticker") != ticker)
    assert set(others["source"]) == {"A"}
    assert others.equals(
        before.filter((pl.col("trade_date") == d) & (pl.col("ticker") != ticker)).sort("ticker")
    )
    _assert_nothing_lost("A x100 for one name (B has the truth)", home, before, version)


def test_a_100x_jump_no_other_provider_corroborates_is_not_used_and_the_row_is_kept(baseline):
    home, instance, before, version = baseline
    d = _sessions()[4]
    ticker = sorted(before["ticker"].unique())[2]
    _times_100(home, d, ticker)
    _b(home, d).unlink()
    res = _materialize(home, instance)
    assert res["success"], res
    assert _day(home, d).equals(before.filter(pl.col("trade_date") == d).sort("ticker"))  # the row it had
    dropped = _metadata(instance)["names_not_used"]
    assert any(x["ticker"] == ticker and "no other provider corroborates" in x["reason"] for x in dropped)
    _assert_nothing_lost("A x100 for one name, B missing", home, before, version)


def test_a_bad_print_at_b_never_displaces_a_price_history_agrees_with(baseline):
    home, instance, before, version = baseline
    d = _sessions()[4]
    ticker = sorted(before["ticker"].unique())[2]
    _times_100(home, d, ticker, provider="B")
    assert _materialize(home, instance)["success"]
    assert _day(home, d).equals(before.filter(pl.col("trade_date") == d).sort("ticker"))
    _assert_nothing_lost("B x100 for one name (A has the truth)", home, before, version)


def test_no_order_exceeds_its_multiple_of_the_names_liquidity():
    from alpha_assets.lib.portfolio.orders import MAX_ORDER_ADV_MULTIPLE, cap_to_liquidity

    d = date(2026, 11, 20)
    orders = pl.DataFrame(
        {
            "ticker": ["AAA", "BBB", "CCC"],
            "close": [8080.0, 50.0, 20.0],
            "current_shares": [6172, 100, 0],
            "order_shares": [-6166, 200, -500],
            "order_value": [-6166 * 8080.0, 200 * 50.0, -500 * 20.0],
        }
    ).with_columns((pl.col("current_shares") + pl.col("order_shares")).alias("target_shares"))
    universe = pl.DataFrame({"trade_date": [d, d], "ticker": ["AAA", "BBB"], "adv_usd": [5e6, 1e7]})
    capped, cut = cap_to_liquidity(orders, universe)
    limit = 5e6 * MAX_ORDER_ADV_MULTIPLE
    aaa = capped.filter(pl.col("ticker") == "AAA").row(0, named=True)
    assert abs(aaa["order_value"]) <= limit and aaa["side"] == "sell"
    assert aaa["target_shares"] == aaa["current_shares"] + aaa["order_shares"]
    assert [c["ticker"] for c in cut] == ["AAA"]
    # orders within the limit, and a name without an ADV (leaving the universe), are untouched
    assert capped.filter(pl.col("ticker") != "AAA")["order_shares"].to_list() == [200, -500]


# ------------------------------------------------------------------------------------- contracts
def test_null_lowercase_padded_and_unknown_tickers_are_refused_and_b_serves_every_name(baseline):
    home, instance, before, version = baseline
    d = _sessions()[2]
    df = pl.read_csv(_a(home, d))
    real = df["ticker"].to_list()
    bad = [None, real[1].lower(), f" {real[2]} ", "ZZZZ"]
    df.with_columns(pl.Series("ticker", bad + real[4:])).write_csv(_a(home, d))
    res = _materialize(home, instance)
    assert res["success"], res
    reason = _reasons(home)[f"prices_a/{_a(home, d).name}"]
    for part in (
        "ticker: missing value in 1 row(s) (row 1 null)",
        "not a ticker (upper-case",
        "row 2 '",
        "row 3 ' ",
        "not in the universe",
        "ZZZZ",
    ):
        assert part in reason, (part, reason)
    record = next(
        json.loads(p.read_text())
        for p in home.quarantine.rglob("*.reason.json")
        if _a(home, d).name in p.name
    )
    assert {(f["row"], f["column"]) for f in record["failures"]} >= {
        (1, "ticker"),
        (2, "ticker"),
        (3, "ticker"),
        (4, "ticker"),
    }
    assert all(f["file"] == _a(home, d).name and f["reason"] for f in record["failures"])
    _assert_day_is_b(home, d)
    table = _lake(home).read("raw", "prices")
    assert table["ticker"].null_count() == 0 and table["ticker"].str.contains(r"^[A-Z0-9][A-Z0-9.\-]*$").all()
    _assert_nothing_lost("null, lowercase, padded, unknown tickers", home, before, version)


def _int_session_date(home, d: date) -> None:
    df = pl.read_parquet(_b(home, d))
    df.with_columns(pl.lit(int(d.strftime("%Y%m%d")), dtype=pl.Int64).alias("session_date")).write_parquet(
        _b(home, d)
    )


def _huge_volume(home, d: date) -> None:
    df = pl.read_csv(_a(home, d)).with_columns(pl.col("volume").cast(pl.Float64))
    df.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(1e30).otherwise(pl.col("volume")).alias("volume")
    ).write_csv(_a(home, d))


ONE_BAD_VALUE = {
    "B session_date an integer": (
        "prices_b",
        _int_session_date,
        "column 'session_date' is Int64, expected a date",
    ),
    "A volume of 1e30": (
        "prices_a",
        _huge_volume,
        "volume: above the plausible maximum 1e+13 in 1 row(s) (row 3",
    ),
    "A unreadable": ("prices_a", None, "unreadable file (PermissionError"),
}


@pytest.mark.parametrize("case", list(ONE_BAD_VALUE))
def test_one_bad_value_or_an_unreadable_file_is_quarantined_not_a_failed_step(baseline, case, monkeypatch):
    from resources.landing import LocalVendorLanding

    home, instance, before, version = baseline
    d = _sessions()[3]
    prefix, fault, expected = ONE_BAD_VALUE[case]
    path = _a(home, d) if prefix == "prices_a" else _b(home, d)
    if fault is None:
        real = LocalVendorLanding.read_bytes

        def denied(self, p, name):
            if name == path.name:
                raise PermissionError(13, "Permission denied", str(path))
            return real(self, p, name)

        monkeypatch.setattr(LocalVendorLanding, "read_bytes", denied)
    else:
        fault(home, d)
    res = _materialize(home, instance)
    assert res["success"] and not res["failed_steps"], res
    reason = _reasons(home)[f"{prefix}/{path.name}"]
    assert expected in reason, reason
    day = _day(home, d)
    assert day.height == 12
    if prefix == "prices_a":
        _assert_day_is_b(home, d)
    else:  # B refused: A serves the day as before
        assert day.equals(before.filter(pl.col("trade_date") == d).sort("ticker"))
    _assert_nothing_lost(case, home, before, version)


# ------------------------------------------------------------------------------------- reasons
def test_the_failover_reason_is_the_same_on_a_rerun_after_the_file_was_quarantined(baseline):
    home, instance, before, version = baseline
    d = _sessions()[1]
    _a(home, d).write_bytes(b"ticker,date\x00\x00\xff\xfe garbage")
    assert _materialize(home, instance)["success"]
    first = _day(home, d)["failover_reason"].unique().to_list()
    assert len(first) == 1 and f"refused file {_a(home, d).name}" in first[0] and "binary" in first[0]
    assert _materialize(home, instance)["success"]  # the file is in quarantine now, not in landing/
    assert _day(home, d)["failover_reason"].unique().to_list() == first
    _assert_nothing_lost("rerun after a quarantine", home, before, version)


def test_a_fifo_or_a_directory_named_like_a_delivery_is_refused_with_a_reason(baseline):
    home, instance, before, version = baseline
    d1, d2 = _sessions()[1], _sessions()[2]
    _a(home, d1).unlink()
    os.mkfifo(_a(home, d1))
    _a(home, d2).unlink()
    _a(home, d2).mkdir()
    (_a(home, d2) / "part-0.csv").write_bytes(b"ticker,date\n")
    res = _materialize(home, instance)
    assert res["success"], res
    reasons = _reasons(home)
    assert "a FIFO named like a delivery, not a regular file" in reasons[f"prices_a/{_a(home, d1).name}"]
    assert "a directory named like a delivery" in reasons[f"prices_a/{_a(home, d2).name}"]
    assert f"prices_a/{_a(home, d2).name}/part-0.csv" not in reasons  # moved with its folder, not on its own
    for d, what in ((d1, "FIFO"), (d2, "directory")):
        _assert_day_is_b(home, d)
        assert what in _day(home, d)["failover_reason"][0]
    _assert_nothing_lost("FIFO and directory named like deliveries", home, before, version)


def test_a_future_dated_file_does_not_stretch_the_default_to(home):
    from alpha_assets.app.runs import landing_date_range

    lo, hi = landing_date_range(home)
    future = date.today() + timedelta(days=45)
    (home.landing / "prices_a" / f"prices_a_{future}.csv").write_bytes(_a(home, hi).read_bytes())
    assert landing_date_range(home) == (lo, hi)


def test_contract_failures_are_data_never_exceptions():
    """Parser level: whatever the bytes, a VendorFileError with every failure (file, row, column, reason)."""
    from alpha_assets.lib.ingestion.vendor_files import VendorFileError, parse_provider_a, parse_provider_b

    name = "prices_a_2024-01-05.csv"
    rows = [
        "ticker,date,open,high,low,close,volume",
        "AAA,2024-01-05,10,11,9,10,1000",
        "AAA,2024-01-05,10,11,9,10,1000",  # duplicate
        "BBB,20240105,10,11,9,abc,1000",  # not a date, not a number
        "CCC,2024-01-05,10,11,9,10,-5",  # negative volume
    ]
    with pytest.raises(VendorFileError) as err:
        parse_provider_a(name, "\n".join(rows).encode(), universe={"AAA", "BBB", "CCC"})
    got = {(f.row, f.column, f.reason) for f in err.value.failures}
    assert (2, "ticker", "duplicate rows for the key (trade_date, ticker)") in got
    assert (3, "date", "missing value") not in got  # a value that does not cast is reported once
    assert (3, "date", "not a YYYY-MM-DD date") in got and (3, "close", "not a number") in got
    assert (4, "volume", "negative volume") in got
    assert all(f.file == name for f in err.value.failures)
    buf = io.BytesIO()
    pl.DataFrame(
        {
            "symbol": [1],
            "session_date": ["x"],
            "px_open": [1.0],
            "px_high": [1.0],
            "px_low": [1.0],
            "px_last": [1.0],
            "shares_traded": [1],
        }
    ).write_parquet(buf)
    with pytest.raises(VendorFileError) as err:
        parse_provider_b("prices_b_2024-01-05.parquet", buf.getvalue())
    assert "column 'symbol' is Int64, expected text" in err.value.reason
    assert "session_date: not a YYYY-MM-DD date" in err.value.reason


def test_the_sensor_refuses_a_fifo_and_rereads_content_delivered_again_after_a_replacement(tmp_path):
    """Sensor level: a FIFO named like a delivery is quarantined (never opened); content that was replaced and then
    delivered again (a file completed after a partial upload, say) gets a new run key, not Dagster's dedupe."""
    from alpha_assets.ingestion.sensors import PRICE_KEYS, evaluate_landing
    from resources.landing import LocalVendorLanding

    landing = LocalVendorLanding(root=str(tmp_path / "landing"), quarantine_root=str(tmp_path / "quarantine"))
    folder = tmp_path / "landing" / "prices_a"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "prices_a_2024-01-04.csv")
    path = folder / "prices_a_2024-01-05.csv"
    today = date(2024, 6, 3)

    def deliver(content: bytes, t: float) -> None:
        path.write_bytes(content)
        os.utime(path, (t, t))

    deliver(b"complete", 1_700_000_000)
    first, cursor, quarantined = evaluate_landing("prices_a", landing, None, PRICE_KEYS, today)
    reason = json.loads(
        (tmp_path / "quarantine" / "prices_a" / "prices_a_2024-01-04.csv.reason.json").read_text()
    )
    assert len(quarantined) == 1 and "a FIFO named like a delivery" in reason["reason"]
    assert [r.partition_key for r in first] == ["2024-01-05"]
    deliver(b"compl", 1_700_000_100)  # the vendor rewrites it: half-way
    _, cursor, _ = evaluate_landing("prices_a", landing, cursor, PRICE_KEYS, today)
    deliver(b"complete", 1_700_000_200)  # and completes it: the same bytes as the first time
    again, _, _ = evaluate_landing("prices_a", landing, cursor, PRICE_KEYS, today)
    assert [r.partition_key for r in again] == ["2024-01-05"] and again[0].run_key != first[0].run_key
