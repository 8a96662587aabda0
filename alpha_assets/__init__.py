"""The alpha asset platform."""
