"""Serving-test fixtures: serving stores filled through the real write path (`store.publish_day`)."""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest

from alpha_assets_tests.ports import free_port as ports_free_port
from alpha_assets_tests.serving.synthetic import fill_store

# the API/dashboard tests' loopback ports; ALPHA_TEST_PORTS=A-B moves them (sessions sharing a host)
_lo, _hi = (int(x) for x in os.environ.get("ALPHA_TEST_PORTS", "18100-18299").split("-"))
API_PORTS = range(_lo, _hi + 1)


def free_port(ports: range = API_PORTS) -> int:
    return ports_free_port(ports)


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory) -> dict:
    """An embedded serving store with 30 names x 25 sessions: {'url', 'path', 'days'}."""
    from alpha_assets.serving import store

    path = tmp_path_factory.mktemp("serving") / "serving.db"
    url = f"sqlite:///{path}"
    days = fill_store(store.serving_engine(url), names=30, days=25, seed=11)
    return {"url": url, "path": path, "days": days}


@pytest.fixture
def pg_serving_url():
    """A fresh PostgreSQL database for one test (dropped afterwards); skips without ALPHA_TEST_PG_URL."""
    import sqlalchemy as sa

    base = os.environ.get("ALPHA_TEST_PG_URL")
    if not base:
        pytest.skip("ALPHA_TEST_PG_URL is not set (.ci/run starts PostgreSQL and sets it)")
    base = base.replace("postgresql://", "postgresql+psycopg2://", 1)
    name = f"alpha_api_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from alpha_assets.serving import store

        with contextlib.suppress(Exception):
            store.serving_engine(url).dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
