"""Partitions: trading-day (XNYS) daily partitions, monthly training partitions, and lookback mappings.

A trading-day partition is a cron weekday partition with every exchange holiday excluded, so partition keys are
exactly the sessions. Its time window runs from the session's midnight to the next session's midnight (Friday's
window ends on Monday), which the Delta store turns into the dates [start, end - 1 day].
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import date, datetime, timedelta
from pathlib import Path

from dagster import (
    MonthlyPartitionsDefinition,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
)

from partitions.calendar import CALENDAR_END, holidays_between

DEFAULT_START = "2015-01-02"
# Features look back this many sessions (momentum 120 skipping 5, lag-60 of a 20-day return, rolling 60).
FEATURE_LOOKBACK_SESSIONS = 125
LABEL_HORIZONS = (1, 5, 20)


# In ALPHA_HOME: {"start": "YYYY-MM-DD"}, the lake's first session (written when a world is generated into it).
PARTITIONS_FILE = "partitions.json"


def partitions_start() -> date:
    """The first trading-day partition: ALPHA_PARTITIONS_START, else the lake's configured start in
    ``$ALPHA_HOME/partitions.json``, else 2015-01-02. Read once, when the partition definitions are built."""
    if os.environ.get("ALPHA_PARTITIONS_START"):
        return date.fromisoformat(os.environ["ALPHA_PARTITIONS_START"])
    home = os.environ.get("ALPHA_HOME")
    path = Path(home).expanduser() / PARTITIONS_FILE if home else None
    if path is not None and path.is_file():
        try:
            return date.fromisoformat(json.loads(path.read_text())["start"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f'{path}: expected {{"start": "YYYY-MM-DD"}} ({e})') from None
    return date.fromisoformat(DEFAULT_START)


def configure_partitions_start(home: Path, first_session: date) -> date:
    """Record the lake's first session in ``home/partitions.json`` (the earlier of the recorded one and
    ``first_session``: a later world never hides partitions the lake already holds). Returns the start."""
    path = Path(home) / PARTITIONS_FILE
    start = first_session
    if path.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):  # an unreadable file is replaced
            start = min(start, date.fromisoformat(json.loads(path.read_text())["start"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"start": start.isoformat()}) + "\n")
    return start


def _trading_days(start: date) -> TimeWindowPartitionsDefinition:
    holidays = [datetime(d.year, d.month, d.day) for d in holidays_between(start, CALENDAR_END)]
    return TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        start=datetime(start.year, start.month, start.day),
        fmt="%Y-%m-%d",
        timezone="UTC",
        end_offset=1,  # today's session exists from its midnight: its vendor files land that evening
        exclusions=holidays,
    )


trading_days = _trading_days(partitions_start())
monthly_training = MonthlyPartitionsDefinition(start_date=partitions_start().replace(day=1).isoformat())


def _quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


# Retraining blocks: one partition per calendar quarter (about 63 sessions, the seed's test block). A block's models
# are trained on the sessions before the quarter (minus the purge) and score only the quarter's sessions.
training_blocks = TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",
    start=datetime.combine(_quarter_start(partitions_start()), datetime.min.time()),
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,  # the current quarter's block exists from its first day
)

feature_lookback = TimeWindowPartitionMapping(
    start_offset=-FEATURE_LOOKBACK_SESSIONS, end_offset=0, allow_nonexistent_upstream_partitions=True
)
label_horizon = TimeWindowPartitionMapping(
    start_offset=0, end_offset=max(LABEL_HORIZONS), allow_nonexistent_upstream_partitions=True
)


def block_key(d: date) -> str:
    """The training block (quarter) partition key that trading day ``d`` belongs to."""
    return _quarter_start(d).isoformat()


def window_dates(start: datetime, end: datetime) -> tuple[date, date]:
    """A Dagster time window [start, end) as inclusive dates."""
    return start.date(), (end - timedelta(days=1)).date()
