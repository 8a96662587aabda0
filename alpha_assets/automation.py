"""Declarative automation shared by downstream assets: a new or corrected vendor file flows downstream."""

from __future__ import annotations

from datetime import timedelta

from dagster import AutomationCondition

from partitions import LABEL_HORIZONS

# Missing partitions are filled over the last ~6 weeks only (not blocked by missing upstream partitions before the
# data starts: a 125-session lookback always reaches some), so opening the UI never backfills history.
RECENT = timedelta(days=45)
# An updated partition also refreshes what reads it through a forward mapping: the labels of the sessions before
# a re-run day (label_horizon reaches max(LABEL_HORIZONS) sessions ahead, ~1.5 calendar days per session).
FORWARD_REACH = timedelta(days=int(max(LABEL_HORIZONS) * 1.5) + 5)

downstream = (
    (
        (AutomationCondition.in_latest_time_window(RECENT) & AutomationCondition.newly_missing())
        | (
            AutomationCondition.in_latest_time_window(RECENT + FORWARD_REACH)
            & AutomationCondition.any_deps_updated()
        )
    ).since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("downstream_of_new_vendor_data")
