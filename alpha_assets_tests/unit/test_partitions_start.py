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
    subprocess.run([sys.executable, "-m", "alpha_assets.cli", "world", "generate", "--out", str(tmp_path),
                    "--tickers", "5", "--days", "12", "--start", "2024-03-04", "--no-alt-data"],
                   cwd=REPO, env=env, check=True, capture_output=True)  # fmt: skip
    probe = (
        "from partitions import trading_days, training_blocks; print(trading_days.get_first_partition_key())"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "2024-03-04", out.stderr[-2000:]


def test_the_stored_exchange_holidays_give_exactly_the_exchange_calendars_sessions():
    from partitions.calendar import _all_sessions, exchange_calendar_sessions

    assert _all_sessions() == exchange_calendar_sessions()
