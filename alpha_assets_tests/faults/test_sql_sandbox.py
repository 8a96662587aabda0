"""`alpha sql` cannot write and reads only the lake (issue 19 #5): DuckDB's own sandbox refuses every bypass found
(a COPY inside EXPLAIN ANALYZE, IMPORT DATABASE running a schema.sql, reads of any file, undoing the settings), each
with one line; normal queries keep working; one corrupt table is skipped with a warning instead of taking the shell
down.

Each bypass is tried twice: through ``LakeSQL.query``/the CLI as a user would, and straight on the DuckDB connection,
past the statement check, so the test proves DuckDB refuses it and not a list of statement types."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from alpha_assets.cli import main
from alpha_assets.home import AlphaHome
from alpha_assets_tests.conftest import WORLD_START
from partitions.calendar import sessions_from
from resources.lake import DeltaLake
from resources.sql import LakeSQL, ReadOnlyError

DAYS = sessions_from(WORLD_START, 5)


@pytest.fixture(scope="module")
def lake_template(tmp_path_factory, world_template):
    """A home with raw.prices and raw.universe over five sessions, materialized once for the module."""
    from dagster import DagsterInstance

    from alpha_assets.app.runs import materialize

    root = tmp_path_factory.mktemp("sql") / "alpha"
    shutil.copytree(world_template, root)
    home = AlphaHome(root).ensure()
    saved = {k: os.environ.get(k) for k in ("ALPHA_HOME", "DAGSTER_HOME")}
    os.environ.update(ALPHA_HOME=str(root), DAGSTER_HOME=str(home.dagster))
    try:
        with DagsterInstance.ephemeral() as inst:
            res = materialize(
                home,
                DAYS[0],
                DAYS[-1],
                select=["raw/prices", "raw/universe"],
                quiet=True,
                instance=inst,
                job_name="daily_data",
            )
        assert res["success"], res
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return root


@pytest.fixture
def lake_home(lake_template, tmp_path, monkeypatch) -> AlphaHome:
    """A private copy (a test may corrupt it), with ALPHA_HOME pointing at it."""
    root = tmp_path / "alpha"
    shutil.copytree(lake_template, root)
    monkeypatch.setenv("ALPHA_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    return AlphaHome(root)


def _tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _refused_in_one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_copy_inside_explain_analyze_writes_nothing(lake_home, tmp_path, capsys):
    target = tmp_path / "pwned.csv"
    sql = f"EXPLAIN ANALYZE COPY (SELECT 42 AS x) TO '{target}'"
    err = _refused_in_one_line(capsys, ["sql", sql])
    assert "file system operations are disabled" in err
    db = LakeSQL(DeltaLake(lake_home.lake))
    with pytest.raises(duckdb.PermissionException):  # DuckDB itself, past the statement check
        db.con.execute(sql)
    with pytest.raises(duckdb.PermissionException):
        db.con.execute(f"COPY (SELECT 42 AS x) TO '{target}'")
    assert not target.exists()


def test_import_database_cannot_run_a_script_against_the_lake(lake_home, tmp_path, capsys):
    log = lake_home.lake / "raw" / "prices" / "_delta_log"
    before = _tree(lake_home.lake)
    rows = DeltaLake(lake_home.lake).read("raw", "prices").height
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "schema.sql").write_text(
        f"COPY (SELECT 'garbage' AS x) TO '{log / '00000000000000000099.json'}';\n"
    )
    (evil / "load.sql").write_text("")
    _refused_in_one_line(capsys, ["sql", f"IMPORT DATABASE '{evil}'"])
    db = LakeSQL(DeltaLake(lake_home.lake))
    with pytest.raises(duckdb.PermissionException):
        db.con.execute(f"IMPORT DATABASE '{evil}'")
    assert _tree(lake_home.lake) == before
    assert DeltaLake(lake_home.lake).read("raw", "prices").height == rows
    assert main(["sql", "SELECT count(*) AS n FROM raw.prices", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n"] == rows


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('{lake}/raw/prices/**/*.parquet')",  # even the lake's own files: views only
    ],
)
def test_no_file_can_be_read_but_the_lakes_tables(lake_home, capsys, sql):
    sql = sql.format(lake=lake_home.lake)
    err = _refused_in_one_line(capsys, ["sql", sql])
    assert "refused by the SQL sandbox" in err
    with pytest.raises(duckdb.PermissionException):
        LakeSQL(DeltaLake(lake_home.lake)).con.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "SET allowed_directories = ['/']",
        "SET temp_directory = '/tmp'",
        "PRAGMA enable_profiling = 'json'",
    ],
)
def test_the_sandbox_cannot_be_switched_off(lake_home, capsys, sql):
    _refused_in_one_line(capsys, ["sql", sql])
    db = LakeSQL(DeltaLake(lake_home.lake))
    with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
        db.con.execute(sql)
    with pytest.raises(ReadOnlyError):
        db.query(sql)
    with pytest.raises(duckdb.PermissionException):  # still sandboxed afterwards
        db.con.execute("SELECT * FROM read_text('/etc/passwd')")


def test_no_database_file_can_be_attached_and_the_marts_stay_unwritable(lake_home, tmp_path, capsys):
    marts = lake_home.root / "marts" / "marts.duckdb"
    marts.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(marts)) as con:
        con.execute("CREATE TABLE fund_performance AS SELECT DATE '2024-01-02' AS trade_date, 1.0e6 AS nav")
    before = _tree(marts.parent)
    assert main(["sql", "SELECT nav FROM marts.fund_performance", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["nav", "1000000.0"]
    db = LakeSQL(DeltaLake(lake_home.lake), marts_db=marts)
    # read into memory the first time a query names it
    assert db.query("SELECT nav FROM marts.fund_performance")["nav"].to_list() == [1e6]
    for sql in (f"ATTACH '{marts}' AS m2", f"ATTACH '{tmp_path / 'new.duckdb'}' AS n"):
        with pytest.raises(duckdb.PermissionException):
            db.con.execute(sql)
    with pytest.raises(duckdb.Error):  # a view over an in-memory copy: nothing to write through
        db.con.execute("INSERT INTO marts.fund_performance VALUES (DATE '2024-01-03', 0.0)")
    assert _tree(marts.parent) == before and not (tmp_path / "new.duckdb").exists()


def test_reads_work_in_every_format_and_in_the_shell(lake_home, capsys):
    n = DeltaLake(lake_home.lake).read("raw", "prices").height
    assert main(["sql", "SELECT count(*) AS n FROM raw.prices", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", str(n)]
    assert (
        main(["sql", "SELECT ticker, close FROM raw.prices ORDER BY ticker LIMIT 3", "--format", "json"]) == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(["sql", "DESCRIBE raw.prices"]) == 0
    assert "close" in capsys.readouterr().out
    # the shell: a refused statement is one line and the session goes on
    script = "SELECT * FROM read_text('/etc/passwd');\nSELECT count(*) AS n FROM raw.prices;\nexit\n"
    alpha = Path(sys.executable).parent / "alpha"
    out = subprocess.run(
        [str(alpha), "sql"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ALPHA_HOME": str(lake_home.root)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stdout + out.stderr
    assert out.stderr.count("refused by the SQL sandbox") == 1
    assert str(n) in out.stdout


def test_one_corrupt_table_is_skipped_with_one_warning_and_the_others_work(lake_home, capsys):
    log = lake_home.lake / "raw" / "universe" / "_delta_log"
    last = max(int(p.stem) for p in log.glob("*.json"))
    (log / f"{last + 1:020d}.json").write_text("this is not a delta commit\n")
    n = DeltaLake(lake_home.lake).read("raw", "prices").height
    assert main(["sql", "SELECT count(*) AS n FROM raw.prices", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["n", str(n)]
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == 1 and "raw.universe" in warnings[0] and "skipped" in warnings[0], warnings
    assert main(["tables", "--format", "json"]) == 0
    listed = {t["name"] for t in json.loads(capsys.readouterr().out)}
    assert "raw.prices" in listed and "raw.universe" not in listed
    assert main(["sql", "SELECT * FROM raw.universe"]) == 1  # named, not crashed
    assert "raw.universe" in capsys.readouterr().err


def test_a_query_opens_only_the_tables_it_names(lake_home):
    """`alpha sql "SELECT 1"` reads no table (issue 20 #7); a query registers the tables it names, quoted or not,
    and one listing the catalog sees every table; the sandbox holds for views created after it was locked."""
    db = LakeSQL(DeltaLake(lake_home.lake))
    assert {"raw.prices", "raw.universe"} <= set(db.tables)
    assert db.query("SELECT 1 AS one")["one"].to_list() == [1] and db.registered == []
    n = db.query('SELECT count(*) AS n FROM "raw"."prices"')["n"][0]
    assert n == DeltaLake(lake_home.lake).read("raw", "prices").height and db.registered == ["raw.prices"]
    listed = set(
        db.query("SELECT table_schema || '.' || table_name AS t FROM information_schema.tables")["t"]
    )
    assert {"raw.prices", "raw.universe"} <= listed and set(db.registered) >= {"raw.prices", "raw.universe"}
    with pytest.raises(duckdb.PermissionException):
        db.con.execute(f"SELECT * FROM read_parquet('{lake_home.lake}/raw/prices/**/*.parquet')")
