"""Risk assets."""
