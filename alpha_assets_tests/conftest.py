"""Shared fixtures: a small seeded world in a temporary ALPHA_HOME, and an ephemeral Dagster instance."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "True")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
# The tests' worlds start in 2024: a developer's ALPHA_HOME (partitions.json) must not move the partitions' start.
os.environ.setdefault("ALPHA_PARTITIONS_START", "2015-01-02")
os.environ.setdefault("ALPHA_MODEL_BUDGET", "demo")  # the seed's fusion transformer takes hours on 2 cores

WORLD_START = date(2024, 1, 2)


def make_world(home: Path, tickers: int = 12, days: int = 40, seed: int = 3, signal: float = 0.05):
    from alpha_world.simulate import WorldConfig, simulate_world
    from alpha_world.vendors import write_world

    world = simulate_world(
        WorldConfig(tickers=tickers, start=WORLD_START, days=days, seed=seed, signal_strength=signal)
    )
    meta = write_world(world, home)
    return world, meta


@pytest.fixture(scope="session")
def world_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world_template")
    make_world(root)
    return root


@pytest.fixture
def home(tmp_path, world_template, monkeypatch):
    """A fresh ALPHA_HOME holding a copy of the small world's vendor files."""
    from alpha_assets.home import AlphaHome

    root = tmp_path / "alpha"
    shutil.copytree(world_template, root)
    monkeypatch.setenv("ALPHA_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    return AlphaHome(root).ensure()


@pytest.fixture
def instance():
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as inst:
        yield inst
