"""Each alt-data landing prefix has its sensor: image folders and dated documents map to their trading day."""

from __future__ import annotations

import json
from datetime import date

from dagster import AssetKey

from alpha_assets.definitions import build_definitions
from alpha_assets.ingestion.sensors import VENDOR_TARGETS, evaluate_landing
from resources.landing import LocalVendorLanding

TODAY = date(2024, 6, 1)


def _landing(tmp_path) -> LocalVendorLanding:
    return LocalVendorLanding(root=str(tmp_path / "landing"), quarantine_root=str(tmp_path / "quarantine"))


def _put(tmp_path, rel: str, data: bytes = b"x") -> None:
    p = tmp_path / "landing" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def test_every_alt_prefix_has_a_running_sensor_targeting_its_assets() -> None:
    defs = build_definitions()
    sensors = {s.name: s for s in defs.sensors}
    for prefix in ("parking", "tanks", "transcripts", "filings"):
        assert f"{prefix}_landing_sensor" in sensors
    assert VENDOR_TARGETS["parking"] == [
        AssetKey(["raw", "parking_lot_images"]),
        AssetKey(["raw", "parking_lot_counts"]),
    ]
    assert VENDOR_TARGETS["transcripts"] == [AssetKey(["raw", "call_sentiment"])]
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    for targets in VENDOR_TARGETS.values():
        assert set(targets) <= keys


def test_an_image_folder_requests_one_run_for_its_day_and_a_redelivery_none(tmp_path) -> None:
    landing = _landing(tmp_path)
    for store in ("S1", "S2"):
        _put(tmp_path, f"parking/2024-03-05/{store}.png", store.encode())
        _put(tmp_path, f"parking/2024-03-05/{store}.json", b"{}")
    _put(tmp_path, "parking/2024-03-06/S1.png")
    reqs, cursor, quarantined = evaluate_landing("parking", landing, None, VENDOR_TARGETS["parking"], TODAY)
    assert sorted(r.partition_key for r in reqs) == ["2024-03-05", "2024-03-06"]
    assert all(r.asset_selection == VENDOR_TARGETS["parking"] for r in reqs) and not quarantined
    assert "2024-03-05/S1.png" in json.loads(cursor)
    again, _, _ = evaluate_landing("parking", landing, cursor, VENDOR_TARGETS["parking"], TODAY)
    assert again == []
    _put(tmp_path, "parking/2024-03-05/S2.png", b"corrected")  # a corrected image re-runs its day
    fixed, _, _ = evaluate_landing("parking", landing, cursor, VENDOR_TARGETS["parking"], TODAY)
    assert [r.partition_key for r in fixed] == ["2024-03-05"]


def test_undated_weekend_and_future_alt_files_are_quarantined_with_a_reason(tmp_path) -> None:
    landing = _landing(tmp_path)
    _put(tmp_path, "transcripts/AAA_latest.txt")
    _put(tmp_path, "transcripts/AAA_2024-03-09.txt")  # a Saturday
    _put(tmp_path, "transcripts/AAA_2024-07-01.txt")  # after TODAY
    _put(tmp_path, "transcripts/AAA_2024-03-05.txt")
    reqs, _, quarantined = evaluate_landing(
        "transcripts", landing, None, VENDOR_TARGETS["transcripts"], TODAY
    )
    assert [r.partition_key for r in reqs] == ["2024-03-05"]
    assert len(quarantined) == 3
    reasons = {
        p.name: json.loads(p.read_text())["reason"]
        for p in (tmp_path / "quarantine" / "transcripts").glob("*.reason.json")
    }
    assert "no YYYY-MM-DD" in reasons["AAA_latest.txt.reason.json"]
    assert "not a trading session" in reasons["AAA_2024-03-09.txt.reason.json"]
    assert "in the future" in reasons["AAA_2024-07-01.txt.reason.json"]
    assert (tmp_path / "landing" / "transcripts" / "AAA_2024-03-05.txt").exists()
