"""The alert sensors on a real (ephemeral) Dagster instance, delivering to local receivers: a failed run, a failed
blocking check, and the monitoring rules (IC drop, drift, stale publication) with their de-duplication."""

from __future__ import annotations

import json

import polars as pl
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    DagsterInstance,
    Output,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    job,
    materialize,
    op,
)

from alpha_assets.monitoring import alerts
from alpha_assets.monitoring.alert_sensors import blocking_check_alert, monitoring_alert, run_failure_alert
from alpha_assets_tests.monitoring.receivers import SMTPReceiver, WebhookReceiver, configure_alerts

ALERT_ENV = (
    "ALPHA_ALERT_WEBHOOK_URL",
    "ALPHA_ALERT_SMTP_HOST",
    "ALPHA_ALERT_SMTP_PORT",
    "ALPHA_ALERT_EMAIL_TO",
    "ALPHA_ALERT_EMAIL_FROM",
    "ALPHA_ALERT_STALE_HOURS",
    "ALPHA_ALERT_STALE_SESSIONS",
    "ALPHA_ALERT_IC_STATUS",
)


@pytest.fixture
def receivers(monkeypatch):
    """Webhook and SMTP receivers, configured as the alert destinations."""
    monkeypatch.setattr(alerts, "RETRY_PAUSE_SECONDS", 0.0)
    for var in ALERT_ENV:
        monkeypatch.delenv(var, raising=False)
    with WebhookReceiver() as hook, SMTPReceiver() as smtp:
        configure_alerts(monkeypatch, hook, smtp)
        yield hook, smtp


@op
def load_prices():
    return 1


@op
def explode(x):
    raise RuntimeError(f"vendor file truncated after {x} rows")


@job
def nightly_prices():
    explode(load_prices())


def _failed_run_context(instance):
    result = nightly_prices.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result, build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    ).for_run_failure()


def test_run_failure_alert_names_job_run_and_failed_step(receivers):
    hook, smtp = receivers
    instance = DagsterInstance.ephemeral()
    result, context = _failed_run_context(instance)
    run_failure_alert(context)

    (posted,) = hook.received
    text = posted["text"]
    assert "nightly_prices" in text and result.run_id in text
    assert "- explode: " in text and "vendor file truncated after 1 rows" in text
    assert "load_prices" not in text  # it succeeded
    (mail,) = smtp.received
    assert mail["message"]["Subject"] == "alpha-assets: run of job nightly_prices failed"
    assert result.run_id in mail["message"].get_content()


def test_alert_sensors_do_nothing_without_a_destination(monkeypatch, tmp_path):
    for var in ALERT_ENV:
        monkeypatch.delenv(var, raising=False)
    instance = DagsterInstance.ephemeral()
    _, context = _failed_run_context(instance)
    out = run_failure_alert(context)
    assert isinstance(out, SkipReason) and "no alert destination configured" in out.skip_message
    out = blocking_check_alert(build_sensor_context(instance=instance))
    assert isinstance(out, SkipReason) and "no alert destination configured" in out.skip_message
    from resources.lake_resource import DeltaLakeResource

    out = monitoring_alert(
        build_sensor_context(
            instance=instance, resources={"lake_store": DeltaLakeResource(lake_root=str(tmp_path))}
        )
    )
    assert isinstance(out, SkipReason) and "no alert destination configured" in out.skip_message


@asset(
    check_specs=[
        AssetCheckSpec("prices_valid", asset="checked_prices", blocking=True),
        AssetCheckSpec("prices_sparse", asset="checked_prices"),
    ]
)
def checked_prices():
    yield Output(1)
    yield AssetCheckResult(check_name="prices_sparse", passed=False, description="advisory only")
    yield AssetCheckResult(
        check_name="prices_valid",
        passed=False,
        description="3 rows with a negative close",
        metadata={"bad_rows": 3},
    )


@asset(check_specs=[AssetCheckSpec("fine", asset="other_prices", blocking=True)])
def other_prices():
    yield Output(2)
    yield AssetCheckResult(check_name="fine", passed=True)


def test_blocking_check_alert_sends_each_failed_blocking_check_once(receivers):
    hook, smtp = receivers
    instance = DagsterInstance.ephemeral()
    materialize([other_prices], instance=instance)  # history before the sensor starts: not sent
    context = build_sensor_context(instance=instance)
    assert isinstance(blocking_check_alert(context), SkipReason)
    cursor = context.cursor
    assert cursor is not None

    result = materialize([checked_prices, other_prices], instance=instance, raise_on_error=False)
    context = build_sensor_context(instance=instance, cursor=cursor)
    blocking_check_alert(context)
    (posted,) = hook.received  # the failed blocking check only: not the advisory one, not the passing one
    assert "checked_prices:prices_valid" in posted["text"] and result.run_id in posted["text"]
    assert "3 rows with a negative close" in posted["text"] and "bad_rows: 3" in posted["text"]
    assert "prices_sparse" not in posted["text"]
    assert (
        smtp.received[0]["message"]["Subject"]
        == "alpha-assets: blocking check checked_prices:prices_valid failed"
    )

    again = build_sensor_context(instance=instance, cursor=context.cursor)
    assert isinstance(blocking_check_alert(again), SkipReason)  # the next tick sends nothing new
    assert len(hook.received) == 1 and len(smtp.received) == 1


