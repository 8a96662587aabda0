"""Monitoring's part of the code location: model health and feature drift, the retraining sensor, and the
freshness checks on the daily feeds with the sensor that runs them."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    Definitions,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
)

from alpha_assets.keys import RAW_OIL_TANK_LEVELS, RAW_PARKING_LOT_COUNTS, RAW_PRICES, RAW_WEB_SIGNALS
from alpha_assets.monitoring.alert_sensors import ALERT_SENSORS
from alpha_assets.monitoring.assets import feature_drift, model_health, retraining_sensor

ASSETS = [model_health, feature_drift]

# Daily feeds must have yesterday's session by 10:00 UTC on the next weekday (WARN: the book still trades on
# the last published values, and alt_features reports their age).
DAILY_FEEDS = [RAW_PRICES, RAW_PARKING_LOT_COUNTS, RAW_OIL_TANK_LEVELS, RAW_WEB_SIGNALS]
freshness_checks = build_time_partition_freshness_checks(
    assets=DAILY_FEEDS, deadline_cron="0 10 * * 2-6", timezone="UTC"
)
# STOPPED by default: it launches check runs on a timer (a calm UI launches nothing); start it in production.
freshness_sensor = build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    minimum_interval_seconds=600,
    default_status=DefaultSensorStatus.STOPPED,
)
FRESHNESS = AssetSelection.checks(*freshness_checks)  # run by their sensor, not inside the daily runs

defs = Definitions(
    assets=ASSETS,
    asset_checks=freshness_checks,
    sensors=[retraining_sensor, freshness_sensor, *ALERT_SENSORS],  # alerts: monitoring/alert_sensors.py
)
