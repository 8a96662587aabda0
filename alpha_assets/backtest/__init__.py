"""Backtest assets."""
