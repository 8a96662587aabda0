"""The intake layer every vendor asset uses: find a prefix's deliveries, quarantine everything else with a reason,
read the files while recording their fingerprints, and keep the table's rows a re-run could not read again.

Reads are atomic: ``read_bytes`` reads a file only once it has settled (its size and mtime the same at two looks at
least ``settle_seconds`` after its last change, and again after the read) and records the fingerprint of exactly
the bytes it returns, so a file completed after it was read is seen as new content by the sensors and re-read. A
file still being written raises ``NotReadYet`` (not quarantined: it is read when complete); a file that cannot be
read (permissions, I/O) raises ``VendorFileError`` and is quarantined like any bad file. A directory, FIFO, socket
or device named like a delivery is refused with a reason, never opened.

Which names are deliveries is decided once, in ``alpha_assets.lib.ingestion.deliveries`` (``RULES``); which rows
survive a re-run is ``keep_earlier_rows`` there. This module is the I/O around them: the landing zone, the lake
and the run's log. Each asset reports ``metadata()`` (the files quarantined in the run) and, on each partition's own
event, ``source_fingerprints`` (``add_partition_fingerprints``: ``"<prefix>/<name>" -> content fingerprint`` of the
files delivered for that day, the value ``VendorLanding.list_files`` reports), which the landing sensors compare
with what they list to skip content already materialized.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
from dagster import MetadataValue

from alpha_assets.lib.ingestion.deliveries import (
    Delivery,
    Rejection,
    classify,
    keep_earlier_rows,
    split_deliveries,
)
from alpha_assets.lib.ingestion.vendor_files import VendorFileError
from resources.lake import DeltaLake
from resources.landing import VendorLanding

SOURCE_FINGERPRINTS = "source_fingerprints"
# A file whose size or mtime changed less than this long ago is looked at again after this long before it is read.
SETTLE_SECONDS = float(os.environ.get("ALPHA_LANDING_SETTLE_SECONDS", "1.0"))


class NotReadYet(Exception):
    """A delivery still being written (its size or mtime changed between two looks): read on a later run."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


def settle_seconds() -> float:
    return float(os.environ.get("ALPHA_LANDING_SETTLE_SECONDS", SETTLE_SECONDS))


