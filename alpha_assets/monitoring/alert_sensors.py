"""The alert sensors: what is worth telling someone, delivered by ``monitoring/alerts.py`` (webhook and/or e-mail).

- ``run_failure_alert``: every failed run (any job of the code location), naming the job, the run id and the
  steps that failed with their errors. Dagster's run-status cursor sends each failure once.
- ``blocking_check_alert``: every failed *blocking* asset check (the evaluation events of the instance, read
  after the sensor's cursor: each sent once; on its first tick the sensor starts from the newest event).
- ``monitoring_alert``: rules over the monitoring outputs, each alert sent when its condition starts (the cursor
  keeps the active conditions; one that clears and comes back is sent again):
  IC drop: a champion row of the newest ``monitoring.model_health`` day whose status is ``retrain`` (its live IC
  below the out-of-sample reference, one-sided p < 1%; ``ALPHA_ALERT_IC_STATUS=warn`` also alerts at p < 5%);
  drift: a feature of the newest ``monitoring.feature_drift`` day whose PSI is above the drift threshold (0.2);
  stale publication: the serving store's newest day more than ``ALPHA_ALERT_STALE_SESSIONS`` (default 1)
  sessions behind the lake's book (``portfolio/target_weights``), or, with ``ALPHA_ALERT_STALE_HOURS`` set, its
  last publication older than that.

They only send messages (no run is ever launched), so they run by default; with no destination configured
(``ALPHA_ALERT_WEBHOOK_URL`` / ``ALPHA_ALERT_SMTP_HOST`` + ``ALPHA_ALERT_EMAIL_TO``) they skip quietly.
"""

from __future__ import annotations

import json
import os
import time

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    EventRecordsFilter,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from alpha_assets.monitoring.alerts import AlertConfig, deliver
from resources.lake_resource import DeltaLakeResource

NO_DESTINATION = "no alert destination configured (ALPHA_ALERT_WEBHOOK_URL, or ALPHA_ALERT_SMTP_HOST and ALPHA_ALERT_EMAIL_TO)"
CHECK_EVENTS_PER_TICK = 500
STEP_ERROR_CHARS = 300


