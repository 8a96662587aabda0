"""The demo runs the data job in two lanes (alpha_assets.app.demo.data_layer_in_two_lanes): the car detector and the
parking lots in a second process beside everything that does not read them, then what reads both. The groups must
cover the job exactly once, and no asset may run before something it reads."""

from __future__ import annotations

from pathlib import Path


def test_the_demo_lanes_cover_the_data_job_once_and_in_dependency_order(tmp_path):
    from dagster import AssetKey

    from alpha_assets.app.demo import demo_lanes
    from alpha_assets.definitions import build_definitions, local_resources
    from alpha_assets.home import AlphaHome

    job = build_definitions(local_resources(AlphaHome(Path(tmp_path)))).resolve_job_def("daily_data")
    graph = job.asset_layer.asset_graph
    in_job = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    imagery, rest, after = demo_lanes(job)
    assert imagery == ["raw/parking_lot_counts", "raw/parking_lot_images"]
    # the second process selects the counts alone (it builds no Definitions): the selection adds the images
    from alpha_assets.app.runs import resolve_selection

    assert sorted(k.to_user_string() for k in resolve_selection(job, ["raw/parking_lot_counts"])) == imagery
    assert {"features/alt_features", "features/feature_matrix"} <= set(after)
    assert {"raw/prices", "raw/oil_tank_levels", "raw/call_sentiment", "features/labels"} <= set(rest)
    assert sorted(imagery + rest + after) == sorted(in_job)  # each asset in exactly one group

    def parents(name: str) -> set[str]:
        return {p.to_user_string() for p in graph.get(AssetKey.from_user_string(name)).parent_keys} & in_job

    # the lanes run side by side, so neither reads the other; what comes after may read both
    assert all(not (parents(a) & set(imagery + after)) for a in rest)
    assert all(not (parents(a) & set(rest + after)) for a in imagery)
    # everything downstream of the parking lots inside the job waits for them
    downstream = {
        c.to_user_string() for k in imagery for c in graph.get(AssetKey.from_user_string(k)).child_keys
    }
    assert downstream & in_job <= set(after)
