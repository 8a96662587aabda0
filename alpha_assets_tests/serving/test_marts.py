"""The dbt marts against a tiny synthetic lake (written with the lake's own writer, the backtest run by the real
engine): P&L attribution, exposures and risk reconcile with the lake; a window run replaces only its window; the key
tests fail on a planted duplicate; `alpha sql` sees marts.<name>; the model marts are empty before the models."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date

import duckdb
import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.backtest import CostModel, run_vectorised
from alpha_assets.serving.marts import DBT_DIR, dbt_env, dbt_executable
from partitions.calendar import sessions_from
from resources.lake import DeltaLake

pytestmark = pytest.mark.slow

SESSIONS = sessions_from(date(2026, 1, 2), 20)
TICKERS = [f"T{i:02d}" for i in range(12)]
SECTORS = ["Tech", "Energy", "Health"]


def build_lake(root) -> DeltaLake:
    rng = np.random.default_rng(5)
    lake = DeltaLake(root)
    n, t = len(TICKERS), len(SESSIONS)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (t, n)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, (t, n)))
    cell = {"trade_date": np.repeat(SESSIONS, n).tolist(), "ticker": TICKERS * t}
    prices = pl.DataFrame(
        {
            **cell,
            "open": open_.ravel(),
            "close": close.ravel(),
            "volume": np.full(t * n, 2e6),
            "source": ["A"] * (t * n - 3) + ["B"] * 3,
        }
    )
    universe = pl.DataFrame(
        {
            **cell,
            "sector": [SECTORS[i % 3] for i in range(n)] * t,
            "country": [["US", "CA"][i % 2] for i in range(n)] * t,
        }
    )
    score = rng.normal(size=(t, n))
    side = np.where(score > np.median(score, axis=1, keepdims=True), 1.0, -1.0)
    weight = side / n
    book = universe.with_columns(
        pl.Series("weight", weight.ravel()),
        pl.Series("alpha_score", score.ravel()),
        pl.Series("side", np.where(side.ravel() > 0, "long", "short")),
        pl.lit(1.0 / n).alias("hrp_weight"),
        pl.lit(None, pl.Utf8).alias("binding_limit"),
    )
    res = run_vectorised(prices, book.select("trade_date", "ticker", "weight"), CostModel(), 10_000_000.0)
    risk = pl.DataFrame(
        {
            "trade_date": SESSIONS,
            "var_hist_1d": rng.uniform(0.005, 0.02, t),
            "var_hist_5d": rng.uniform(0.01, 0.04, t),
            "es_1d": rng.uniform(0.01, 0.03, t),
            "drawdown": rng.uniform(0, 0.05, t),
            "drawdown_control": [False] * (t - 1) + [True],
            "gross_multiplier_next": [1.0] * (t - 1) + [0.5],
            "breaches": [None] * (t - 1) + ["var_1d"],
        }
    )
    lo, hi = SESSIONS[0], SESSIONS[-1]
    for layer, asset, frame in [
        ("raw", "prices", prices),
        ("raw", "universe", universe),
        ("portfolio", "target_weights", book),
        ("risk", "risk_report", risk),
        ("reports", "backtest_pnl", res.pnl),
        ("reports", "backtest_positions", res.positions),
        ("reports", "backtest_fills", res.fills),
    ]:
        lake.write_window(layer, asset, frame, lo, hi)
    return lake


def dbt(home, *args: str) -> subprocess.CompletedProcess:
    env = {
        **__import__("os").environ,
        **dbt_env(lake_root=str(home / "lake"), marts_db=home / "marts" / "marts.duckdb"),
    }
    return subprocess.run(
        [dbt_executable(), *args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)],
        env=env,
        cwd=DBT_DIR,
        capture_output=True,
        text=True,
    )


def window(a: date, b: date) -> list[str]:
    return ["--vars", f'{{"start_date": "{a}", "end_date": "{b}"}}']


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    home = tmp_path_factory.mktemp("marts_home")
    (home / "landing").mkdir()
    lake = build_lake(home / "lake")
    run = dbt(home, "build")
    assert run.returncode == 0, run.stdout[-3000:]
    return home, lake


def marts(home, sql: str, params=None):
    con = duckdb.connect(str(home / "marts" / "marts.duckdb"), read_only=True)
    try:
        return pl.from_arrow(con.execute(sql, params or []).to_arrow_table())
    finally:
        con.close()


def test_pnl_by_sector_side_and_name_sums_to_the_days_total_pnl(built):
    home, lake = built
    truth = lake.read("reports", "backtest_pnl").select("trade_date", "gross_pnl", "total_cost", "net_pnl")
    for grouping in (["sector"], ["side"], ["ticker"], ["side", "sector", "model", "ticker"]):
        cols = ", ".join(grouping)
        by_day = marts(
            home,
            f"""SELECT trade_date, sum(gross_pnl) AS g, sum(costs) AS c, sum(net_pnl) AS n
                                 FROM (SELECT trade_date, {cols}, sum(gross_pnl) gross_pnl, sum(costs) costs,
                                       sum(net_pnl) net_pnl FROM pnl_attribution GROUP BY ALL)
                                 GROUP BY 1""",
        )
        joined = truth.join(by_day, on="trade_date", how="left")
        assert joined.height == len(SESSIONS)
        scale = joined["gross_pnl"].abs().max()
        for ours, theirs in (("g", "gross_pnl"), ("c", "total_cost"), ("n", "net_pnl")):
            diff = (joined[ours].fill_null(0.0) - joined[theirs]).abs().max()
            assert diff <= 1e-9 * scale, (grouping, theirs, diff)
    sides = set(marts(home, "SELECT DISTINCT side FROM pnl_attribution")["side"])
    assert {"long", "short"} <= sides
    assert set(
        marts(home, "SELECT DISTINCT sector FROM pnl_attribution WHERE side <> 'cash'")["sector"]
    ) <= set(SECTORS)


def test_exposures_gross_and_net_equal_the_book(built):
    home, lake = built
    book = (
        lake.read("portfolio", "target_weights")
        .group_by("trade_date")
        .agg(pl.col("weight").abs().sum().alias("gross"), pl.col("weight").sum().alias("net"))
    )
    total = marts(home, "SELECT trade_date, gross, net, long, short FROM exposures WHERE dimension = 'total'")
    joined = book.join(total, on="trade_date", suffix="_mart")
    assert joined.height == len(SESSIONS)
    assert (joined["gross"] - joined["gross_mart"]).abs().max() < 1e-12
    assert (joined["net"] - joined["net_mart"]).abs().max() < 1e-12
    assert (joined["short"] <= 0).all()
    by_sector = marts(
        home, "SELECT trade_date, sum(gross) g FROM exposures WHERE dimension = 'sector' GROUP BY 1"
    )
    assert (
        book.join(by_sector, on="trade_date").select((pl.col("gross") - pl.col("g")).abs().max()).item()
    ) < 1e-12
    names = marts(home, "SELECT trade_date, count(*) n FROM exposures WHERE dimension = 'name' GROUP BY 1")
    assert names["n"].to_list() == [10] * len(SESSIONS)


def test_risk_summary_equals_the_risk_report(built):
    home, lake = built
    risk = lake.read("risk", "risk_report").sort("trade_date")
    summary = marts(home, "SELECT * FROM risk_summary ORDER BY trade_date")
    assert summary["var_1d"].to_list() == pytest.approx(risk["var_hist_1d"].to_list())
    assert summary["var_5d"].to_list() == pytest.approx(risk["var_hist_5d"].to_list())
    assert summary["es_1d"].to_list() == pytest.approx(risk["es_1d"].to_list())
    assert summary["drawdown"].to_list() == pytest.approx((-risk["drawdown"]).to_list())
    assert summary["var_limit_usage"].to_list() == pytest.approx((risk["var_hist_1d"] / 0.02).to_list())
    last = summary.row(-1, named=True)
    assert (last["drawdown_state"], last["breaches"]) == ("reduced", "var_1d")
    assert summary["breaches"][0] == ""


def test_model_kpis_is_empty_but_present_before_the_model_layer(built):
    home, _ = built
    kpis = marts(home, "SELECT * FROM model_kpis")
    assert kpis.height == 0
    assert {
        "trade_date",
        "model",
        "recipe",
        "champion",
        "ic_1",
        "ensemble_weight",
        "drifted_features",
    } <= set(kpis.columns)


def test_a_window_run_replaces_only_that_window_and_a_duplicate_key_fails_the_tests(built, tmp_path):
    home, lake = built
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    lake = DeltaLake(copy / "lake")
    day, next_day = SESSIONS[5], SESSIONS[6]
    risk = lake.read("risk", "risk_report").with_columns(pl.lit(0.03).alias("var_hist_1d"))
    lake.write_window("risk", "risk_report", risk, SESSIONS[0], SESSIONS[-1])
    before = marts(copy, "SELECT trade_date, var_1d FROM risk_summary ORDER BY 1")
    run = dbt(copy, "build", "--select", "risk_summary", *window(day, day))
    assert run.returncode == 0, run.stdout[-3000:]
    after = marts(copy, "SELECT trade_date, var_1d FROM risk_summary ORDER BY 1")
    assert after.height == before.height == len(SESSIONS)
    changed = after.join(before, on="trade_date").filter(pl.col("var_1d") != pl.col("var_1d_right"))
    assert changed["trade_date"].to_list() == [day]
    assert after.filter(pl.col("trade_date") == next_day)["var_1d"].item() != 0.03

    con = duckdb.connect(str(copy / "marts" / "marts.duckdb"))
    con.execute("INSERT INTO risk_summary SELECT * FROM risk_summary WHERE trade_date = ?", [next_day])
    con.close()
    failing = dbt(copy, "test", "--select", "risk_summary")
    assert failing.returncode != 0
    assert "unique_combination_risk_summary_trade_date" in failing.stdout and "FAIL" in failing.stdout


def test_alpha_sql_reads_the_marts(built, capsys, monkeypatch):
    from alpha_assets.cli import main

    home, _ = built
    monkeypatch.delenv("ALPHA_MARTS_DB", raising=False)
    rc = main(
        [
            "--home",
            str(home),
            "sql",
            "SELECT count(DISTINCT sector) AS n FROM marts.pnl_attribution WHERE side <> 'cash'",
            "--format",
            "csv",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and out.split() == ["n", "3"]
    assert main(["--home", str(home), "tables", "--format", "csv"]) == 0
    assert "marts.pnl_attribution" in capsys.readouterr().out


def test_alpha_sql_says_when_the_marts_are_missing(tmp_path, capsys, monkeypatch):
    from alpha_assets.cli import main

    monkeypatch.delenv("ALPHA_MARTS_DB", raising=False)
    (tmp_path / "landing").mkdir()
    build_lake(tmp_path / "lake")
    assert main(["--home", str(tmp_path), "sql", "SELECT count(*) FROM raw.prices"]) == 0
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "sql", "SELECT * FROM marts.risk_summary"]) != 0
    assert "no marts at" in capsys.readouterr().err
