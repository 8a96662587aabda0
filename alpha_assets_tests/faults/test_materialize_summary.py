"""`alpha materialize` ends with why each step failed and which days failed over (issue 19 #8): the CLI used to
print only `failed step: prices` (the reason sat in an 80-130-line traceback) and nothing about failovers."""

from __future__ import annotations

import pytest

from alpha_assets.cli import main
from alpha_assets_tests.conftest import WORLD_START
from partitions.calendar import sessions_from

DAYS = sessions_from(WORLD_START, 5)


def _materialize(*select: str) -> list[str]:
    return [
        "materialize",
        "--job",
        "daily_data",
        "--from",
        str(DAYS[0]),
        "--to",
        str(DAYS[-1]),
        "--select",
        ",".join(select),
    ]


@pytest.mark.slow
def test_a_failed_step_is_named_with_its_reason_in_one_line(home, monkeypatch, capsys):
    import alpha_assets.features.assets as feature_assets

    def broken(*args, **kwargs):
        raise ValueError("the feature grid broke on purpose\nsecond line of detail")

    monkeypatch.setattr(feature_assets, "compute_price_features", broken)
    assert main(_materialize("raw/prices", "features/price_features")) == 1
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "failed step:" in ln]
    assert lines == [
        "  failed step: features/price_features: ValueError: the feature grid broke on purpose"
    ], out
    assert "Traceback" not in out and "second line" not in out
    assert "run's event log" in out


@pytest.mark.slow
def test_each_days_failovers_are_listed_with_their_reason(home, capsys):
    missing = DAYS[1]
    (home.landing / "prices_a" / f"prices_a_{missing}.csv").unlink()
    assert main(_materialize("raw/prices")) == 0
    out = capsys.readouterr().out
    assert "failovers (names not from provider A):" in out
    rows = [ln.strip() for ln in out.splitlines() if ln.strip().startswith(str(missing))]
    assert len(rows) == 1 and "12 name(s) from B" in rows[0] and "provider A missing" in rows[0], out
