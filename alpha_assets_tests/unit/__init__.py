"""Unit tests of the pure library functions (no dagster)."""
