"""The exchange calendar behind every daily partition: XNYS sessions, computed offline by exchange-calendars.

Pure functions (no dagster) so the simulator, the lib and the partitions all agree on what a trading day is.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, timedelta
from functools import lru_cache

CALENDAR_START = date(2000, 1, 3)
CALENDAR_END = date(2040, 12, 31)


@lru_cache(maxsize=1)
def _all_sessions() -> tuple[date, ...]:
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS", start=CALENDAR_START.isoformat(), end=CALENDAR_END.isoformat())
    return tuple(ts.date() for ts in cal.sessions)


def sessions_between(start: date, end: date) -> list[date]:
    """XNYS sessions with ``start <= d <= end``."""
    allx = _all_sessions()
    return list(allx[bisect_left(allx, start) : bisect_right(allx, end)])


def sessions_from(start: date, n_days: int) -> list[date]:
    """The first ``n_days`` sessions on or after ``start``."""
    allx = _all_sessions()
    i = bisect_left(allx, start)
    return list(allx[i : i + n_days])


def is_session(d: date) -> bool:
    allx = _all_sessions()
    i = bisect_left(allx, d)
    return i < len(allx) and allx[i] == d


def shift_sessions(d: date, n: int) -> date:
    """The session ``n`` sessions after (n > 0) or before (n < 0) ``d``; ``d`` itself need not be a session."""
    allx = _all_sessions()
    i = bisect_left(allx, d) if n >= 0 else bisect_right(allx, d) - 1
    if n > 0 and i < len(allx) and allx[i] == d:
        i += n
    elif n > 0:
        i += n - 1
    elif n < 0:
        if i >= 0 and allx[i] == d:
            i += n
        else:
            i += n + 1
    return allx[max(0, min(i, len(allx) - 1))]


def holidays_between(start: date, end: date) -> list[date]:
    """Weekdays in [start, end] that are not sessions (exchange holidays)."""
    sess = set(sessions_between(start, end))
    out, d = [], start
    while d <= end:
        if d.weekday() < 5 and d not in sess:
            out.append(d)
        d += timedelta(days=1)
    return out
