"""A marts run writes dbt's artifacts and log under the home (issue 20 #7): the checkout's dbt/ is left as it was."""

from __future__ import annotations

import pytest

from alpha_assets.serving.marts import DBT_DIR

pytestmark = pytest.mark.slow  # one dbt build (~30 s)


def _tree() -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(DBT_DIR)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(DBT_DIR.rglob("*"))
        if p.is_file()
    }


def test_a_marts_run_leaves_the_repos_dbt_folder_unchanged(tmp_path, monkeypatch):
    from dagster import DagsterInstance, materialize

    from alpha_assets.serving.marts import marts
    from alpha_assets_tests.serving.test_marts import SESSIONS, build_lake
    from resources import DeltaLakeResource

    lake = build_lake(tmp_path / "lake")
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    monkeypatch.delenv("ALPHA_MARTS_DB", raising=False)
    before = _tree()
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [marts],
            instance=instance,
            partition_key=SESSIONS[-1].isoformat(),
            resources={"lake_store": DeltaLakeResource(lake_root=str(lake.root))},
        )
    assert result.success
    assert _tree() == before
    runs = list((tmp_path / "marts" / "dbt_runs").iterdir())
    assert [p.name[:8] for p in runs] == [result.run_id[:8]]
    assert (runs[0] / "run_results.json").is_file() and (runs[0] / "dbt.log").is_file()
