"""The CLI answers a user's mistakes with one line and exit code 2, never a traceback; both key spellings work and
a multi-asset's siblings come along (issue 9 #9)."""

from __future__ import annotations

import pytest

from alpha_assets.app.runs import resolve_selection
from alpha_assets.cli import main


@pytest.fixture
def defs(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    from alpha_assets.definitions import build_definitions

    return build_definitions()


def test_sql_names_and_dagster_keys_select_the_same_assets_with_their_siblings(defs):
    data_job, book_job = defs.resolve_job_def("daily_data"), defs.resolve_job_def("daily_book")
    a = {k.to_user_string() for k in resolve_selection(data_job, ["raw.prices"])}
    b = {k.to_user_string() for k in resolve_selection(data_job, ["raw/prices"])}
    assert a == b == {"raw/prices", "raw/price_reconciliation"}
    both = {k.to_user_string() for k in resolve_selection(book_job, ["portfolio/target_weights"])}
    assert both == {"portfolio/target_weights", "portfolio/weights_audit"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["materialize", "--select", "raw.pricez"], "did you mean raw/prices?"),
        (["materialize", "--select", "no/such_asset"], "unknown asset 'no/such_asset'"),
        (["materialize", "--from", "2026-13-01"], "is not a date: use YYYY-MM-DD"),
        (["materialize", "--from", "2026-11-30", "--to", "2026-11-01"], "is after --to"),
        (["explain", "AAA", "--date", "yesterday"], "is not a date"),
    ],
)
def test_a_mistake_is_one_line_and_exit_code_2(home, capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_missing_or_mistyped_home_is_an_error_and_creates_nothing(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "typo"
    monkeypatch.setenv("ALPHA_HOME", str(missing))
    for argv in (["tables"], ["sql", "SELECT 1"], ["materialize"], ["train"]):
        assert main(argv) == 2
        assert "is not an alpha home" in capsys.readouterr().err
    assert not missing.exists()


@pytest.mark.parametrize("command", ["world", "demo"])
def test_without_the_demo_world_package_a_world_command_says_so_in_one_line(
    tmp_path, monkeypatch, capsys, command
):
    """The production image leaves the simulator (alpha_world) out: there, asking for a world is one line, exit 2,
    and nothing is created."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "alpha_world" else real(name, *a)
    )
    target = tmp_path / "alpha"
    monkeypatch.setenv("ALPHA_HOME", str(target))
    argv = ["world", "generate", "--out", str(target)] if command == "world" else ["demo"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the demo world (package alpha_world) is not installed here" in err[0], err
    assert not target.exists()


def test_the_model_budget_reaches_the_training_ops_as_run_config_not_the_environment(tmp_path, monkeypatch):
    """`alpha train --alpha --budget B` hands B to the training ops' config; the process environment (the
    deployment's default budget) is left as it was."""
    from alpha_assets import cli

    (tmp_path / "landing").mkdir()
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    monkeypatch.setenv("ALPHA_MODEL_BUDGET", "demo")
    seen = []
    monkeypatch.setattr(cli, "train_alpha", lambda home, **kw: seen.append(kw) or {"success": True})
    assert main(["train", "--alpha", "--budget", "seed"]) == 0
    ops = seen[0]["run_config"]["ops"]
    assert set(ops) == {"models__fusion_encoder", "models__alpha_models"}
    assert {o["config"]["budget"] for o in ops.values()} == {"seed"}
    import os

    assert os.environ["ALPHA_MODEL_BUDGET"] == "demo"
