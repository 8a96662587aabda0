"""One rule decides which landed files are deliveries (issue 9 #4); one rule keeps earlier rows on a re-run; every
vendor asset reports the fingerprints of the files its partition was built from."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from dagster import AssetKey

from alpha_assets.lib.ingestion.deliveries import (
    Delivery,
    Rejection,
    classify,
    keep_earlier_rows,
    split_deliveries,
)
from resources.landing import LocalVendorLanding

PRICES = ["raw/prices", "raw/price_reconciliation"]


@pytest.mark.parametrize(
    "prefix,name,reason",
    [
        ("prices_a", "prices_a_2026-11-30 (copy).csv", "copy"),
        ("prices_a", "..x", "hidden"),
        ("prices_a", ".prices_a_2026-11-30.csv", "hidden"),
        ("prices_b", "prices_b_latest.parquet", "no YYYY-MM-DD"),
        ("prices_a", "prices_a_2026-02-30.csv", "not a calendar date"),
        ("prices_a", "old/prices_a_2026-11-30.csv", "delivery shape"),
        ("prices_a", "prices_a_2026-11-30.csv.bak", "delivery shape"),
        ("transcripts", "zz_2026-11-27.txt", "delivery shape"),
        ("filings", "AAA_8-K_2026-11-27.txt", "delivery shape"),
        ("parking", "2026-11-27/../../etc/passwd", "climbs out"),
        ("parking", "2026-11-27/ST1.jpg", "delivery shape"),
        ("newvendor", "x_2026-11-27.csv", "no delivery rule"),
    ],
)
def test_names_that_are_not_deliveries_are_rejected_with_a_reason(prefix, name, reason):
    got = classify(prefix, name)
    assert isinstance(got, Rejection) and reason in got.reason, got


def test_delivery_names_give_their_date_and_unit():
    assert classify("prices_a", "prices_a_2026-11-30.csv") == Delivery(
        "prices_a", "prices_a_2026-11-30.csv", date(2026, 11, 30), (), {"date": "2026-11-30"}
    )
    f = classify("filings", "BR.A_10-Q_2026-11-27.txt")
    assert isinstance(f, Delivery) and f.key == ("BR.A", "10-Q") and f.trade_date == date(2026, 11, 27)
    assert classify("parking", "2026-11-27/ST0001.json") is None  # a sidecar travels with its image
    assert classify("tanks", "2026-11-27/F1.png").key == ("F1",)
    assert isinstance(classify("prices_a", "x", outside_zone=True), Rejection)


def test_in_flight_uploads_are_neither_deliveries_nor_rejected():
    good, bad = split_deliveries("prices_a", ["prices_a_2026-11-30.csv.tmp", "prices_a_2026-11-30.csv"])
    assert [g.name for g in good] == ["prices_a_2026-11-30.csv"] and bad == []


def test_a_rerun_keeps_the_rows_of_units_it_could_not_read_and_replaces_the_rest():
    old = pl.DataFrame(
        {
            "trade_date": [date(2024, 1, 2)] * 2 + [date(2024, 1, 3)],
            "ticker": ["A", "B", "A"],
            "v": [1.0, 2.0, 3.0],
        }
    )
    new = pl.DataFrame({"trade_date": [date(2024, 1, 2)], "ticker": ["A"], "v": [9.0]})
    rows, kept = keep_earlier_rows(new, old, on=["trade_date", "ticker"])
    assert kept == 2 and sorted(rows["v"].to_list()) == [2.0, 3.0, 9.0]
    # a unit read again that yields no rows (an image without tanks) replaces its old rows by nothing
    covered = pl.DataFrame({"trade_date": [date(2024, 1, 3)], "ticker": ["A"]})
    rows, kept = keep_earlier_rows(new.clear(), old, on=["trade_date", "ticker"], covered=covered)
    assert kept == 2 and sorted(rows["v"].to_list()) == [1.0, 2.0]


def test_landing_lists_hidden_files_and_flags_symlinks_leaving_the_zone(tmp_path):
    root = tmp_path / "landing"
    (root / "prices_a").mkdir(parents=True)
    (root / "prices_a" / "..x").write_text("x")
    (root / "prices_a" / "prices_a_2024-01-02.csv.tmp").write_text("x")
    secret = tmp_path / "secret.csv"
    secret.write_text("password")
    (root / "prices_a" / "prices_a_2024-01-03.csv").symlink_to(secret)
    landing = LocalVendorLanding(root=str(root), quarantine_root=str(tmp_path / "q"))
    files = {f.name: f for f in landing.list_files("prefix_missing")} | {
        f.name: f for f in landing.list_files("prices_a")
    }
    assert set(files) == {"..x", "prices_a_2024-01-03.csv"}
    assert (
        files["prices_a_2024-01-03.csv"].outside_zone and files["prices_a_2024-01-03.csv"].fingerprint == ""
    )
    # quarantine moves the link, never the target, and cannot climb out of the quarantine folder
    dest = landing.quarantine("prices_a", "prices_a_2024-01-03.csv", "symlink")
    assert secret.read_text() == "password" and dest.startswith(str(tmp_path / "q"))
    assert landing.quarantine_bytes("web", "../../evil.html", b"x", "r").startswith(
        str(tmp_path / "q" / "web")
    )


def _reasons(home) -> dict[str, str]:
    return {
        json.loads(p.read_text())["file"]: json.loads(p.read_text())["reason"]
        for p in home.quarantine.rglob("*.reason.json")
    }


def test_a_stray_copy_a_hidden_file_and_an_undated_file_never_demote_a_good_day(home, instance):
    """Issue 9 #4: `prices_a_<d> (copy).csv` (bad) used to count as the newest A delivery and push the day to B."""
    from alpha_assets.app.runs import materialize
    from alpha_assets_tests.conftest import WORLD_START
    from partitions.calendar import sessions_from
    from resources.lake import DeltaLake

    d = sessions_from(WORLD_START, 40)[3]
    a_dir, b_dir = home.landing / "prices_a", home.landing / "prices_b"
    (a_dir / f"prices_a_{d} (copy).csv").write_bytes(b"\x00garbage")
    (a_dir / "..x").write_text("hidden")
    (b_dir / "prices_b_latest.parquet").write_bytes((b_dir / f"prices_b_{d}.parquet").read_bytes())
    res = materialize(home, d, d, select=PRICES, quiet=True, instance=instance, job_name="daily_data")
    assert res["success"]
    rows = DeltaLake(home.lake).read("raw", "prices", d, d)
    assert rows.height > 0 and rows["source"].unique().to_list() == ["A"]
    reasons = _reasons(home)
    assert set(reasons) == {
        f"prices_a/prices_a_{d} (copy).csv",
        "prices_a/..x",
        "prices_b/prices_b_latest.parquet",
    }
    assert "copy" in reasons[f"prices_a/prices_a_{d} (copy).csv"] and "hidden" in reasons["prices_a/..x"]
    assert "no YYYY-MM-DD" in reasons["prices_b/prices_b_latest.parquet"]
    assert (a_dir / f"prices_a_{d}.csv").exists()  # the valid A file stays where it was

    meta = instance.get_latest_materialization_event(
        AssetKey(["raw", "prices"])
    ).asset_materialization.metadata
    fingerprints = meta["source_fingerprints"].value
    landing = LocalVendorLanding(root=str(home.landing), quarantine_root=str(home.quarantine))
    listed = {
        f"{f.prefix}/{f.name}": f.fingerprint for p in ("prices_a", "prices_b") for f in landing.list_files(p)
    }
    assert fingerprints == {
        k: listed[k] for k in (f"prices_a/prices_a_{d}.csv", f"prices_b/prices_b_{d}.parquet")
    }
    assert len(meta["quarantined"].value) == 3


