"""Alert delivery (``monitoring/alerts.py``) against local receivers: a webhook on 127.0.0.1 and an SMTP server."""

from __future__ import annotations

import pytest

from alpha_assets.monitoring import alerts
from alpha_assets.monitoring.alerts import AlertConfig, AlertDeliveryError, deliver, send_email, send_webhook
from alpha_assets_tests.monitoring.receivers import (
    SMTPReceiver,
    WebhookReceiver,
    closed_port,
    configure_alerts,
)


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch):
    monkeypatch.setattr(alerts, "RETRY_PAUSE_SECONDS", 0.0)


def test_webhook_posts_slack_compatible_json():
    with WebhookReceiver() as hook:
        assert send_webhook(hook.url, {"text": "job main failed"}) == 200
    assert hook.received == [{"content_type": "application/json", "text": "job main failed"}]


def test_webhook_is_retried_once_then_fails_in_one_line():
    with WebhookReceiver(fail_first=1) as hook:
        send_webhook(hook.url, {"text": "after one 503"})
    assert hook.attempts == 2 and [r["text"] for r in hook.received] == ["after one 503"]
    with WebhookReceiver(fail_first=5) as hook, pytest.raises(AlertDeliveryError) as err:
        send_webhook(hook.url, {"text": "never"})
    assert hook.attempts == 2 and hook.received == []
    assert str(err.value) == f"webhook 127.0.0.1:{hook.server.server_address[1]}: not delivered (HTTP 503)"
    with pytest.raises(AlertDeliveryError, match="not delivered"):
        send_webhook(f"http://127.0.0.1:{closed_port()}/x", {"text": "nobody listens"}, timeout=2)


def test_email_reaches_the_smtp_server():
    with SMTPReceiver() as smtp:
        send_email(
            smtp.host,
            smtp.port,
            "alpha@fund.test",
            ["pm@fund.test", "ops@fund.test"],
            "alpha-assets: run of job main failed",
            "Job main failed (run abc).\n- prices: boom",
        )
    (mail,) = smtp.received
    assert mail["from"] == "alpha@fund.test" and mail["to"] == ["pm@fund.test", "ops@fund.test"]
    msg = mail["message"]
    assert msg["Subject"] == "alpha-assets: run of job main failed"
    assert msg["To"] == "pm@fund.test, ops@fund.test"
    assert msg.get_content().replace("\r\n", "\n").strip() == "Job main failed (run abc).\n- prices: boom"
    with pytest.raises(AlertDeliveryError, match=r"e-mail via 127.0.0.1:\d+: not delivered"):
        send_email("127.0.0.1", closed_port(), "a@b", "c@d", "s", "b", timeout=2)


def test_deliver_sends_to_every_configured_destination_and_nothing_without_one(monkeypatch):
    for var in ("ALPHA_ALERT_WEBHOOK_URL", "ALPHA_ALERT_SMTP_HOST", "ALPHA_ALERT_EMAIL_TO"):
        monkeypatch.delenv(var, raising=False)
    assert not AlertConfig.from_env().any
    assert deliver("subject", "text") == []  # nothing configured: nothing sent, no error
    with WebhookReceiver() as hook, SMTPReceiver() as smtp:
        configure_alerts(monkeypatch, hook, smtp)
        assert deliver("Drift on ret_5", "PSI 0.31") == ["webhook", "email"]
    assert [r["text"] for r in hook.received] == ["*Drift on ret_5*\nPSI 0.31"]
    assert smtp.received[0]["message"]["Subject"] == "Drift on ret_5"
    # one destination down: the other still gets it, and the error names the one that failed
    with SMTPReceiver() as smtp:
        config = AlertConfig(
            webhook_url=f"http://127.0.0.1:{closed_port()}/x",
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            email_to=("pm@fund.test",),
            email_from="a@fund.test",
        )
        with pytest.raises(
            AlertDeliveryError, match=r"webhook 127.0.0.1:\d+: not delivered .*\(delivered to email\)"
        ):
            deliver("s", "t", config)
    assert len(smtp.received) == 1


def test_config_from_env_rejects_a_bad_port():
    with pytest.raises(ValueError, match="ALPHA_ALERT_SMTP_PORT='twenty-five': give a port number"):
        AlertConfig.from_env({"ALPHA_ALERT_SMTP_PORT": "twenty-five"})
    c = AlertConfig.from_env({"ALPHA_ALERT_SMTP_HOST": "relay", "ALPHA_ALERT_EMAIL_TO": "a@x, b@x"})
    assert c.email and c.smtp_port == 25 and c.email_to == ("a@x", "b@x") and c.destinations() == ["email"]