def _short(text: str, n: int = STEP_ERROR_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


# --------------------------------------------------------------------------------------------- run failures
def _root_cause(error) -> str:
    """The innermost error of a step failure ('RuntimeError: ...', not Dagster's wrapper around it)."""
    if error is None:
        return ""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return (error.message or "").strip()


def run_failure_message(
    job: str, run_id: str, failed_steps: list[tuple[str, str]], reason: str = ""
) -> tuple[str, str]:
    """(subject, text) of a failed run: the job, the run id and each failed step with its error."""
    subject = f"alpha-assets: run of job {job} failed"
    lines = [f"Job {job} failed (run {run_id})."]
    if failed_steps:
        lines.append("Failed steps:")
        lines += [f"- {step}: {_short(err)}" if err else f"- {step}" for step, err in failed_steps]
    elif reason:
        lines.append(_short(reason))
    return subject, "\n".join(lines)


@run_failure_sensor(
    name="run_failure_alert",
    monitor_all_code_locations=False,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends an alert (webhook / e-mail) for every failed run: job, run id, failed steps.",
)
def run_failure_alert(context: RunFailureSensorContext):
    config = AlertConfig.from_env()
    if not config.any:
        return SkipReason(NO_DESTINATION)
    run = context.dagster_run
    steps = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        err = _root_cause(data.error) if data is not None else ""
        steps.append((event.step_key or "?", err))
    reason = context.failure_event.message or ""
    subject, text = run_failure_message(run.job_name, run.run_id, steps, reason)
    sent = deliver(subject, text, config)
    context.log.info(f"run failure of {run.job_name} ({run.run_id}) sent to {', '.join(sent)}")


# ------------------------------------------------------------------------------------- failed blocking checks
def check_message(
    asset: str, check: str, run_id: str, description: str | None, metadata: dict
) -> tuple[str, str]:
    subject = f"alpha-assets: blocking check {asset}:{check} failed"
    lines = [
        f"The blocking check {check} on {asset} failed (run {run_id}): nothing downstream of it was written."
    ]
    if description:
        lines.append(_short(description))
    for k, v in list(metadata.items())[:8]:
        lines.append(f"- {k}: {_short(getattr(v, 'value', v), 200)}")
    return subject, "\n".join(lines)


@sensor(
    name="blocking_check_alert",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends an alert (webhook / e-mail) for every failed blocking asset check.",
)
def blocking_check_alert(context: SensorEvaluationContext):
    config = AlertConfig.from_env()
    if not config.any:
        return SkipReason(NO_DESTINATION)
    storage = context.instance.event_log_storage
    kind = DagsterEventType.ASSET_CHECK_EVALUATION
    if context.cursor is None:  # first tick: from now on (the history is not re-sent)
        newest = storage.get_event_records(EventRecordsFilter(event_type=kind), limit=1, ascending=False)
        context.update_cursor(str(newest[0].storage_id if newest else 0))
        return SkipReason("blocking-check alerts start from the newest check evaluation")
    after = int(context.cursor)
    records = storage.get_event_records(
        EventRecordsFilter(event_type=kind, after_cursor=after), limit=CHECK_EVENTS_PER_TICK, ascending=True
    )
    sent = 0
    for rec in records:
        evaluation = rec.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.blocking:
            subject, text = check_message(
                evaluation.asset_key.to_user_string(),
                evaluation.check_name,
                rec.run_id,
                evaluation.description,
                dict(evaluation.metadata),
            )
            deliver(subject, text, config)
            sent += 1
        context.update_cursor(str(rec.storage_id))  # each sent once, also when a later one fails to send
    if not sent:
        return SkipReason(f"no failed blocking check in {len(records)} new evaluations")
    return None


# ------------------------------------------------------------------------------------------ monitoring rules
def ic_alerts(
    health_rows: list[dict], statuses: tuple[str, ...] = ("retrain",)
) -> dict[str, tuple[str, str]]:
    """key -> (subject, text) for the champion rows of one model_health day whose status is in ``statuses``."""
    out = {}
    for r in health_rows:
        if not r.get("champion") or r.get("status") not in statuses:
            continue
        name = f"{r['model']}/{r['recipe']}"

        def f(v, fmt="+.4f"):
            return "n/a" if v is None else format(float(v), fmt)

        out[f"ic|{name}"] = (
            f"alpha-assets: IC drop on {name} ({r['status']})",
            f"Model {name} (champion) on {r['trade_date']}: live IC {f(r.get('ic_1'))} over {r.get('n_sessions')} "
            f"sessions vs {f(r.get('reference_ic'))} earned out of sample before (se {f(r.get('ic_se'), '.4f')} "
            f"live, {f(r.get('reference_se'), '.4f')} reference; z {f(r.get('z_stat'), '.2f')}, one-sided p "
            f"{f(r.get('p_value'), '.2g')}). model_health says {r['status']}.",
        )
    return out


def drift_alerts(drift_rows: list[dict], threshold: float) -> dict[str, tuple[str, str]]:
    """key -> (subject, text) for each feature of one feature_drift day whose PSI is above ``threshold``."""
    out = {}
    for r in drift_rows:
        psi = r.get("psi")
        if psi is None or not psi > threshold:
            continue
        out[f"drift|{r['feature']}"] = (
            f"alpha-assets: feature drift on {r['feature']}",
            f"Feature {r['feature']} on {r['trade_date']}: PSI {psi:.3f} over the last 20 sessions against the "
            f"model's training window (block {r.get('block')}), above the drift threshold {threshold:g}.",
        )
    return out


def stale_alerts(
    published_day,
    published_at: float | None,
    lake_day,
    now: float,
    max_sessions: int,
    max_hours: float | None,
) -> dict[str, tuple[str, str]]:
    """The stale-publication alert (at most one), keyed by the newest published day."""
    from alpha_assets.serving.metrics import behind_sessions

    behind = behind_sessions(published_day, lake_day)
    reasons = []
    if behind is not None and behind > max_sessions:
        reasons.append(
            f"{behind} sessions behind the lake's book (newest {lake_day}; allowed {max_sessions})"
        )
    if max_hours is not None and published_at is not None and now - published_at > max_hours * 3600:
        reasons.append(f"last published {(now - published_at) / 3600:.1f} h ago (allowed {max_hours:g} h)")
    if not reasons:
        return {}
    return {
        f"stale|{published_day}": (
            "alpha-assets: stale publication",
            f"The serving store's newest day is {published_day}: "
            + "; ".join(reasons)
            + ". Check serving/published.",
        )
    }


def new_alerts(active: dict[str, tuple[str, str]], cursor: str | None) -> dict[str, tuple[str, str]]:
    """The alerts of ``active`` not sent while they have been active (the cursor: the keys sent and still active)."""
    seen = set(json.loads(cursor)) if cursor else set()
    return {k: v for k, v in active.items() if k not in seen}


def next_cursor(active: dict[str, tuple[str, str]], cursor: str | None, sent: set[str]) -> str:
    """The keys sent before and still active, plus those sent now: a condition that clears is forgotten, so it
    is sent again when it comes back."""
    seen = set(json.loads(cursor)) if cursor else set()
    return json.dumps(sorted((seen & set(active)) | sent))


def _env_float(name: str) -> float | None:
    v = os.environ.get(name, "").strip()
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        raise ValueError(f"{name}={v!r}: give a number") from None


@sensor(
    name="monitoring_alert",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends an alert (webhook / e-mail) when the champion's IC drops (model_health says retrain), a "
    "feature drifts (PSI above 0.2) or the serving store's publication falls behind.",
)
def monitoring_alert(context: SensorEvaluationContext, lake_store: DeltaLakeResource):
    from alpha_assets.lib.monitoring.drift import PSI_DRIFT
    from alpha_assets.serving.metrics import newest_partition, newest_rows, publication_state
    from alpha_assets.serving.reader import ServingReader
    from alpha_assets.serving.store import serving_url

    config = AlertConfig.from_env()
    if not config.any:
        return SkipReason(NO_DESTINATION)
    statuses = (
        ("retrain", "warn") if os.environ.get("ALPHA_ALERT_IC_STATUS", "").strip() == "warn" else ("retrain",)
    )
    max_sessions = int(_env_float("ALPHA_ALERT_STALE_SESSIONS") or 1)
    lake = lake_store.lake
    active: dict[str, tuple[str, str]] = {}
    _, health = newest_rows(lake, "monitoring", "model_health")
    active |= ic_alerts(health, statuses)
    _, drift = newest_rows(lake, "monitoring", "feature_drift")
    active |= drift_alerts(drift, PSI_DRIFT)
    pub = publication_state(ServingReader(serving_url()))
    if pub is not None:
        active |= stale_alerts(
            pub["newest_day"],
            pub["published_at"],
            newest_partition(lake, "portfolio", "target_weights"),
            time.time(),
            max_sessions,
            _env_float("ALPHA_ALERT_STALE_HOURS"),
        )
    to_send, sent = new_alerts(active, context.cursor), set()
    try:
        for key, (subject, text) in to_send.items():
            deliver(subject, text, config)
            sent.add(key)
    finally:  # what was delivered is not sent again when a later one failed (that one is retried next tick)
        context.update_cursor(next_cursor(active, context.cursor, sent))
    if not to_send:
        return SkipReason(f"{len(active)} active alert(s), all sent before" if active else "nothing to alert")
    context.log.info(f"sent {len(to_send)} alert(s): {', '.join(sorted(to_send))}")
    return None


ALERT_SENSORS = [run_failure_alert, blocking_check_alert, monitoring_alert]
