"""ALPHA_LOG_FORMAT=json: one JSON object per log line from the platform's loggers, the CLI and the API."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import pytest

from alpha_assets.logging_setup import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    """Each test leaves the root and uvicorn loggers as it found them."""
    names = ("", "uvicorn", "uvicorn.access")
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level, logging.getLogger(n).propagate)
        for n in names
    }
    yield
    for n, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(n)
        lg.handlers, lg.propagate = handlers, propagate
        lg.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_extra_fields():
    out = io.StringIO()
    assert configure_logging("json", stream=out) is True
    log = logging.getLogger("alpha_assets.intake")
    log.info(
        "quarantined %d files", 2, extra={"run_id": "r-1", "asset": "raw/prices", "day": datetime(2024, 1, 2)}
    )
    log.debug("not at INFO")
    try:
        raise ValueError("bad close")
    except ValueError:
        log.exception("prices refused")
    first, second = _lines(out)
    assert first["level"] == "INFO" and first["logger"] == "alpha_assets.intake"
    assert first["message"] == "quarantined 2 files"
    assert (first["run_id"], first["asset"], first["day"]) == ("r-1", "raw/prices", "2024-01-02 00:00:00")
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None  # with its timezone
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: bad close" in second["exc_info"]


def test_configuring_twice_keeps_one_handler_and_text_changes_nothing(monkeypatch):
    out = io.StringIO()
    configure_logging("json", stream=out)
    configure_logging("json", stream=out)
    logging.getLogger("alpha_assets").warning("once")
    assert [r["message"] for r in _lines(out)] == ["once"]

    root = logging.getLogger()
    before = list(root.handlers)
    monkeypatch.delenv("ALPHA_LOG_FORMAT", raising=False)
    assert configure_logging() is False and configure_logging("text") is False
    assert root.handlers == before


def test_bad_format_or_level_is_one_line():
    with pytest.raises(ValueError, match=r"^ALPHA_LOG_FORMAT='yaml': give one of text, json$"):
        configure_logging("yaml")
    with pytest.raises(ValueError, match=r"^ALPHA_LOG_LEVEL='LOUD': give DEBUG, INFO"):
        configure_logging("json", level="loud")


def test_uvicorn_access_records_become_fields():
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/api/risk", "1.1", 200
    )
    (line,) = _lines(out)
    assert (
        line["logger"] == "uvicorn.access"
        and line["message"] == '127.0.0.1:5000 - "GET /api/risk HTTP/1.1" 200'
    )
    assert (line["client"], line["method"], line["path"], line["status"]) == (
        "127.0.0.1:5000",
        "GET",
        "/api/risk",
        200,
    )


def test_the_api_switches_to_json_at_startup(monkeypatch, capsys, tmp_path):
    from fastapi.testclient import TestClient

    from alpha_assets.serving.api import create_app

    monkeypatch.setenv("ALPHA_LOG_FORMAT", "json")
    app = create_app(f"sqlite:///{tmp_path / 'serving.db'}", token="", access_log="")
    with TestClient(app) as client:  # startup: after uvicorn (when there is one) configured its loggers
        assert client.get("/api/health").json()["status"] == "empty"
        logging.getLogger("uvicorn.error").error("worker restarted")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert any(x["logger"] == "uvicorn.error" and x["message"] == "worker restarted" for x in lines)


def test_the_cli_applies_it_and_refuses_a_bad_value_in_one_line(monkeypatch, capsys):
    from alpha_assets import cli

    monkeypatch.setenv("ALPHA_LOG_FORMAT", "xml")
    assert cli.main(["tables"]) == 2
    assert capsys.readouterr().err.strip() == "alpha tables: ALPHA_LOG_FORMAT='xml': give one of text, json"
