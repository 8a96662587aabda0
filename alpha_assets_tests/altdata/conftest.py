"""A demo world with every alt-data vendor, a detector trained on it once per test session, and the main job
materialized over it. Building it costs about four minutes on 2 cores, so the tests that use it are slow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alpha_assets_tests.conftest import WORLD_START

ALT_TICKERS, ALT_DAYS, ALT_SEED = 12, 60, 3


def alt_config():
    from alpha_world.altdata import AltDataConfig

    return AltDataConfig(
        image_sessions=4,
        retail_tickers=4,
        stores_per_ticker=2,
        tank_tickers=3,
        farms_per_ticker=1,
        detector_images=96,
        web_sessions=0,
    )


@pytest.fixture(scope="session")
def alt_template(tmp_path_factory) -> Path:
    from alpha_world.altdata import write_alt_data
    from alpha_world.simulate import WorldConfig, simulate_world
    from alpha_world.vendors import write_world

    root = tmp_path_factory.mktemp("alt_world")
    world = simulate_world(WorldConfig(tickers=ALT_TICKERS, start=WORLD_START, days=ALT_DAYS, seed=ALT_SEED))
    write_world(world, root)
    write_alt_data(world, root, alt_config())
    return root


@pytest.fixture(scope="session")
def trained_alt(tmp_path_factory, alt_template):
    """(home, ephemeral instance, train result, main-run result): the detector trained with the asset's default
    recipe, then the daily data job (vendor files to features) over every session of the world."""
    from dagster import DagsterInstance

    from alpha_assets.app.runs import materialize
    from alpha_assets.definitions import build_definitions, local_resources
    from alpha_assets.home import AlphaHome

    root = tmp_path_factory.mktemp("alt_home") / "alpha"
    shutil.copytree(alt_template, root)
    home = AlphaHome(root).ensure()
    with DagsterInstance.ephemeral() as instance:
        defs = build_definitions(local_resources(home))
        trained = defs.resolve_job_def("train_models").execute_in_process(
            instance=instance, raise_on_error=True
        )
        run = materialize(home, quiet=True, instance=instance, job_name="daily_data")
        yield home, instance, trained, run
