"""The outbox: files the platform hands to other systems (daily trade lists for execution, reports)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from dagster import ConfigurableResource


class OutboxResource(ConfigurableResource):
    root: str

    def write_orders(self, day: date, orders: pl.DataFrame) -> str:
        """Write ``orders/orders_YYYY-MM-DD.csv`` atomically (temp file + rename): a reader never sees half a file."""
        path = Path(self.root) / "orders" / f"orders_{day.isoformat()}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        orders.write_csv(tmp)
        tmp.replace(path)
        return str(path)

    def report_dir(self, name: str) -> Path:
        p = Path(self.root) / "reports" / name
        p.mkdir(parents=True, exist_ok=True)
        return p
