"""The Dagster webserver over a materialized instance: its GraphQL API lists asset keys and partition statuses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.service, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

QUERY = """
{ assetNodes { assetKey { path }
    assetPartitionStatuses { __typename
      ... on TimePartitionStatuses { ranges { status startKey endKey } } } } }
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, query: str) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_graphql_lists_asset_keys_and_partition_statuses(home):
    from dagster import DagsterInstance

    from alpha_assets.app.runs import materialize
    from alpha_assets_tests.conftest import WORLD_START
    from partitions.calendar import sessions_from

    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", home.dagster / "dagster.yaml")
    days = sessions_from(WORLD_START, 40)[5:10]
    with DagsterInstance.from_config(str(home.dagster)) as inst:
        assert materialize(home, days[0], days[-1], quiet=True, instance=inst, job_name="daily_data")[
            "success"
        ]
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster), "ALPHA_HOME": str(home.root)}
    exe = str(Path(sys.executable).parent / "dagster-webserver")
    proc = subprocess.Popen(
        [exe, "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        data = None
        for _ in range(480):
            try:
                data = _post(url, QUERY)
                if data.get("data", {}).get("assetNodes"):
                    break
            except Exception:
                pass
            time.sleep(0.5)
        assert data and data.get("data"), f"webserver did not answer: {data}"
        if not data["data"]["assetNodes"]:
            loc = _post(
                url,
                "{ workspaceOrError { ... on Workspace { locationEntries { name "
                "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
            )
            raise AssertionError(f"code location did not load: {loc}")
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
        assert {"raw/prices", "raw/universe", "features/price_features", "features/labels"} <= set(nodes)
        ranges = nodes["raw/prices"]["assetPartitionStatuses"]["ranges"]
        materialized = [r for r in ranges if r["status"] == "MATERIALIZED"]
        assert materialized == [
            {"status": "MATERIALIZED", "startKey": days[0].isoformat(), "endKey": days[-1].isoformat()}
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
