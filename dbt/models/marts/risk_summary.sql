-- The day's risk against its limits (VaR as positive fractions of NAV; drawdown <= 0).
with book as (
    select trade_date, sum(abs(weight)) as gross_exposure
    from {{ source('portfolio', 'target_weights') }}
    where {{ in_window('trade_date') }}
    group by all
)
select
    r.trade_date,
    abs(r.var_hist_1d) as var_1d,
    abs(r.es_1d) as es_1d,
    abs(r.var_hist_5d) as var_5d,
    {{ var('daily_var_limit') }}::double as var_limit,
    abs(r.var_hist_1d) / {{ var('daily_var_limit') }} as var_limit_usage,
    coalesce(b.gross_exposure, 0) as gross_exposure,
    {{ var('gross_limit') }}::double as gross_limit,
    coalesce(b.gross_exposure, 0) / {{ var('gross_limit') }} as gross_limit_usage,
    case when r.drawdown = 0 then 0.0 else -abs(r.drawdown) end as drawdown,
    -- beyond the drawdown threshold the next day's gross is cut (risk_report.gross_multiplier_next)
    case
        when r.gross_multiplier_next = 0 then 'stopped'
        when r.drawdown_control then 'reduced'
        else 'normal'
    end as drawdown_state,
    coalesce(r.breaches, '') as breaches
from {{ source('risk', 'risk_report') }} r
left join book b using (trade_date)
where {{ in_window('r.trade_date') }}
