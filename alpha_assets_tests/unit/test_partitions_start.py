"""The partitions start at the lake's configured first session, not 2015 (issue 9 #11): the UI then shows the
lake's days as filled instead of "8% filled"."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from partitions import PARTITIONS_FILE, configure_partitions_start, partitions_start

REPO = Path(__file__).resolve().parents[2]


def test_the_lake_file_sets_the_start_and_the_environment_overrides_it(tmp_path, monkeypatch):
    monkeypatch.delenv("ALPHA_PARTITIONS_START", raising=False)
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    assert partitions_start() == date(2015, 1, 2)  # no lake file: the default

    configure_partitions_start(tmp_path, date(2024, 3, 4))
    assert partitions_start() == date(2024, 3, 4)
    configure_partitions_start(tmp_path, date(2024, 6, 3))  # a later world never hides the lake's days
    assert partitions_start() == date(2024, 3, 4)

    monkeypatch.setenv("ALPHA_PARTITIONS_START", "2020-01-02")
    assert partitions_start() == date(2020, 1, 2)


def test_an_unreadable_lake_file_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("ALPHA_PARTITIONS_START", raising=False)
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    (tmp_path / PARTITIONS_FILE).write_text(json.dumps({"start": "2024-13-01"}))
    with pytest.raises(ValueError, match=PARTITIONS_FILE):
        partitions_start()


@pytest.mark.slow
def test_a_generated_world_sets_the_partitions_the_definitions_load(tmp_path):
    env = {"PATH": str(Path(sys.executable).parent), "ALPHA_HOME": str(tmp_path), "HOME": str(tmp_path)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alpha_assets.cli",
            "world",
            "generate",
            "--out",
            str(tmp_path),
            "--tickers",
            "5",
            "--days",
            "12",
            "--start",
            "2024-03-04",
            "--no-alt-data",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    probe = (
        "from partitions import trading_days, training_blocks; print(trading_days.get_first_partition_key())"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "2024-03-04", out.stderr[-2000:]


def test_the_stored_exchange_holidays_give_exactly_the_exchange_calendars_sessions():
    from partitions.calendar import _all_sessions, exchange_calendar_sessions

    assert _all_sessions() == exchange_calendar_sessions()


def test_the_first_trainable_block_is_the_first_quarter_with_a_training_year_before_it():
    from datetime import timedelta

    from partitions import (
        MIN_HISTORY_SHARE,
        PURGE_SESSIONS,
        TRAIN_SESSIONS,
        first_trainable_block,
        model_start,
    )
    from partitions.calendar import sessions_between, sessions_from

    need = MIN_HISTORY_SHARE * (TRAIN_SESSIONS + PURGE_SESSIONS)
    for lake_start in (date(2024, 3, 4), date(2024, 1, 2), date(2023, 10, 2), date(2015, 1, 2)):
        block = date.fromisoformat(first_trainable_block(lake_start))
        assert block.day == 1 and block.month in (1, 4, 7, 10)
        assert len(sessions_between(lake_start, block - timedelta(days=1))) >= need
        prev = date(block.year - (block.month == 1), (block.month - 4) % 12 + 1, 1)  # the quarter before
        assert len(sessions_between(lake_start, prev - timedelta(days=1))) < need
        assert model_start(lake_start) == sessions_from(block, 1)[0]
    assert first_trainable_block(date(2024, 3, 4)) == "2025-04-01"  # 2025-01-01 has 207 sessions before it


def test_model_and_serving_assets_start_where_a_model_can_exist_and_the_cli_says_so(tmp_path):
    """The data layer starts at the lake's first session; the model layer (scores, book, risk, monitoring, marts,
    publication) and the training blocks start at the first session a trained model can exist, so the UI does not
    count a year of impossible days as missing. A CLI range before it is refused in one line."""
    env = {
        "PATH": str(Path(sys.executable).parent),
        "ALPHA_HOME": str(tmp_path),
        "HOME": str(tmp_path),
        "ALPHA_PARTITIONS_START": "2024-03-04",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    (tmp_path / "dagster").mkdir()
    (tmp_path / "landing").mkdir()
    probe = """
from alpha_assets.definitions import build_definitions
graph = build_definitions().resolve_asset_graph()
for key in ("raw/prices", "features/feature_matrix", "features/labels", "models/predictions",
            "models/alpha_scores", "portfolio/target_weights", "risk/risk_report", "monitoring/model_health",
            "serving/published", "models/alpha_models"):
    pdef = graph.get(__import__("dagster").AssetKey(key.split("/"))).partitions_def
    print(key, pdef.get_first_partition_key())
"""
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    first = dict(line.split() for line in out.stdout.strip().splitlines())
    assert first["raw/prices"] == first["features/feature_matrix"] == first["features/labels"] == "2024-03-04"
    model = {
        k: v
        for k, v in first.items()
        if k.split("/")[0] in ("models", "portfolio", "risk", "monitoring", "serving")
        and k != "models/alpha_models"
    }
    assert set(model.values()) == {"2025-04-01"}, first
    assert first["models/alpha_models"] == "2025-04-01"  # the first training block

    cli = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "alpha_assets.cli",
            "materialize",
            "--job",
            "daily_book",
            "--from",
            "2024-06-03",
            "--to",
            "2024-06-07",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2, (cli.stdout, cli.stderr[-3000:])
    assert "Traceback" not in cli.stderr
    assert "daily_book starts at 2025-04-01" in cli.stderr and "--from 2025-04-01" in cli.stderr, cli.stderr


def test_each_job_has_its_layers_partitioning():
    """The jobs set no ``partitions_def`` (deprecated in Dagster: inferred from the selected assets), so this pins
    what is inferred: a job over assets of two partitionings, or of a changed one, fails here and not in the UI."""
    import partitions
    from alpha_assets.definitions import defs

    resolved = defs() if callable(defs) else defs
    jobs = {j.name: j.partitions_def for j in resolved.resolve_all_job_defs()}
    expected = {
        "daily_data": partitions.trading_days,
        "daily_book": partitions.model_days,
        "explain": partitions.model_days,
        "serving": partitions.model_days,
        "train_alpha": partitions.training_blocks,
        "backtest_report": None,
        "model_report": None,
        "train_models": None,
    }
    assert {name: jobs.get(name) for name in expected} == expected
