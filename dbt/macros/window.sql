{# The partition window passed by Dagster as vars; no vars = every day. #}
{% macro in_window(column) -%}
  {%- if var('start_date') -%}
    {{ column }} between date '{{ var("start_date") }}' and date '{{ var("end_date") or var("start_date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{# The window widened backwards by `days` calendar days (for lookbacks: previous positions, betas). #}
{% macro in_lookback(column, days) -%}
  {%- if var('start_date') -%}
    {{ column }} between date '{{ var("start_date") }}' - interval {{ days }} day
      and date '{{ var("end_date") or var("start_date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
