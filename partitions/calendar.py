"""The exchange calendar behind every daily partition: XNYS sessions, computed offline by exchange-calendars.

Pure functions (no dagster) so the simulator, the lib and the partitions all agree on what a trading day is.
The sessions are the weekdays minus the exchange's closed weekdays listed in ``xnys_holidays.txt``, which
exchange-calendars wrote (``python -m partitions.calendar`` regenerates it; a test checks it still agrees):
building the calendar itself costs about a second on every load of the code location.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

CALENDAR_START = date(2000, 1, 3)
CALENDAR_END = date(2040, 12, 31)


HOLIDAYS_FILE = Path(__file__).with_name("xnys_holidays.txt")


def exchange_calendar_sessions() -> tuple[date, ...]:
    """The sessions as exchange-calendars computes them (the source of ``xnys_holidays.txt``)."""
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS", start=CALENDAR_START.isoformat(), end=CALENDAR_END.isoformat())
    return tuple(ts.date() for ts in cal.sessions)


def _weekdays() -> list[date]:
    days, d = [], CALENDAR_START
    while d <= CALENDAR_END:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


@lru_cache(maxsize=1)
def _all_sessions() -> tuple[date, ...]:
    lines = HOLIDAYS_FILE.read_text().splitlines()
    closed = {date.fromisoformat(x) for x in lines if x and not x.startswith("#")}
    return tuple(d for d in _weekdays() if d not in closed)


def write_holidays_file(path: Path = HOLIDAYS_FILE) -> int:
    """Regenerate ``xnys_holidays.txt`` from exchange-calendars; returns the number of closed weekdays."""
    sessions = set(exchange_calendar_sessions())
    closed = [d for d in _weekdays() if d not in sessions]
    header = (
        f"# XNYS weekdays without a session, {CALENDAR_START}..{CALENDAR_END}, from exchange-calendars\n"
        "# (regenerate: python -m partitions.calendar)\n"
    )
    path.write_text(header + "\n".join(d.isoformat() for d in closed) + "\n")
    return len(closed)


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


if __name__ == "__main__":
    print(f"{write_holidays_file()} closed weekdays written to {HOLIDAYS_FILE}")
