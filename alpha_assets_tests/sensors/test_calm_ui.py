"""A calm UI (issue 20 #5): opening the UI on an up-to-date home launches nothing.

Every sensor that can launch a run either starts STOPPED (retraining trains, freshness and the automation act on a
timer over history they never saw) or acts only on new evidence: the landing sensors launch a run only for a vendor
file whose content no partition was materialized from, checked here on a real instance over a home the CLI ingested.
The alert sensors stay RUNNING: they send messages and never launch a run."""

from __future__ import annotations

import os
import time

from dagster import AutomationConditionSensorDefinition, DefaultSensorStatus, build_sensor_context

# Sensors that may start RUNNING because they launch runs only for new evidence, each with its test:
NEW_EVIDENCE = {
    # a landing sensor over a home whose files are all ingested: test_landing_sensors_launch_nothing_on_an_ingested_home
    **{
        f"{p}_landing_sensor": "landing"
        for p in ("reference", "prices_a", "prices_b", "parking", "tanks", "transcripts", "filings")
    },
    # a catalogue date already materialized launches nothing (altdata/test_web_assets.py), and without a vendor
    # site configured (ALPHA_WEB_VENDOR_URL, unset under `make ui`) it fetches nothing
    "web_vendor_sensor": "web",
}
NOTIFY_ONLY = {"run_failure_alert", "blocking_check_alert", "monitoring_alert"}  # monitoring/alert_sensors.py
STOPPED = {"downstream_automation", "freshness_checks_sensor", "retraining_sensor"}


def _sensors(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path / "alpha"))
    from alpha_assets.definitions import build_definitions

    return build_definitions().get_repository_def().sensor_defs


def test_every_sensor_that_can_launch_a_run_starts_stopped_or_acts_only_on_new_evidence(
    tmp_path, monkeypatch
):
    sensors = {s.name: s for s in _sensors(tmp_path, monkeypatch)}
    running = {n for n, s in sensors.items() if s.default_status == DefaultSensorStatus.RUNNING}
    assert running <= set(NEW_EVIDENCE) | NOTIFY_ONLY, f"running by default, not known to be calm: {running}"
    assert set(sensors) >= STOPPED and not (STOPPED & running)
    for name in NOTIFY_ONLY:  # no job, no automation: nothing for them to launch
        s = sensors[name]
        assert not s.targets and not isinstance(s, AutomationConditionSensorDefinition), name
    # the landing sensors' new-evidence test below covers every landing prefix the definitions have
    from alpha_assets.ingestion.sensors import VENDOR_TARGETS

    assert {f"{p}_landing_sensor" for p in VENDOR_TARGETS} == {
        n for n, k in NEW_EVIDENCE.items() if k == "landing"
    }


def test_landing_sensors_launch_nothing_on_an_ingested_home(home, instance):
    """The CLI ingested every vendor file: each landing sensor, on its first tick (no cursor) against the instance,
    requests no run and quarantines nothing more; a corrected file then re-runs exactly its day."""
    from alpha_assets.app.runs import materialize
    from alpha_assets.ingestion.sensors import VENDOR_TARGETS, make_vendor_sensor
    from resources.landing import LocalVendorLanding

    res = materialize(
        home,
        select=["raw/universe", "raw/prices"],
        quiet=True,
        instance=instance,
        job_name="daily_data",
        refresh_dependents=False,
    )
    assert res["success"], res
    landing = LocalVendorLanding(root=str(home.landing), quarantine_root=str(home.quarantine))
    quarantined = sorted(p for p in home.quarantine.rglob("*") if p.is_file())  # the world's faulty files
    cursors = {}
    for prefix, targets in VENDOR_TARGETS.items():
        sensor = make_vendor_sensor(prefix, targets)
        result = sensor(build_sensor_context(cursor=None, resources={"landing": landing}, instance=instance))
        assert result.run_requests == [], (prefix, [r.partition_key for r in result.run_requests])
        cursors[prefix] = result.cursor
    assert sorted(p for p in home.quarantine.rglob("*") if p.is_file()) == quarantined  # nothing more
    # new evidence: a corrected delivery of one day launches that day, and only it
    path = sorted((home.landing / "prices_a").glob("prices_a_*.csv"))[-1]
    path.write_bytes(path.read_bytes().rstrip(b"\n") + b"\n\n")
    later = time.time() + 2
    os.utime(path, (later, later))
    sensor = make_vendor_sensor("prices_a", VENDOR_TARGETS["prices_a"])
    ctx = build_sensor_context(cursor=cursors["prices_a"], resources={"landing": landing}, instance=instance)
    day = path.stem.rsplit("_", 1)[-1]
    assert [r.partition_key for r in sensor(ctx).run_requests] == [day]
