"""Which partitions a re-run makes stale, through the partition mappings.

Re-running days [start, end] of an asset changes what its dependents read outside that window too: a label
reads the closes of the next 20 sessions (``label_horizon``), so re-running day D makes the labels of the 20
sessions before D stale; a windowed feature reads 125 sessions back (``feature_lookback``), so the features of
the sessions after D go stale. ``stale_dependents`` walks the asset graph from the re-run assets, maps each
changed window through each edge's ``TimeWindowPartitionMapping`` (downstream day X reads upstream days
[X + start_offset, X + end_offset], so an upstream change at U reaches X in [U - end_offset, U - start_offset]),
and keeps only partitions that exist already (stale-only: nothing never built is built here). The CLI then
re-runs exactly those, grouped into contiguous single-run ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from dagster import AssetKey, TimeWindowPartitionMapping

from partitions import DAILY_PARTITIONS
from partitions.calendar import sessions_between, shift_sessions


def stale_dependents(
    asset_graph,
    rerun_keys: Iterable[AssetKey],
    start: date,
    end: date,
    materialized: Callable[[AssetKey], set[str]],
    within: Callable[[AssetKey], bool] = lambda _key: True,
) -> dict[AssetKey, set[date]]:
    """Trading-day partitions of the graph's assets, outside what the re-run rebuilt, that read a changed day.

    ``asset_graph`` is a job's asset graph (``job.asset_layer.asset_graph``); ``rerun_keys`` the assets the run
    materialized over [start, end]; ``materialized(key)`` the partition keys of ``key`` that exist; ``within(key)``
    limits the walk to some assets (the CLI's ``main``: the daily data and book jobs' assets)."""
    rerun = set(rerun_keys)
    changed: dict[AssetKey, set[date]] = {k: set(sessions_between(start, end)) for k in rerun}
    stale: dict[AssetKey, set[date]] = {}
    for key in asset_graph.toposorted_asset_keys:
        node = asset_graph.get(key)
        if node.partitions_def not in DAILY_PARTITIONS or not within(key):
            continue
        reached: set[date] = set()
        for parent in node.parent_keys:
            if parent not in changed or not asset_graph.has(parent):
                continue
            mapping = asset_graph.get_partition_mapping(key, parent)
            if not isinstance(mapping, TimeWindowPartitionMapping):
                continue
            for day in changed[parent]:
                lo = shift_sessions(day, -(mapping.end_offset or 0))
                hi = shift_sessions(day, -(mapping.start_offset or 0))
                reached.update(sessions_between(lo, hi))
        if key in rerun:
            reached -= changed[key]
        if not reached:
            continue
        existing = {date.fromisoformat(p) for p in materialized(key)}
        reached &= existing
        if reached:
            stale[key] = reached
            changed[key] = changed.get(key, set()) | reached
    return stale


def refresh_runs(stale: dict[AssetKey, set[date]], asset_graph) -> list[tuple[date, date, list[AssetKey]]]:
    """The stale partitions as single-run ranges (first, last, asset keys), oldest first.

    Each range is a run of consecutive stale sessions (over all assets); every asset stale inside it runs over
    it, so Dagster orders the assets inside one run, and ranges never overlap. A multi-asset's siblings are
    added, since its outputs are computed together."""
    every_day = sorted(set().union(*stale.values())) if stale else []
    runs = []
    for lo, hi in _contiguous(every_day):
        keys: set[AssetKey] = set()
        for key, days in stale.items():
            if any(lo <= d <= hi for d in days):
                keys.update(asset_graph.get(key).execution_set_asset_keys or {key})
        runs.append((lo, hi, sorted(keys, key=lambda k: k.to_user_string())))
    return runs


def _contiguous(days: list[date]) -> list[tuple[date, date]]:
    """Runs of consecutive sessions."""
    out: list[tuple[date, date]] = []
    for d in days:
        if out and shift_sessions(out[-1][1], 1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out
