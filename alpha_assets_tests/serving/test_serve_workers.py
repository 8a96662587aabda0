"""`alpha serve-api --workers N`: several uvicorn processes serve the same store (each builds its app from the
environment); a bad worker count is one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from alpha_assets_tests.serving.conftest import free_port


@pytest.mark.service
def test_serve_api_with_two_workers_serves_the_store_with_its_token(filled_store):
    port = free_port()
    env = {**os.environ, "ALPHA_SERVING_URL": filled_store["url"], "ALPHA_API_TOKEN": "t0k"}
    cmd = [sys.executable, "-m", "alpha_assets.cli", "serve-api", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = None
        for _ in range(240):
            try:
                health = httpx.get(f"{base}/api/health", timeout=2).json()
                break
            except (httpx.TransportError, ValueError):
                time.sleep(0.25)
        assert health and health["newest_day"] == filled_store["days"][-1].isoformat()
        assert httpx.get(f"{base}/api/portfolio").status_code == 401  # the workers read the token too
        with httpx.Client(base_url=base, headers={"Authorization": "Bearer t0k"}) as c:
            books = [
                c.get("/api/portfolio", params={"date": d.isoformat()}).json() for d in filled_store["days"]
            ]
        assert [b["trade_date"] for b in books] == [d.isoformat() for d in filled_store["days"]]
        assert all(len(b["positions"]) == 30 for b in books)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the uvicorn supervisor and its worker processes
        proc.wait(timeout=30)


def test_a_bad_worker_count_is_one_line(tmp_path, monkeypatch, capsys):
    from alpha_assets.cli import main

    monkeypatch.setenv("ALPHA_SERVING_URL", f"sqlite:///{tmp_path}/serving.db")
    assert main(["serve-api", "--workers", "0"]) == 2
    assert "--workers 0: give 1 to 64 processes" in capsys.readouterr().err
