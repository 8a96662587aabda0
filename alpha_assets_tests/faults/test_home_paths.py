"""ALPHA_HOME is checked before anything runs (issue 19 #7): a path with a space works everywhere (the lake's reads
went through polars' native Delta scan, which opened delta-rs' percent-encoded file names literally), and a path
that cannot work is refused in one line, exit code 2, with nothing created."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alpha_assets.app.runs import materialize
from alpha_assets.cli import main
from alpha_assets.home import AlphaHome
from alpha_assets_tests.conftest import WORLD_START
from partitions.calendar import sessions_from
from resources.lake import DeltaLake


@pytest.mark.slow
def test_a_home_with_a_space_in_its_path_materializes_and_reads(
    tmp_path, world_template, monkeypatch, capsys
):
    root = tmp_path / "fund data" / "alpha home"
    shutil.copytree(world_template, root)
    monkeypatch.setenv("ALPHA_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    home = AlphaHome(root).ensure()
    days = sessions_from(WORLD_START, 8)
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as instance:
        res = materialize(
            home,
            days[0],
            days[-1],
            quiet=True,
            instance=instance,
            job_name="daily_data",
            select=["raw/prices", "raw/universe", "features/price_features"],
        )
    assert res["success"], res["failed_steps"]
    lake = DeltaLake(home.lake)
    prices = lake.read("raw", "prices", days[2], days[4], columns=["trade_date", "ticker", "close"])
    assert prices.height > 0 and prices["trade_date"].is_between(days[2], days[4]).all()
    features = lake.read("features", "price_features")
    assert features.height == lake.read("raw", "prices").height
    assert lake.read("raw", "prices", version=0).height > 0  # time travel
    assert main(["sql", "SELECT count(*) AS n FROM features.price_features", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n"] == features.height
    assert main(["tables", "--format", "json"]) == 0
    assert {"raw.prices", "features.price_features"} <= {
        t["name"] for t in json.loads(capsys.readouterr().out)
    }


@pytest.mark.parametrize("name", ["100% alpha", "alpha[1]", "a|b"])
def test_a_path_the_lake_cannot_use_is_refused_in_one_line_before_anything_runs(
    tmp_path, monkeypatch, capsys, name
):
    root = tmp_path / name
    monkeypatch.setenv("ALPHA_HOME", str(root))
    for argv in (["materialize"], ["sql", "SELECT 1"], ["demo", "--days", "400", "--tickers", "20"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "cannot be used" in err and "Delta Lake" in err, err
    assert not root.exists()


def test_a_home_that_is_a_file_or_cannot_be_written_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    for root, expected in (
        (blocker, "is a file, not a folder"),
        (blocker / "alpha", "is a file, not a folder"),
    ):
        monkeypatch.setenv("ALPHA_HOME", str(root))
        assert main(["demo", "--days", "400", "--tickers", "20"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err
    if Path("/sys").is_dir():  # sysfs: no folder can be made there, not even by root
        monkeypatch.setenv("ALPHA_HOME", "/sys/alpha-home")
        assert main(["demo", "--days", "400", "--tickers", "20"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "cannot be used" in err and "Traceback" not in err, err
        assert not Path("/sys/alpha-home").exists()
