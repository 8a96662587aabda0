"""The prod instance path: a Dagster instance on PostgreSQL materializes a partition (ALPHA_TEST_PG_URL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.postgres

PG_URL = os.environ.get("ALPHA_TEST_PG_URL")


@pytest.mark.skipif(not PG_URL, reason="ALPHA_TEST_PG_URL not set (.ci/run starts PostgreSQL and sets it)")
def test_a_postgres_backed_instance_materializes_a_partition(home, tmp_path):
    from urllib.parse import urlparse

    from dagster import DagsterInstance

    from alpha_assets.app.runs import materialize
    from alpha_assets_tests.conftest import WORLD_START
    from partitions.calendar import sessions_from
    from resources.lake import DeltaLake

    # The prod dagster.yaml's storage block, pointed at the test server.
    prod = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy" / "prod" / "dagster.yaml").read_text()
    )
    u = urlparse(PG_URL)
    db = prod["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    db.update(
        username=u.username,
        password=u.password,
        hostname=u.hostname,
        db_name=u.path.lstrip("/"),
        port=u.port or 5432,
    )
    dagster_home = tmp_path / "dagster_pg"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        yaml.safe_dump({"storage": prod["storage"], "telemetry": {"enabled": False}})
    )
    day = sessions_from(WORLD_START, 40)[10]
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert "Postgres" in type(instance.run_storage).__name__
        res = materialize(home, day, day, quiet=True, instance=instance, job_name="daily_data")
        assert res["success"]
        run = instance.get_run_by_id(res["run_id"])
        assert run is not None and run.is_success
        from dagster import AssetKey

        ev = instance.get_latest_materialization_event(AssetKey(["raw", "prices"]))
        assert ev is not None and ev.run_id == res["run_id"]
        assert ev.asset_materialization.partition == day.isoformat()
    assert DeltaLake(home.lake).read("raw", "prices", day, day).height > 0
