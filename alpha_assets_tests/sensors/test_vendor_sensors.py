"""Vendor sensors: run requests and cursor for new, re-delivered, corrected and odd files."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, MetadataValue, build_sensor_context

from alpha_assets.ingestion.sensors import evaluate_landing, make_vendor_sensor, materialized_sources
from resources.landing import LocalVendorLanding, content_fingerprint

TARGET = [AssetKey(["raw", "prices"])]
TODAY = date(2024, 6, 1)


@pytest.fixture
def landing(tmp_path):
    (tmp_path / "landing" / "prices_a").mkdir(parents=True)
    return LocalVendorLanding(root=str(tmp_path / "landing"), quarantine_root=str(tmp_path / "quarantine"))


def _drop(landing, name: str, content: bytes) -> None:
    p = os.path.join(landing.root, "prices_a", name)
    with open(p, "wb") as f:
        f.write(content)
    t = time.time() + 1  # a later delivery has a later mtime even within one clock tick
    os.utime(p, (t, t))


def test_a_new_file_requests_a_run_for_its_trading_date(landing):
    _drop(landing, "prices_a_2024-03-05.csv", b"v1")
    reqs, cursor, q = evaluate_landing("prices_a", landing, None, TARGET, TODAY)
    assert [r.partition_key for r in reqs] == ["2024-03-05"]
    assert reqs[0].asset_selection == TARGET
    assert "prices_a_2024-03-05.csv" in json.loads(cursor) and not q


def test_a_redelivered_identical_file_launches_nothing(landing):
    _drop(landing, "prices_a_2024-03-05.csv", b"v1")
    reqs1, cursor, _ = evaluate_landing("prices_a", landing, None, TARGET, TODAY)
    _drop(landing, "prices_a_2024-03-05.csv", b"v1")  # same bytes, new mtime
    reqs2, cursor2, _ = evaluate_landing("prices_a", landing, cursor, TARGET, TODAY)
    assert reqs2 == []
    # Even without the cursor (lost or reset), the run key is the content's: Dagster would dedupe it.
    reqs3, _, _ = evaluate_landing("prices_a", landing, None, TARGET, TODAY)
    assert reqs3[0].run_key == reqs1[0].run_key


def test_a_corrected_file_reruns_its_day_with_a_new_run_key(landing):
    _drop(landing, "prices_a_2024-03-05.csv", b"v1")
    reqs1, cursor, _ = evaluate_landing("prices_a", landing, None, TARGET, TODAY)
    _drop(landing, "prices_a_2024-03-05.csv", b"v2 corrected")
    reqs2, _, _ = evaluate_landing("prices_a", landing, cursor, TARGET, TODAY)
    assert [r.partition_key for r in reqs2] == ["2024-03-05"]
    assert reqs2[0].run_key != reqs1[0].run_key


def test_odd_names_weekends_and_future_dates_are_quarantined_with_a_reason(landing):
    _drop(landing, "prices_a_latest.csv", b"x")
    _drop(landing, "prices_a_2024-03-09.csv", b"x")  # a Saturday
    _drop(landing, "prices_a_2024-07-01.csv", b"x")  # after TODAY
    reqs, cursor, q = evaluate_landing("prices_a", landing, None, TARGET, TODAY)
    assert reqs == [] and len(q) == 3 and json.loads(cursor) == {}
    reasons = {os.path.basename(p): json.loads(Path(p + ".reason.json").read_text())["reason"] for p in q}
    assert "no YYYY-MM-DD" in reasons["prices_a_latest.csv"]
    assert "not a trading session" in reasons["prices_a_2024-03-09.csv"]
    assert "future" in reasons["prices_a_2024-07-01.csv"]
    assert not os.listdir(os.path.join(landing.root, "prices_a"))


def test_the_sensor_definition_evaluates_with_a_cursor(landing):
    _drop(landing, "prices_a_2024-03-05.csv", b"v1")
    sensor_def = make_vendor_sensor("prices_a", TARGET)
    ctx = build_sensor_context(
        cursor=json.dumps({}), resources={"landing": landing}, instance=DagsterInstance.ephemeral()
    )
    result = sensor_def(ctx)
    assert [r.partition_key for r in result.run_requests] == ["2024-03-05"]
    assert "prices_a_2024-03-05.csv" in json.loads(result.cursor)


def _report(instance, key: AssetKey, partition: str, sources: dict[str, bytes]) -> None:
    """A materialization as the vendor assets report it (any path: demo, CLI, UI backfill, sensor)."""
    fingerprints = {name: content_fingerprint(data) for name, data in sources.items()}
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=key,
            partition=partition,
            metadata={"source_fingerprints": MetadataValue.json(fingerprints)},
        )
    )


def test_files_a_partition_was_already_materialized_from_launch_nothing_without_a_cursor(landing):
    instance = DagsterInstance.ephemeral()
    _drop(landing, "prices_a_2024-03-05.csv", b"v1")
    _drop(landing, "prices_a_2024-03-06.csv", b"v1")
    _drop(landing, "prices_a_2024-03-07.csv", b"v1")
    # 03-05 materialized from this content; 03-06 from an older content; 03-07 never.
    _report(instance, TARGET[0], "2024-03-05", {"prices_a/prices_a_2024-03-05.csv": b"v1"})
    _report(instance, TARGET[0], "2024-03-06", {"prices_a/prices_a_2024-03-06.csv": b"v0"})
    sensor_def = make_vendor_sensor("prices_a", TARGET)
    ctx = build_sensor_context(cursor=None, resources={"landing": landing}, instance=instance)

    result = sensor_def(ctx)

    assert [r.partition_key for r in result.run_requests] == ["2024-03-06", "2024-03-07"]
    # All three are in the cursor: the next tick lists them as seen.
    assert len(json.loads(result.cursor)) == 3


def test_a_range_run_records_every_day_and_the_latest_materialization_decides(landing):
    instance = DagsterInstance.ephemeral()
    sources = {"prices_a/prices_a_2024-03-05.csv": b"v1", "prices_a/prices_a_2024-03-06.csv": b"v1"}
    for day in ("2024-03-05", "2024-03-06"):  # a single-run backfill reports the same metadata per partition
        _report(instance, TARGET[0], day, sources)
    _report(instance, TARGET[0], "2024-03-06", {"prices_a/prices_a_2024-03-06.csv": b"v2"})  # a later re-run

    recorded = materialized_sources(instance, TARGET, ["2024-03-05", "2024-03-06", "2024-03-07"])

    assert recorded["2024-03-05"]["prices_a/prices_a_2024-03-05.csv"] == content_fingerprint(b"v1")
    assert recorded["2024-03-06"] == {"prices_a/prices_a_2024-03-06.csv": content_fingerprint(b"v2")}
    assert "2024-03-07" not in recorded