def test_a_source_counts_for_the_partition_of_its_own_date():
    from alpha_assets.intake import _delivery_day, fingerprints_by_partition

    fps = {
        "prices_a/prices_a_2026-11-30.csv": "a30",
        "prices_b/prices_b_2026-12-01.parquet": "b01",
        "parking/2026-12-01/ST1.png": "img",
        "parking/2026-12-01/ST1.json": "sidecar",  # a companion: the date in its name
        "reference/universe_2026-11-27.csv": "carried",  # read for the window but dated before it
    }
    out = fingerprints_by_partition(fps, ["2026-11-30", "2026-12-01"], _delivery_day)
    assert out == {
        "2026-11-30": {
            "prices_a/prices_a_2026-11-30.csv": "a30",
            "reference/universe_2026-11-27.csv": "carried",
        },
        "2026-12-01": {
            "parking/2026-12-01/ST1.json": "sidecar",
            "parking/2026-12-01/ST1.png": "img",
            "prices_b/prices_b_2026-12-01.parquet": "b01",
            "reference/universe_2026-11-27.csv": "carried",
        },
    }


def test_a_range_run_records_on_each_day_the_files_of_that_day(home, instance):
    """A range run used to copy the whole window's fingerprints onto every partition's event (O(days x files) of
    event log: 100 MB per vendor asset for the demo's 504 sessions); each day now carries its own files, which is
    what the landing sensors compare (test_vendor_sensors)."""
    from dagster import AssetRecordsFilter

    from alpha_assets.app.runs import materialize
    from alpha_assets_tests.conftest import WORLD_START
    from partitions.calendar import sessions_from

    days = sessions_from(WORLD_START, 40)[3:6]
    res = materialize(
        home, days[0], days[-1], select=PRICES, quiet=True, instance=instance, job_name="daily_data"
    )
    assert res["success"]
    landing = LocalVendorLanding(root=str(home.landing), quarantine_root=str(home.quarantine))
    listed = {
        f"{f.prefix}/{f.name}": f.fingerprint for p in ("prices_a", "prices_b") for f in landing.list_files(p)
    }
    for key in (AssetKey(["raw", "prices"]), AssetKey(["raw", "price_reconciliation"])):
        for d in days:
            (rec,) = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, asset_partitions=[d.isoformat()]), limit=5
            ).records
            recorded = rec.asset_materialization.metadata["source_fingerprints"].value
            mine = {k: v for k, v in listed.items() if str(d) in k}
            assert recorded == mine and len(mine) >= 1, (key, d)
