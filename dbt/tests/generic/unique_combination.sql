{# A composite key is unique (dbt's built-in `unique` takes one column; no dbt_utils: nothing from the hub). #}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