class Intake:
    """One run's view of the landing zone. ``log`` is the run's logger (``context.log``)."""

    def __init__(self, landing: VendorLanding, log=None, settle: float | None = None):
        self.landing = landing
        self.log = log or logging.getLogger(__name__)
        self.settle = settle_seconds() if settle is None else settle
        self.quarantined: list[dict[str, str]] = []
        self.not_read_yet: list[dict[str, str]] = []
        self.fingerprints: dict[str, str] = {}
        self._listed: dict[str, list[Delivery]] = {}
        self._looks: dict[tuple[str, str], tuple[int, float]] = {}  # the listing's (size, mtime) of each file

    # --- finding deliveries ------------------------------------------------------------------------------
    def deliveries(self, prefix: str, start: date | None = None, end: date | None = None) -> list[Delivery]:
        """The prefix's deliveries dated in [start, end] (all when no window), oldest first. Every file under the
        prefix that is not a delivery is quarantined with its reason (once per run)."""
        if prefix not in self._listed:
            files = self.landing.list_files(prefix, fingerprints=False, special=True)
            refused = [r for f in files if f.kind != "file" and (r := not_a_file(prefix, f.name, f.kind))]
            gone = tuple(f"{r.name}/" for r in refused)  # what a refused directory holds moves with it
            files = [f for f in files if f.kind == "file" and not f.name.startswith(gone)]
            outside = {f.name for f in files if f.outside_zone}
            good, bad = split_deliveries(prefix, [f.name for f in files], outside)
            for r in [*refused, *bad]:
                self.quarantine(prefix, r.name, r.reason)
            self._looks.update({(prefix, f.name): (f.size, f.modified) for f in files})
            self._listed[prefix] = good
        return [
            d
            for d in self._listed[prefix]
            if (start is None or d.trade_date >= start) and (end is None or d.trade_date <= end)
        ]

    def by_date(self, prefix: str, start: date, end: date) -> dict[date, Delivery]:
        """For a vendor delivering one file per date: that file for each date of the window."""
        return {d.trade_date: d for d in self.deliveries(prefix, start, end)}

    # --- reading (records what the partition is built from) ---------------------------------------------
    def _record(self, prefix: str, name: str) -> None:
        self.fingerprints[f"{prefix}/{name}"] = self.landing.fingerprint(prefix, name)

    def read_bytes(self, prefix: str, name: str) -> bytes:
        """The file's bytes once it has settled, recording their fingerprint. Raises ``NotReadYet`` for a file
        still being written and ``VendorFileError`` for one that cannot be read (the caller quarantines it)."""
        file = f"{prefix}/{name}"
        try:
            first = self._looks.get((prefix, name)) or self.landing.stat(prefix, name)
            if first is None:
                raise FileNotFoundError(file)
            young = self.settle - (time.time() - first[1])
            if young > 0:  # changed moments ago: look again once it has been still for ``settle`` seconds
                time.sleep(min(young, self.settle))
            second = self.landing.stat(prefix, name)
            if second != first:
                raise NotReadYet(name, _changed(first, second))
            data = self.landing.read_bytes(prefix, name)
            third = self.landing.stat(prefix, name)
            if third != second or (third is not None and len(data) != third[0]):
                raise NotReadYet(name, _changed(second, third, len(data)))
        except NotReadYet as e:
            self.fingerprints.pop(file, None)
            self.not_read_yet.append({"file": file, "reason": e.reason})
            self.log.warning(f"not read yet {file}: {e.reason}")
            raise
        except OSError as e:
            raise VendorFileError(name, f"unreadable file ({type(e).__name__}: {e.strerror or e})") from None
        self.fingerprints[file] = self.landing.fingerprint_of(prefix, name, data)
        return data

    def previous_reason(self, prefix: str, name: str) -> str | None:
        """Why ``<prefix>/<name>`` was quarantined by an earlier run (its ``.reason.json``), None if it never was:
        a re-run that no longer finds the file reports the same reason as the run that moved it."""
        try:
            record = self.landing.quarantine_record(prefix, name)
        except Exception:  # noqa: BLE001 - a missing or unreadable record only loses the detail
            return None
        return record.get("reason") if record else None

    def local_path(self, prefix: str, name: str) -> Path:
        path = self.landing.local_path(prefix, name)
        self._record(prefix, name)
        return path

    # --- rejecting --------------------------------------------------------------------------------------
    def quarantine(
        self, prefix: str, name: str, reason: str, details: list[dict] | None = None
    ) -> dict[str, str]:
        """Move a file to quarantine with a ``.reason.json`` (the reason, and ``details``: every failure as data);
        it no longer counts as a source of the partition."""
        self.fingerprints.pop(f"{prefix}/{name}", None)
        try:
            moved_to = self.landing.quarantine(prefix, name, reason, details)
        except FileNotFoundError:  # another run (or a sensor) moved it first
            moved_to = "already moved"
        except OSError as e:  # cannot be moved (permissions): refused all the same, left where it is
            moved_to = f"not moved ({type(e).__name__}: {e.strerror or e})"
        entry = {"file": f"{prefix}/{name}", "reason": reason, "moved_to": moved_to}
        self.quarantined.append(entry)
        self.log.error(f"quarantined {prefix}/{name}: {reason}")
        return entry

    # --- reporting --------------------------------------------------------------------------------------
    def metadata(self) -> dict:
        """The run's quarantined and not-yet-read files (the source fingerprints go to each partition's own
        event: ``add_partition_fingerprints``)."""
        return {
            "quarantined": MetadataValue.json(self.quarantined),
            "not_read_yet": MetadataValue.json(self.not_read_yet),
        }

    def add_partition_fingerprints(self, context, *asset_keys) -> None:
        """Each partition's ``source_fingerprints``: the files of its own date (``add_source_fingerprints``)."""
        add_source_fingerprints(context, asset_keys, self.fingerprints, _delivery_day)


