-- The book's exposures as fractions of NAV: total, by sector, by country, beta-weighted, and the top names.
-- Beta: 60-session regression of each name's close-to-close return on the equal-weighted universe return.
with book as (
    select trade_date, ticker, weight, sector, country
    from {{ source('portfolio', 'target_weights') }}
    where {{ in_window('trade_date') }}
),
returns as (
    select
        trade_date, ticker,
        close / lag(close) over (partition by ticker order by trade_date) - 1 as ret
    from {{ source('raw', 'prices') }}
    where {{ in_lookback('trade_date', 100) }}
),
market as (
    select trade_date, avg(ret) as market_ret from returns where ret is not null group by all
),
betas as (
    select
        r.trade_date, r.ticker,
        regr_slope(r.ret, m.market_ret) over (
            partition by r.ticker order by r.trade_date rows between 59 preceding and current row
        ) as beta
    from returns r join market m using (trade_date)
    where r.ret is not null
),
buckets as (
    select trade_date, 'total' as dimension, 'book' as bucket, weight from book
    union all
    select trade_date, 'sector', coalesce(sector, 'unknown'), weight from book
    union all
    select trade_date, 'country', coalesce(country, 'unknown'), weight from book
    union all
    select b.trade_date, 'beta', 'book', b.weight * coalesce(x.beta, 1.0)
    from book b left join betas x using (trade_date, ticker)
    union all
    select trade_date, 'name', ticker, weight from (
        select *, row_number() over (partition by trade_date order by abs(weight) desc, ticker) as rank
        from book
    ) where rank <= {{ var('top_names') }}
)
select
    trade_date,
    dimension,
    bucket,
    sum(greatest(weight, 0)) as long,
    sum(least(weight, 0)) as short,
    sum(abs(weight)) as gross,
    sum(weight) as net
from buckets
group by all
