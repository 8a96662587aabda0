"""How current the served data is, for the API's headers and fields and the dashboard's header and banner.

Every response is built from a published trading day: its ``as_of`` (that day) and ``published_at`` (when it was
published, UTC with a Z). ``PublicationLag`` says how far the serving store is behind the lake: the newest day of
the lake's book (``portfolio/target_weights``, from its Delta log) against the newest published day, in trading
sessions (``metrics.behind_sessions``); unknown (None) when the lake cannot be read from here (an API host without
the lake). It is kept ``ttl`` seconds, so a request never waits on the lake more than once per period.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date

log = logging.getLogger(__name__)

AS_OF_HEADER = "X-Alpha-As-Of"
PUBLISHED_AT_HEADER = "X-Alpha-Published-At"
BEHIND_HEADER = "X-Alpha-Behind-Sessions"
LAKE_BOOK_HEADER = "X-Alpha-Lake-Book-Day"


def stamp_headers(
    as_of: date | str | None, published_at: str | None, lag: dict | None = None
) -> dict[str, str]:
    """The response headers saying what a response is built from, and (``lag`` known) how far behind it is."""
    out = {}
    if as_of is not None:
        out[AS_OF_HEADER] = as_of if isinstance(as_of, str) else as_of.isoformat()
    if published_at is not None:
        out[PUBLISHED_AT_HEADER] = published_at
    if lag and lag.get("behind_sessions") is not None:
        out[BEHIND_HEADER] = str(lag["behind_sessions"])
        out[LAKE_BOOK_HEADER] = lag["lake_book_day"].isoformat()
    return out


class PublicationLag:
    """The serving store's lag behind the lake's book: {'published_day', 'lake_book_day', 'behind_sessions'}
    (each None when unknown), recomputed at most every ``ttl`` seconds."""

    _UNSET = object()

    def __init__(self, reader, lake=_UNSET, ttl: float = 15.0):
        self.reader, self._lake, self.ttl = reader, lake, ttl
        self._value: dict | None = None
        self._at = float("-inf")
        self._lock = threading.Lock()

    @property
    def lake(self):
        if self._lake is self._UNSET:
            from alpha_assets.serving.metrics import lake_from_env

            try:
                self._lake = lake_from_env()
            except (
                Exception
            ) as e:  # a bad ALPHA_LAKE_STORAGE_OPTIONS: the lag is unknown, the API still serves
                log.warning("publication lag: lake unreadable: %s", e)
                self._lake = None
        return self._lake

    def cached(self) -> dict | None:
        """The value when it is fresh (no I/O), else None."""
        return self._value if time.monotonic() - self._at < self.ttl else None

    def get(self) -> dict:
        value = self.cached()
        if value is not None:
            return value
        with self._lock:
            if time.monotonic() - self._at < self.ttl and self._value is not None:
                return self._value
            self._value, self._at = self._compute(), time.monotonic()
            return self._value

    def _compute(self) -> dict:
        from alpha_assets.serving.metrics import behind_sessions, newest_partition
        from alpha_assets.serving.reader import EmptyStore

        try:
            published = self.reader.newest_day()
        except EmptyStore:
            published = None
        lake_day = None
        if self.lake is not None:
            try:
                lake_day = newest_partition(self.lake, "portfolio", "target_weights")
            except (
                Exception
            ) as e:  # unreadable now (a commit in flight, a network error): unknown, not an error
                log.warning("publication lag: lake unreadable: %s", e)
        return {
            "published_day": published,
            "lake_book_day": lake_day,
            "behind_sessions": behind_sessions(published, lake_day),
        }


def behind_message(lag: dict | None) -> str | None:
    """One sentence for a page's warning banner when the store is behind the lake, else None."""
    if not lag or not lag.get("behind_sessions"):
        return None
    n, lake_day, published = lag["behind_sessions"], lag["lake_book_day"], lag["published_day"]
    return (
        f"The served data is {n} session{'s' if n != 1 else ''} behind the lake: the lake's book runs to "
        f"{lake_day}, the newest published day is {published}. Publish with `alpha materialize --job serving "
        f"--from {published} --to {lake_day}`."
    )
