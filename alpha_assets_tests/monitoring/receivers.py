"""Local alert receivers for the tests: a webhook (HTTP on 127.0.0.1) and an SMTP server (a minimal one written
here: ``smtpd`` is gone in Python 3.12 and aiosmtpd is not installed), each on a free port, each run in a thread
and keeping what it received."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alpha_assets_tests.ports import free_port

ALERT_PORTS = range(18700, 18800)


class _Served:
    """A server (``self.server``) run by a thread (``self.thread``) for the duration of a ``with`` block."""

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class WebhookReceiver(_Served):
    """POSTs to ``url`` are kept as parsed JSON in ``received``. ``fail_first``: that many requests get a 503
    first (the sender's retry is tested with it)."""

    def __init__(self, fail_first: int = 0):
        self.received: list[dict] = []
        self.attempts = 0
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(
                    {"content_type": self.headers.get("Content-Type"), **json.loads(body)}
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port(ALERT_PORTS, shuffle=True)), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed), RSET, NOOP, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        sender, rcpts = None, []
        self.reply("220 127.0.0.1 test SMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").strip()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 127.0.0.1")
            elif verb == "MAIL":
                sender, rcpts = cmd.split(":", 1)[1].strip().strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                data = []
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                msg = message_from_bytes(b"".join(data), policy=policy.default)
                self.server.received.append({"from": sender, "to": rcpts, "message": msg})
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class SMTPReceiver(_Served):
    """An SMTP server on 127.0.0.1 (``host``, ``port``); messages kept in ``received`` ({from, to, message})."""

    def __init__(self):
        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", free_port(ALERT_PORTS, shuffle=True)), _SMTPHandler)
        self.server.received = []
        self.host, self.port = "127.0.0.1", self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def received(self) -> list[dict]:
        return self.server.received


def closed_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure_alerts(monkeypatch, hook: WebhookReceiver, smtp: SMTPReceiver) -> None:
    """Point the alert settings (environment) at the local receivers."""
    monkeypatch.setenv("ALPHA_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("ALPHA_ALERT_SMTP_HOST", smtp.host)
    monkeypatch.setenv("ALPHA_ALERT_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("ALPHA_ALERT_EMAIL_TO", "pm@fund.test")
    monkeypatch.setenv("ALPHA_ALERT_EMAIL_FROM", "alpha@fund.test")
