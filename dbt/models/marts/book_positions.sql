-- The day's book (portfolio.target_weights) with each name's three largest |SHAP| features (JSON; NULL when the
-- day has no SHAP rows).
with book as (
    select * from {{ source('portfolio', 'target_weights') }} where {{ in_window('trade_date') }}
),
ranked_shap as (
    select
        trade_date, ticker, feature, shap_value,
        row_number() over (partition by trade_date, ticker order by abs(shap_value) desc, feature) as rank
    from (
        -- one value per feature: several models may explain the same name
        select trade_date, ticker, feature, avg(shap_value) as shap_value
        from {{ source('models', 'shap_values') }}
        where {{ in_window('trade_date') }}
        group by all
    )
),
top_features as (
    select
        trade_date, ticker,
        to_json(list({'feature': feature, 'shap_value': shap_value} order by rank))::varchar as top_features
    from ranked_shap
    where rank <= 3
    group by all
)
select
    b.trade_date,
    b.ticker,
    b.side,
    b.weight,
    b.sector,
    b.country,
    b.alpha_score,
    t.top_features,
    b.hrp_weight,
    b.binding_limit
from book b
left join top_features t using (trade_date, ticker)
