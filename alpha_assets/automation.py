"""Declarative automation shared by downstream assets: a new or corrected vendor file flows downstream."""

from __future__ import annotations

from datetime import timedelta

from dagster import AutomationCondition

# Like eager(), but over the last ~6 weeks of partitions (a corrected price from last week must refresh the
# features whose lookback includes it, and labels fill in as their horizon arrives), and not blocked by missing
# upstream partitions before the data starts (a 125-session lookback always reaches some).
downstream = (
    AutomationCondition.in_latest_time_window(timedelta(days=45))
    & (AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated()).since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("downstream_of_new_vendor_data")
