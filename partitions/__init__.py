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

from alpha_assets.lib.settings import (
    FEATURE_LOOKBACK_SESSIONS,
    LABEL_HORIZONS,
    PURGE_SESSIONS,
    SESSIONS_PER_YEAR,
)
from partitions.calendar import CALENDAR_END, holidays_between, sessions_between, sessions_from

DEFAULT_START = "2015-01-02"
# FEATURE_LOOKBACK_SESSIONS and LABEL_HORIZONS (lib.settings) build the lookback and label mappings below.


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


def _quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def _next_quarter(q: date) -> date:
    return date(q.year + q.month // 10, (q.month + 2) % 12 + 1, 1)


# The training window rule (the defaults of models.training.BlockTrainingConfig): a block's models learn from the
# TRAIN_SESSIONS sessions ending PURGE_SESSIONS before its quarter, and a block trains when the lake holds at least
# MIN_HISTORY_SHARE of them (a lake that starts a few sessions short of a full year still trains; one that starts a
# quarter short does not).
TRAIN_SESSIONS = SESSIONS_PER_YEAR  # a training year
MAX_TRAIN_SESSIONS = 756  # the window expands up to 3 years of the lake's history (models.training)
MIN_HISTORY_SHARE = 0.9


def first_trainable_block(
    lake_start: date, train_sessions: int = TRAIN_SESSIONS, purge_sessions: int = PURGE_SESSIONS
) -> str:
    """The first quarterly block whose training window the lake, starting at ``lake_start``, can hold: the first
    quarter with at least ``MIN_HISTORY_SHARE`` x (``train_sessions`` + ``purge_sessions``) sessions before it."""
    need = MIN_HISTORY_SHARE * (train_sessions + purge_sessions)
    q = _quarter_start(lake_start)
    while len(sessions_between(lake_start, q - timedelta(days=1))) < need:
        q = _next_quarter(q)
    return q.isoformat()


def model_start(lake_start: date) -> date:
    """The first session a trained model can exist for (the first session of ``first_trainable_block``): model
    scores, and the books, risk, orders, monitoring and serving built on them, start here."""
    return sessions_from(date.fromisoformat(first_trainable_block(lake_start)), 1)[0]


trading_days = _trading_days(partitions_start())
# The daily assets that need a trained model (scores, books, risk, orders, model monitoring, marts, publication):
# their partitions start where a model can exist, so the UI does not count a year of impossible days as missing.
# (Turned off for a while in session 19: the production e2e saw the automation launch a day's feature matrix before
# that day's price features, with and without this split. automation.SameDayParentsReady now holds a day's asset
# until its own automated inputs exist, or are requested with it on the same partitioning: one run or backfill.)
model_days = _trading_days(model_start(partitions_start()))
DAILY_PARTITIONS = (trading_days, model_days)
monthly_training = MonthlyPartitionsDefinition(start_date=partitions_start().replace(day=1).isoformat())


# Retraining blocks: one partition per calendar quarter (about 63 sessions, the seed's test block). A block's models
# are trained on the sessions before the quarter (minus the purge) and score only the quarter's sessions; the first
# block is the first one the lake can train (a block before it has no training year).
training_blocks = TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",
    start=datetime.fromisoformat(first_trainable_block(partitions_start())),
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


def window_overrun(setting: str, value: int, limit: int, read: str) -> str | None:
    """The one-line reason a run config asks for more history than the partition mapping feeding the asset reads
    (the asset would otherwise compute over a silently truncated window), or None when it fits."""
    if value > limit:
        return (
            f"{setting}={value} needs more history than this asset reads: at most {limit} sessions ({read}); "
            "lower it, or widen that partition mapping in partitions/__init__.py"
        )
    return None


def window_dates(start: datetime, end: datetime) -> tuple[date, date]:
    """A Dagster time window [start, end) as inclusive dates."""
    return start.date(), (end - timedelta(days=1)).date()
