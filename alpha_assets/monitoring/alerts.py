"""Alert delivery: a Slack-compatible webhook and e-mail. Pure delivery (no Dagster): the alert sensors
(``monitoring/alert_sensors.py``) decide what to send, this sends it.

Configured by the environment; nothing configured means nothing is sent (and no error):

- ``ALPHA_ALERT_WEBHOOK_URL``: POST ``{"text": ...}`` as JSON (Slack incoming webhooks, Mattermost, Teams'
  Slack-compatible connectors, or any HTTP receiver); a timeout of 10 s and one retry on a connection error, a
  timeout or a 5xx / 429 answer.
- ``ALPHA_ALERT_SMTP_HOST`` (+ ``ALPHA_ALERT_SMTP_PORT``, default 25), ``ALPHA_ALERT_EMAIL_TO`` (comma-separated)
  and ``ALPHA_ALERT_EMAIL_FROM`` (default ``alpha-assets@<hostname>``): a plain-text e-mail through that relay.
  ``ALPHA_ALERT_SMTP_STARTTLS=1`` upgrades the connection, ``ALPHA_ALERT_SMTP_USER`` / ``ALPHA_ALERT_SMTP_PASSWORD``
  log in (after STARTTLS).
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

WEBHOOK_TIMEOUT_SECONDS = 10.0
SMTP_TIMEOUT_SECONDS = 10.0
RETRY_PAUSE_SECONDS = 1.0


class AlertDeliveryError(RuntimeError):
    """An alert could not be delivered (after its retry)."""


@dataclass(frozen=True)
class AlertConfig:
    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    email_to: tuple[str, ...] = ()
    email_from: str = ""
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AlertConfig:
        env = os.environ if env is None else env
        port = env.get("ALPHA_ALERT_SMTP_PORT", "").strip() or "25"
        if not port.isdigit():
            raise ValueError(f"ALPHA_ALERT_SMTP_PORT={port!r}: give a port number")
        return cls(
            webhook_url=env.get("ALPHA_ALERT_WEBHOOK_URL", "").strip(),
            smtp_host=env.get("ALPHA_ALERT_SMTP_HOST", "").strip(),
            smtp_port=int(port),
            email_to=tuple(a.strip() for a in env.get("ALPHA_ALERT_EMAIL_TO", "").split(",") if a.strip()),
            email_from=env.get("ALPHA_ALERT_EMAIL_FROM", "").strip()
            or f"alpha-assets@{socket.gethostname()}",
            smtp_starttls=env.get("ALPHA_ALERT_SMTP_STARTTLS", "").strip().lower() in ("1", "true", "yes"),
            smtp_user=env.get("ALPHA_ALERT_SMTP_USER", "").strip(),
            smtp_password=env.get("ALPHA_ALERT_SMTP_PASSWORD", ""),
        )

    @property
    def email(self) -> bool:
        return bool(self.smtp_host and self.email_to)

    @property
    def any(self) -> bool:
        """Whether any destination is configured."""
        return bool(self.webhook_url) or self.email

    def destinations(self) -> list[str]:
        out = ["webhook"] if self.webhook_url else []
        return out + (["email"] if self.email else [])


def send_webhook(url: str, payload: dict, timeout: float = WEBHOOK_TIMEOUT_SECONDS, retries: int = 1) -> int:
    """POST ``payload`` as JSON to ``url``; returns the HTTP status. Retried ``retries`` times on a connection
    error, a timeout, a 5xx or a 429; a 4xx otherwise is final. Raises AlertDeliveryError naming the URL's host."""
    body = json.dumps(payload).encode()
    host = urllib.request.urlparse(url).netloc or url
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(RETRY_PAUSE_SECONDS)
        req = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "alpha-assets"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
            if e.code < 500 and e.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            last = str(getattr(e, "reason", e))
    raise AlertDeliveryError(f"webhook {host}: not delivered ({last})")


def send_email(
    smtp_host: str,
    port: int,
    sender: str,
    to: str | list[str] | tuple[str, ...],
    subject: str,
    body: str,
    *,
    starttls: bool = False,
    user: str = "",
    password: str = "",
    timeout: float = SMTP_TIMEOUT_SECONDS,
) -> None:
    """Send a plain-text e-mail through the SMTP relay ``smtp_host:port``. Raises AlertDeliveryError."""
    import smtplib
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    recipients = [to] if isinstance(to, str) else list(to)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(recipients), subject
    msg["Date"], msg["Message-ID"] = (
        formatdate(localtime=False, usegmt=True),
        make_msgid(domain="alpha-assets"),
    )
    msg.set_content(body)
    try:
        with smtplib.SMTP(smtp_host, port, timeout=timeout) as smtp:
            if starttls:
                smtp.starttls()
            if user:
                smtp.login(user, password)
            smtp.send_message(msg, from_addr=sender, to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as e:
        raise AlertDeliveryError(f"e-mail via {smtp_host}:{port}: not delivered ({e})") from None


def deliver(subject: str, text: str, config: AlertConfig | None = None) -> list[str]:
    """Send one alert to every configured destination: the webhook gets ``{"text": "*subject*\\ntext"}``, the
    e-mail ``subject`` and ``text``. Returns the destinations it reached; nothing configured: [] and no error.
    Every destination is tried; if any failed, AlertDeliveryError lists them (after the others were sent)."""
    config = AlertConfig.from_env() if config is None else config
    sent, errors = [], []
    if config.webhook_url:
        try:
            send_webhook(config.webhook_url, {"text": f"*{subject}*\n{text}"})
            sent.append("webhook")
        except AlertDeliveryError as e:
            errors.append(str(e))
    if config.email:
        try:
            send_email(
                config.smtp_host,
                config.smtp_port,
                config.email_from,
                config.email_to,
                subject,
                text,
                starttls=config.smtp_starttls,
                user=config.smtp_user,
                password=config.smtp_password,
            )
            sent.append("email")
        except AlertDeliveryError as e:
            errors.append(str(e))
    if errors:
        raise AlertDeliveryError("; ".join(errors) + (f" (delivered to {', '.join(sent)})" if sent else ""))
    return sent
