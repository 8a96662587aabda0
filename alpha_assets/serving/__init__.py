"""Serving: the dbt marts over the lake, the serving store they are published to, and (API helper) its readers.

Nothing here imports dbt, FastAPI or Plotly at module top level: the code location imports this package.
"""
