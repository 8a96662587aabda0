"""Tests of the alpha asset platform."""
