-- Per asset and trading day: the run that last materialized the partition (duration, rows written, when),
-- freshness against the session close (16:00 New York), vendor failovers and quarantined files.
-- monitoring.pipeline_runs is written by the Python asset that reads the Dagster instance (serving/assets.py).
with runs as (
    select * from {{ source('monitoring', 'pipeline_runs') }} where {{ in_window('trade_date') }}
),
failovers as (
    -- price fields (open, high, low, close) served by the backup vendor
    select trade_date, 'raw/prices' as asset, 4 * count(*) as failovers
    from {{ source('raw', 'prices') }}
    where {{ in_window('trade_date') }} and source = 'B'
    group by all
)
select
    r.trade_date,
    r.asset,
    r.run_seconds,
    r.rows_written,
    timezone('UTC', r.materialized_at) as materialized_at,
    date_diff('second',
              timezone('America/New_York', r.trade_date + time '16:00:00'),
              r.materialized_at) / 3600.0 as freshness_hours,
    coalesce(f.failovers, 0)::bigint as failovers,
    coalesce(r.quarantined_files, 0)::bigint as quarantined_files
from runs r
left join failovers f using (trade_date, asset)
