"""The intake layer every vendor asset uses: find a prefix's deliveries, quarantine everything else with a reason,
read the files while recording their fingerprints, and keep the table's rows a re-run could not read again.

Which names are deliveries is decided once, in ``alpha_assets.lib.ingestion.deliveries`` (``RULES``); which rows
survive a re-run is ``keep_earlier_rows`` there. This module is the I/O around them: the landing zone, the lake
and the run's log. Each asset reports ``metadata()``: the files quarantined in the run and ``source_fingerprints``
(``"<prefix>/<name>" -> content fingerprint``, the value ``VendorLanding.list_files`` reports for the file), which
the landing sensors compare with what they list to skip content already materialized.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import polars as pl
from dagster import MetadataValue

from alpha_assets.lib.ingestion.deliveries import Delivery, keep_earlier_rows, split_deliveries
from resources.lake import DeltaLake
from resources.landing import VendorLanding

SOURCE_FINGERPRINTS = "source_fingerprints"


class Intake:
    """One run's view of the landing zone. ``log`` is the run's logger (``context.log``)."""

    def __init__(self, landing: VendorLanding, log=None):
        self.landing = landing
        self.log = log or logging.getLogger(__name__)
        self.quarantined: list[dict[str, str]] = []
        self.fingerprints: dict[str, str] = {}
        self._listed: dict[str, list[Delivery]] = {}

    # --- finding deliveries ------------------------------------------------------------------------------
    def deliveries(self, prefix: str, start: date | None = None, end: date | None = None) -> list[Delivery]:
        """The prefix's deliveries dated in [start, end] (all when no window), oldest first. Every file under the
        prefix that is not a delivery is quarantined with its reason (once per run)."""
        if prefix not in self._listed:
            files = self.landing.list_files(prefix, fingerprints=False)
            outside = {f.name for f in files if f.outside_zone}
            good, bad = split_deliveries(prefix, [f.name for f in files], outside)
            for r in bad:
                self.quarantine(prefix, r.name, r.reason)
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
        data = self.landing.read_bytes(prefix, name)
        self._record(prefix, name)
        return data

    def local_path(self, prefix: str, name: str) -> Path:
        path = self.landing.local_path(prefix, name)
        self._record(prefix, name)
        return path

    # --- rejecting --------------------------------------------------------------------------------------
    def quarantine(self, prefix: str, name: str, reason: str) -> dict[str, str]:
        """Move a file to quarantine with a ``.reason.json``; it no longer counts as a source of the partition."""
        self.fingerprints.pop(f"{prefix}/{name}", None)
        try:
            moved_to = self.landing.quarantine(prefix, name, reason)
        except FileNotFoundError:  # another run (or a sensor) moved it first
            moved_to = "already moved"
        entry = {"file": f"{prefix}/{name}", "reason": reason, "moved_to": moved_to}
        self.quarantined.append(entry)
        self.log.error(f"quarantined {prefix}/{name}: {reason}")
        return entry

    # --- reporting --------------------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {
            "quarantined": MetadataValue.json(self.quarantined),
            SOURCE_FINGERPRINTS: MetadataValue.json(dict(sorted(self.fingerprints.items()))),
        }


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


__all__ = ["SOURCE_FINGERPRINTS", "Intake", "keep_table_rows"]
