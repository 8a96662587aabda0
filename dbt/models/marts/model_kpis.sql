-- Per model and recipe: live IC (1 and 20 sessions), the ensemble weight of the day, health status and the
-- number of drifted features. Empty (with its columns) until the model layer has run.
with health as (
    select * from {{ source('monitoring', 'model_health') }} where {{ in_window('trade_date') }}
),
recipe_weights as (
    -- the day's ensemble weights per recipe (identical on every name of the day)
    select distinct trade_date, champion_recipe as recipe, champion_weights as weights
    from {{ source('models', 'alpha_scores') }} where {{ in_window('trade_date') }}
    union
    select distinct trade_date, challenger_recipe, challenger_weights
    from {{ source('models', 'alpha_scores') }} where {{ in_window('trade_date') }}
),
drift as (
    select trade_date, count(distinct feature) filter (where drift) as drifted_features
    from {{ source('monitoring', 'feature_drift') }}
    where {{ in_window('trade_date') }}
    group by all
)
select
    h.trade_date,
    h.model,
    h.recipe,
    h.champion,
    h.ic_1,
    h.ic_20,
    case when h.model = 'ensemble' then null
         else try_cast(json_extract(any_value(w.weights), '$."' || h.model || '"') as double) end as ensemble_weight,
    h.status,
    coalesce(any_value(d.drifted_features), 0)::bigint as drifted_features
from health h
left join recipe_weights w on w.trade_date = h.trade_date and w.recipe = h.recipe
left join drift d on d.trade_date = h.trade_date
group by h.trade_date, h.model, h.recipe, h.champion, h.ic_1, h.ic_20, h.status
