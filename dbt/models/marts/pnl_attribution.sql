-- Daily P&L per name with its side, sector and model. Gross P&L of a name on day D is the change of its marked
-- value minus what its fills cost at the open: mv(D) - mv(D-1) - signed shares x fill price; summed over names
-- this is exactly reports.backtest_pnl.gross_pnl. Costs are the name's fill costs plus its share of the day's
-- financing (by short value; by gross value on a day without shorts), so the sums reproduce total_cost/net_pnl.
with days as (
    select
        trade_date,
        lag(trade_date) over (order by trade_date) as prev_date,
        financing
    from {{ source('reports', 'backtest_pnl') }}
    where {{ in_lookback('trade_date', 30) }}
),
positions as (
    select trade_date, ticker, market_value
    from {{ source('reports', 'backtest_positions') }}
    where {{ in_lookback('trade_date', 30) }}
),
fills as (
    select
        trade_date, ticker,
        sum(case when side = 'buy' then shares else -shares end * price) as fill_value,
        sum(impact_cost + slippage_cost + commission + fee) as trading_costs
    from {{ source('reports', 'backtest_fills') }}
    where {{ in_window('trade_date') }}
    group by all
),
names as (
    select d.trade_date, d.prev_date, d.financing, p.ticker
    from days d join positions p on p.trade_date = d.trade_date
    union
    select d.trade_date, d.prev_date, d.financing, p.ticker
    from days d join positions p on p.trade_date = d.prev_date
    union
    select d.trade_date, d.prev_date, d.financing, f.ticker
    from days d join fills f on f.trade_date = d.trade_date
),
per_name as (
    select
        n.trade_date, n.prev_date, n.ticker, n.financing,
        coalesce(cur.market_value, 0) as mv,
        coalesce(prev.market_value, 0) as prev_mv,
        coalesce(f.fill_value, 0) as fill_value,
        coalesce(f.trading_costs, 0) as trading_costs
    from names n
    left join positions cur on cur.trade_date = n.trade_date and cur.ticker = n.ticker
    left join positions prev on prev.trade_date = n.prev_date and prev.ticker = n.ticker
    left join fills f on f.trade_date = n.trade_date and f.ticker = n.ticker
    where {{ in_window('n.trade_date') }}
),
financing_shares as (
    select
        *,
        case
            when sum(greatest(-mv, 0)) over (partition by trade_date) > 0
                then greatest(-mv, 0) / sum(greatest(-mv, 0)) over (partition by trade_date)
            when sum(abs(mv)) over (partition by trade_date) > 0
                then abs(mv) / sum(abs(mv)) over (partition by trade_date)
            else 1.0 / count(*) over (partition by trade_date)
        end as financing_share
    from per_name
),
scores as (
    select trade_date, ticker, champion_recipe from {{ source('models', 'alpha_scores') }}
    where {{ in_lookback('trade_date', 30) }}
),
day_recipe as (
    select trade_date, any_value(champion_recipe) as champion_recipe from scores group by all
),
universe as (
    select trade_date, ticker, sector from {{ source('raw', 'universe') }}
    where {{ in_lookback('trade_date', 30) }}
)
select
    p.trade_date,
    -- the side held through the day: today's position, else the one closed today, else the trade's direction
    case
        when p.mv > 0 then 'long'
        when p.mv < 0 then 'short'
        when p.prev_mv > 0 then 'long'
        when p.prev_mv < 0 then 'short'
        when p.fill_value > 0 then 'long'
        else 'short'
    end as side,
    coalesce(u.sector, u_prev.sector, 'unknown') as sector,
    -- the alpha source that chose the name: the champion recipe of the book it was traded from (decided at D-1)
    coalesce(s_prev.champion_recipe, s.champion_recipe, r_prev.champion_recipe, 'unattributed') as model,
    p.ticker,
    p.mv - p.prev_mv - p.fill_value as gross_pnl,
    p.trading_costs + p.financing * p.financing_share as costs,
    p.mv - p.prev_mv - p.fill_value - p.trading_costs - p.financing * p.financing_share as net_pnl
from financing_shares p
left join universe u on u.trade_date = p.trade_date and u.ticker = p.ticker
left join universe u_prev on u_prev.trade_date = p.prev_date and u_prev.ticker = p.ticker
left join scores s on s.trade_date = p.trade_date and s.ticker = p.ticker
left join scores s_prev on s_prev.trade_date = p.prev_date and s_prev.ticker = p.ticker
left join day_recipe r_prev on r_prev.trade_date = p.prev_date
union all
-- a day without any name (before the first fill) still pays or earns its financing: one 'cash' row
select d.trade_date, 'cash', 'cash', 'cash', 'CASH', 0.0, d.financing, -d.financing
from days d
where {{ in_window('d.trade_date') }} and d.financing <> 0
  and not exists (select 1 from per_name n where n.trade_date = d.trade_date)
