"""Portfolio assets."""