_ISO_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _delivery_day(source: str) -> str | None:
    """The date a ``"<prefix>/<name>"`` file delivers for: its delivery's, else the first date in its name (an
    image's sidecar), else None."""
    prefix, _, name = source.partition("/")
    verdict = classify(prefix, name)
    if isinstance(verdict, Delivery):
        return verdict.trade_date.isoformat()
    m = _ISO_DAY.search(name)
    return m.group(1) if m else None


def fingerprints_by_partition(
    fingerprints: dict[str, str], partition_keys: list[str], day_of: Callable[[str], str | None]
) -> dict[str, dict[str, str]]:
    """The run's ``source -> fingerprint`` split by the partition each source delivers for (``day_of``); a source
    without a day among ``partition_keys`` counts for every partition."""
    out: dict[str, dict[str, str]] = {pk: {} for pk in partition_keys}
    for source, fp in sorted(fingerprints.items()):
        day = day_of(source)
        for pk in [day] if day in out else partition_keys:
            out[pk][source] = fp
    return out


def add_source_fingerprints(
    context, asset_keys, fingerprints: dict[str, str], day_of: Callable[[str], str | None]
) -> None:
    """Record on each partition's materialization of ``asset_keys`` the sources of that partition only: what the
    landing sensors compare with the files they list. A range run used to copy the whole window's map onto every
    partition's event (O(days x files): 100 MB of event log per vendor asset for the demo's 504 sessions)."""
    keys = list(context.partition_keys)
    for pk, fps in fingerprints_by_partition(fingerprints, keys, day_of).items():
        for key in asset_keys:
            context.add_asset_metadata(
                {SOURCE_FINGERPRINTS: MetadataValue.json(fps)}, asset_key=key, partition_key=pk
            )


def not_a_file(prefix: str, name: str, kind: str) -> Rejection | None:
    """The rejection of a landed entry that is not a regular file: every FIFO, socket or device, and a directory
    named like a delivery (other directories are just folders). None when it is an ordinary folder."""
    named_like = isinstance(classify(prefix, name), Delivery)
    if kind == "directory" and not named_like:
        return None
    what = "a directory" if kind == "directory" else f"a {kind.upper() if kind == 'fifo' else kind}"
    return Rejection(
        prefix, name, f"{what}{' named like a delivery' if named_like else ''}, not a regular file (not read)"
    )


def _changed(
    before: tuple[int, float] | None, after: tuple[int, float] | None, read: int | None = None
) -> str:
    if after is None:
        return "the file went away while it was being read"
    if read is not None and before == after:
        return f"still being written ({read} bytes read of {after[0]})"
    return (
        f"still being written (size {before[0] if before else '?'} -> {after[0]} bytes, "
        f"modified again between two looks)"
    )


def keep_table_rows(
    lake: DeltaLake,
    layer: str,
    table: str,
    new: pl.DataFrame,
    start: date,
    end: date,
    on: list[str],
    covered: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, int]:
    """``new`` plus the rows ``layer.table`` already holds in [start, end] for units (``on``) not read again
    (``covered``, default: the units of ``new``); returns (rows, number kept). See ``keep_earlier_rows``."""
    old = lake.read(layer, table, start, end) if lake.exists(layer, table) else None
    return keep_earlier_rows(new, old, on, covered)


__all__ = ["SETTLE_SECONDS", "SOURCE_FINGERPRINTS", "Intake", "NotReadYet", "keep_table_rows", "not_a_file"]
