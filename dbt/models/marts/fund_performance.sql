-- The fund's daily line from the backtest: NAV, P&L gross and net of every cost, returns, drawdown (<= 0).
select
    trade_date,
    equity as nav,
    gross_pnl,
    total_cost as costs,
    net_pnl,
    gross_pnl / nullif(equity - net_pnl, 0) as gross_return,
    "return" as net_return,
    drawdown,
    turnover,
    gross_exposure,
    net_exposure
from {{ source('reports', 'backtest_pnl') }}
where {{ in_window('trade_date') }}