def _world(tmp_path, monkeypatch, *, drift_psi: float, lake_ahead: int, status: str = "retrain"):
    """A serving store of 3 published sessions, and a lake whose monitoring rows and book say what the test asks."""
    from alpha_assets.serving import store
    from alpha_assets_tests.serving.synthetic import business_days, fill_store
    from resources.lake import DeltaLake

    url = f"sqlite:///{tmp_path / 'serving' / 'serving.db'}"
    monkeypatch.setenv("ALPHA_SERVING_URL", url)
    if not (tmp_path / "serving" / "serving.db").exists():
        fill_store(store.serving_engine(url), names=6, days=3, seed=3)
    days = business_days(3 + lake_ahead)
    newest = days[2]
    lake = DeltaLake(tmp_path / "lake")
    # the window replaces what an earlier call wrote
    lake.write_window(
        "portfolio",
        "target_weights",
        pl.DataFrame({"trade_date": days, "ticker": "A", "weight": 0.1}),
        days[0],
        business_days(20)[-1],
    )
    health = pl.DataFrame(
        [
            {
                "trade_date": newest,
                "model": "ensemble",
                "recipe": "fusion",
                "champion": True,
                "ic_1": 0.004,
                "n_sessions": 30,
                "ic_se": 0.01,
                "reference_ic": 0.05,
                "reference_se": 0.006,
                "z_stat": -3.9,
                "p_value": 0.0002,
                "status": status,
            },
            {
                "trade_date": newest,
                "model": "ensemble",
                "recipe": "base",
                "champion": False,
                "ic_1": -0.02,
                "n_sessions": 30,
                "ic_se": 0.01,
                "reference_ic": 0.05,
                "reference_se": 0.006,
                "z_stat": -6.0,
                "p_value": 0.0,
                "status": "retrain",
            },  # not the champion: not alerted
        ]
    )
    lake.write_window("monitoring", "model_health", health, newest, newest)
    drift = pl.DataFrame(
        {
            "trade_date": [newest, newest],
            "block": "2024Q1",
            "feature": ["tank_fill__z60", "ret_5"],
            "psi": [drift_psi, 0.05],
            "drift": [drift_psi > 0.2, False],
        }
    )
    lake.write_window("monitoring", "feature_drift", drift, newest, newest)
    return lake, newest


def test_monitoring_alert_ic_drop_drift_and_stale_publication_each_sent_once(
    receivers, tmp_path, monkeypatch
):
    from resources.lake_resource import DeltaLakeResource

    hook, smtp = receivers
    lake, newest = _world(tmp_path, monkeypatch, drift_psi=0.37, lake_ahead=3)
    resources = {"lake_store": DeltaLakeResource(lake_root=lake.root)}
    instance = DagsterInstance.ephemeral()

    context = build_sensor_context(instance=instance, resources=resources)
    monitoring_alert(context)
    texts = sorted(r["text"] for r in hook.received)
    assert len(texts) == 3 and len(smtp.received) == 3
    by_kind = {
        k: [t for t in texts if t.startswith(f"*alpha-assets: {k}")]
        for k in ("IC drop", "feature drift", "stale")
    }
    (ic_text,), (drift_text,), (stale_text,) = by_kind.values()
    assert (
        "ensemble/fusion" in ic_text
        and "retrain" in ic_text
        and "+0.0040" in ic_text
        and "+0.0500" in ic_text
    )
    assert "ensemble/base" not in "".join(texts)
    assert "tank_fill__z60" in drift_text and "PSI 0.370" in drift_text and "ret_5" not in drift_text
    assert f"newest day is {newest}" in stale_text and "3 sessions behind" in stale_text
    assert json.loads(context.cursor) == ["drift|tank_fill__z60", "ic|ensemble/fusion", f"stale|{newest}"]

    # the next tick, nothing changed: nothing resent
    context = build_sensor_context(instance=instance, resources=resources, cursor=context.cursor)
    out = monitoring_alert(context)
    assert isinstance(out, SkipReason) and "3 active alert(s), all sent before" in out.skip_message
    assert len(hook.received) == 3

    # drift clears (and the book is published up to date): forgotten; when drift comes back it is sent again
    _world(tmp_path, monkeypatch, drift_psi=0.1, lake_ahead=0)
    context = build_sensor_context(instance=instance, resources=resources, cursor=context.cursor)
    monitoring_alert(context)
    assert json.loads(context.cursor) == ["ic|ensemble/fusion"] and len(hook.received) == 3
    _world(tmp_path, monkeypatch, drift_psi=0.5, lake_ahead=0)
    context = build_sensor_context(instance=instance, resources=resources, cursor=context.cursor)
    monitoring_alert(context)
    assert len(hook.received) == 4 and "tank_fill__z60" in hook.received[-1]["text"]
    assert "PSI 0.500" in hook.received[-1]["text"]


def test_monitoring_alert_stale_by_hours_and_warn_status(receivers, tmp_path, monkeypatch):
    from resources.lake_resource import DeltaLakeResource

    hook, _ = receivers
    lake, _ = _world(tmp_path, monkeypatch, drift_psi=0.0, lake_ahead=1, status="warn")
    resources = {"lake_store": DeltaLakeResource(lake_root=lake.root)}
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources)
    out = monitoring_alert(context)  # 1 session behind is allowed; 'warn' is not alerted by default
    assert isinstance(out, SkipReason) and out.skip_message == "nothing to alert" and hook.received == []

    monkeypatch.setenv("ALPHA_ALERT_IC_STATUS", "warn")
    monkeypatch.setenv("ALPHA_ALERT_STALE_HOURS", "0")  # published just now, but more than 0 hours is stale
    monitoring_alert(context)
    ic_text, stale_text = sorted(r["text"] for r in hook.received)
    assert ic_text.startswith("*alpha-assets: IC drop on ensemble/fusion (warn)*")
    assert "h ago (allowed 0 h)" in stale_text and "sessions behind" not in stale_text
