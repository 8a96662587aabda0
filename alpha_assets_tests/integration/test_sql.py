"""`alpha sql` / `alpha tables`: views named <layer>.<asset>, read-only, csv/json output."""

from __future__ import annotations

import json

import pytest

from alpha_assets.app.runs import materialize
from alpha_assets.cli import main
from alpha_assets_tests.conftest import WORLD_START
from partitions.calendar import sessions_from
from resources.lake import DeltaLake
from resources.sql import LakeSQL, ReadOnlyError


@pytest.fixture
def lake_home(home, instance):
    days = sessions_from(WORLD_START, 40)
    assert materialize(home, days[0], days[9], quiet=True, instance=instance, job_name="daily_data")[
        "success"
    ]
    return home


def test_every_table_is_a_view_named_layer_dot_asset(lake_home):
    db = LakeSQL(DeltaLake(lake_home.lake))
    assert {"raw.prices", "raw.universe", "features.price_features", "features.labels"} <= set(db.tables)
    n = db.query("SELECT count(*) AS n FROM raw.prices")["n"][0]
    assert n == DeltaLake(lake_home.lake).read("raw", "prices").height
    joined = db.query(
        "SELECT count(*) AS n FROM raw.prices p JOIN features.price_features f USING (trade_date, ticker)"
    )
    assert joined["n"][0] == n


@pytest.mark.parametrize(
    "stmt",
    [
        "DELETE FROM raw.prices",
        "CREATE TABLE x AS SELECT 1",
        "DROP VIEW raw.prices",
        "COPY raw.prices TO '/tmp/x.csv'",
        "INSERT INTO raw.prices SELECT * FROM raw.prices",
    ],
)
def test_write_statements_are_refused_with_a_clear_error(lake_home, stmt):
    db = LakeSQL(DeltaLake(lake_home.lake))
    with pytest.raises(ReadOnlyError, match="read-only"):
        db.query(stmt)
    assert db.query("SELECT count(*) AS n FROM raw.prices")["n"][0] > 0


def test_cli_prints_csv_and_json_and_lists_tables(lake_home, capsys):
    assert main(["sql", "SELECT ticker FROM raw.prices ORDER BY ticker LIMIT 2", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ticker" and len(out) == 3
    assert main(["sql", "SELECT count(*) AS n FROM raw.universe", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n"] > 0
    assert main(["sql", "DELETE FROM raw.prices"]) == 2
    assert main(["tables", "--format", "json"]) == 0
    tables = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert tables["raw.prices"]["last_date"] == str(sessions_from(WORLD_START, 40)[9])


def test_the_interactive_shell_understands_commands_and_never_drops_rows_silently(home, instance):
    """help / .tables / .schema / exit work, a blank or lone ';' is not an error trace, and a result longer than the
    screen says how many rows it has (issue 9 #11)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    days = sessions_from(WORLD_START, 40)
    assert materialize(home, days[0], days[9], quiet=True, instance=instance, job_name="daily_data")[
        "success"
    ]
    script = "help\n.tables\n.schema raw.prices\n   \nSELECT * FROM raw.prices\n;\n.nope\nexit\n"
    alpha = Path(sys.executable).parent / "alpha"
    out = subprocess.run(
        [str(alpha), "sql"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ALPHA_HOME": str(home.root)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stdout + out.stderr
    assert ".schema TABLE" in out.stdout  # help
    assert "raw.prices" in out.stdout and "rows" in out.stdout  # .tables
    assert "rows, 50 shown" in out.stdout  # 10 days x 12 names = 120 rows, 50 shown, and it says so
    assert "unknown command '.nope'" in out.stdout
