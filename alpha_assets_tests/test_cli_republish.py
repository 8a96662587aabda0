"""`alpha materialize` republishes the serving store when its run changed a book (issue 20 #4): the serving job runs
over the days whose portfolio/* partitions the run (or its refresh of stale dependents) rewrote, with a line
saying so; a run that touched no book, or the serving job itself, publishes nothing more."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import AssetKey, DailyPartitionsDefinition, asset, materialize

from alpha_assets import cli
from alpha_assets.app import runs as app_runs

DAYS = [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]


def test_book_days_are_the_partitions_of_portfolio_materializations():
    parts = DailyPartitionsDefinition(start_date="2024-03-01")

    @asset(key=AssetKey(["portfolio", "target_weights"]), partitions_def=parts)
    def book() -> None:
        return None

    @asset(key=AssetKey(["raw", "prices"]), partitions_def=parts)
    def prices() -> None:
        return None

    result = materialize([book, prices], partition_key="2024-03-05")
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert len(mats) == 2 and app_runs.book_days(mats) == [date(2024, 3, 5)]
    assert app_runs.book_days([e for e in mats if e.asset_key.path[0] == "raw"]) == []


@pytest.fixture
def runs(monkeypatch, tmp_path):
    """``materialize`` (the CLI's and the application layer's, which republish calls) replaced by a recorder: the job given changes the book of DAYS unless it is daily_data
    or serving."""
    (tmp_path / "landing").mkdir()
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    calls = []

    def fake(home, start=None, end=None, select=None, job_name="main", **kw):
        calls.append((job_name, start, end))
        book = [] if job_name in ("daily_data", "serving") else DAYS
        return {"success": True, "book_days": book, "run_id": "x"}

    monkeypatch.setattr(cli, "materialize", fake)
    monkeypatch.setattr(app_runs, "materialize", fake)
    return calls


def test_a_run_that_changed_the_book_republishes_its_days(runs, capsys):
    assert cli.main(["materialize", "--job", "daily_book", "--from", "2024-03-04", "--to", "2024-03-06"]) == 0
    assert runs == [("daily_book", DAYS[0], DAYS[-1]), ("serving", DAYS[0], DAYS[-1])]
    out = capsys.readouterr().out
    assert (
        f"republishing the serving store for {DAYS[0]}..{DAYS[-1]}: the run changed the book of 3 session(s)"
        in out
    )


@pytest.mark.parametrize("job", ["daily_data", "serving"])
def test_a_run_that_did_not_change_a_book_publishes_nothing_more(runs, capsys, job):
    assert cli.main(["materialize", "--job", job]) == 0
    assert [j for j, _, _ in runs] == [job]
    assert "republishing" not in capsys.readouterr().out
