"""Declarative automation shared by downstream assets: a new or corrected vendor file flows downstream."""

from __future__ import annotations

from datetime import timedelta

from dagster import (
    AssetKey,
    AutomationCondition,
    AutomationContext,
    AutomationResult,
    TimeWindowPartitionsDefinition,
)

from alpha_assets.keys import RAW_PRICES
from partitions import DAILY_PARTITIONS, LABEL_HORIZONS

# Missing partitions are filled over the last ~6 weeks only (not blocked by missing upstream partitions before the
# data starts: a 125-session lookback always reaches some), so opening the UI never backfills history.
RECENT = timedelta(days=45)
# An updated partition also refreshes what reads it through a forward mapping: the labels of the sessions before
# a re-run day (label_horizon reaches max(LABEL_HORIZONS) sessions ahead, ~1.5 calendar days per session).
FORWARD_REACH = timedelta(days=int(max(LABEL_HORIZONS) * 1.5) + 5)
# The day's own delivery: a session is a trading day for the platform once its prices are in the lake.


class DayDelivered(AutomationCondition):
    """True for a session whose own `raw/prices` partition has been materialized.

    The dependency conditions cannot say this: they map a day through its partition mapping, so a day whose
    125-session lookback holds yesterday's prices "has updated deps" the moment it exists (00:00 UTC), hours before
    its vendor files land. Without this, the automation launched the new day's features over no prices.
    Daily assets whose partitions start later (the model layer's, ``partitions.model_days``) are held back the same
    way; assets on another partitioning (or graphs without `raw/prices`) are not held back by it.
    """

    @property
    def name(self) -> str:
        return "day_delivered"

    @property
    def description(self) -> str:
        return "the session's own raw/prices partition exists"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: AutomationContext) -> AutomationResult:
        candidates = context.candidate_subset
        graph = context.asset_graph
        if context.key == RAW_PRICES or not candidates.is_partitioned or not graph.has(RAW_PRICES):
            return AutomationResult(context=context, true_subset=candidates)
        prices_def = graph.get(RAW_PRICES).partitions_def
        if not (_on_trading_days(prices_def) and _on_trading_days(context.partitions_def)):
            return AutomationResult(context=context, true_subset=candidates)
        keys = candidates.expensively_compute_partition_keys()
        if not keys:
            return AutomationResult(context=context, true_subset=candidates)
        view = context.asset_graph_view
        wanted = view.get_subset_from_partition_keys(RAW_PRICES, prices_def, keys)
        missing = await view.compute_missing_subset(key=RAW_PRICES, from_subset=wanted)
        delivered = keys - set(missing.expensively_compute_partition_keys())
        return AutomationResult(
            context=context, true_subset=candidates.compute_intersection_with_partition_keys(delivered)
        )


class SameDayParentsReady(AutomationCondition):
    """True for a session whose automated parents are materialized for that same session, or (on the same
    partitioning) requested with it in this tick.

    The dependency conditions say "a parent was updated", not "the day's own input is there": a new day's prices
    updated the book's lookback windows, so the automation built a new day's book, risk and orders before that day's
    scores existed, and again after them (the production e2e: the book chain of a new day ran three to four times).
    A parent counts when it is read on the day itself, alone or in a window that holds the day; only the day is
    required (a window also reaches days before the data starts). A parent on the same partitioning requested in the
    same tick goes into the same run (or backfill), which orders the steps; a parent on another partitioning (the
    data layer under the model layer's ``partitions.model_days``) would go into another run, so it must exist first.
    Parents without automation are not required (a vendor's raw table: a vendor that is down must not stop the
    book)."""

    @property
    def name(self) -> str:
        return "same_day_parents_ready"

    @property
    def description(self) -> str:
        return "the session's own automated inputs exist (or are requested with it)"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: AutomationContext) -> AutomationResult:
        candidates = context.candidate_subset
        parents = same_day_parents(context.asset_graph, context.key)
        if not parents or not candidates.is_partitioned or not _on_trading_days(context.partitions_def):
            return AutomationResult(context=context, true_subset=candidates)
        keys = set(candidates.expensively_compute_partition_keys())
        view = context.asset_graph_view
        for parent in sorted(parents, key=lambda k: k.to_user_string()):
            if not keys:
                break
            pdef = context.asset_graph.get(parent).partitions_def
            # a day before the parent's first partition is never there
            known = {k for k in keys if pdef.has_partition_key(k)}
            wanted = view.get_subset_from_partition_keys(parent, pdef, known)
            absent = await view.compute_missing_subset(key=parent, from_subset=wanted)
            missing = set(absent.expensively_compute_partition_keys()) | (keys - known)
            requested = context.request_subsets_by_key.get(parent)
            if requested is not None and pdef == context.partitions_def:
                missing -= set(requested.expensively_compute_partition_keys())
            keys -= missing
        return AutomationResult(
            context=context, true_subset=candidates.compute_intersection_with_partition_keys(keys)
        )


def same_day_parents(graph, key: AssetKey) -> set[AssetKey]:
    """The automated daily parents ``key`` reads on its own session, alone or in a window that holds it."""
    from dagster import IdentityPartitionMapping, TimeWindowPartitionMapping

    out = set()
    for parent in graph.get(key).parent_keys:
        if not graph.has(parent):
            continue
        node = graph.get(parent)
        if node.automation_condition is None or not _on_trading_days(node.partitions_def):
            continue
        mapping = graph.get_partition_mapping(key, parent)
        if isinstance(mapping, IdentityPartitionMapping) or (
            isinstance(mapping, TimeWindowPartitionMapping)
            and mapping.start_offset <= 0 <= mapping.end_offset
        ):
            out.add(parent)
    return out


def _on_trading_days(pdef) -> bool:
    """Whether ``pdef`` is a trading-day partitioning (``partitions.DAILY_PARTITIONS``, whatever its start), compared
    by its calendar (cron, timezone, format) rather than by equality, so a daily partitioning with another start
    (``partitions.model_days``) counts too."""
    return isinstance(pdef, TimeWindowPartitionsDefinition) and any(
        (pdef.cron_schedule, pdef.timezone, pdef.fmt) == (d.cron_schedule, d.timezone, d.fmt)
        for d in DAILY_PARTITIONS
    )


downstream = (
    (
        (
            (AutomationCondition.in_latest_time_window(RECENT) & AutomationCondition.newly_missing())
            | (
                AutomationCondition.in_latest_time_window(RECENT + FORWARD_REACH)
                & AutomationCondition.any_deps_updated()
            )
        ).since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    )
    # last: they read the instance for the few candidates the conditions before them left
    & DayDelivered()
    & SameDayParentsReady()
).with_label("downstream_of_new_vendor_data")
