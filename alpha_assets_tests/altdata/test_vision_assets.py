"""Satellite sources end to end on the demo world: the detector asset (trained, logged, reused, replaceable),
car counts and tank fills against the world's truth, and quarantine of bad imagery with nothing lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow


def _mat_metadata(result, key: str) -> dict:
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.to_user_string() == key:
            return {
                k: getattr(v, "value", getattr(v, "text", v))
                for k, v in e.event_specific_data.materialization.metadata.items()
            }
    raise AssertionError(f"no materialization of {key}")


def _registry(home):
    from resources.model_registry import ModelRegistry

    return ModelRegistry(tracking_uri=f"sqlite:///{home.mlflow / 'mlflow.db'}")


def test_detector_is_trained_logged_to_mlflow_and_registered(trained_alt) -> None:
    from mlflow.tracking import MlflowClient

    home, _, trained, _ = trained_alt
    meta = _mat_metadata(trained, "models/car_detector")
    assert meta["reused"] is False and meta["source"] == "trained" and meta["train_images"] > 0
    # MLflow is the registry: one version, the champion; the Delta table only mirrors it
    champion = _registry(home).by_alias("car_detector", "champion")
    assert champion is not None and champion.version == 1 and champion.run_id == meta["mlflow_run_id"]
    mirror = pl.read_delta(str(home.lake / "models" / "car_detector"))
    assert mirror["version"].to_list() == [1] and mirror["aliases"].to_list() == ["champion"]
    # the validation split of the vendor's labelled sample: counted within 10% of the true number of cars
    assert mirror["val_count_mae_pct"][0] <= 10.0
    client = MlflowClient(tracking_uri=f"sqlite:///{home.mlflow / 'mlflow.db'}")
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["source"] == "trained" and float(run.data.params["train_images"]) > 0
    assert abs(run.data.metrics["val_count_mae_pct"] - mirror["val_count_mae_pct"][0]) < 1e-9
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/best.pt"]


def test_car_counts_are_within_ten_percent_of_the_truth(trained_alt) -> None:
    home, _, _, run = trained_alt
    assert run["success"], run
    images = pl.read_delta(str(home.lake / "raw" / "parking_lot_images"))
    truth = pl.read_parquet(home.ground_truth / "parking_counts.parquet")
    assert images.height == truth.height  # every delivered image counted once
    joined = images.join(truth, on=["trade_date", "store_id"], how="inner")
    assert joined.height == truth.height
    mae = (joined["n_cars"].cast(pl.Float64) - joined["true_count"]).abs().mean()
    assert mae <= 0.10 * truth["true_count"].mean(), (mae, truth["true_count"].mean())
    # per ticker-day: two stores each, the mean of the store counts
    counts = pl.read_delta(str(home.lake / "raw" / "parking_lot_counts"))
    per_ticker = images.group_by("trade_date", "ticker").agg(pl.col("n_cars").mean().alias("expect"))
    check = counts.join(per_ticker, on=["trade_date", "ticker"])
    assert check.height == counts.height and counts["n_stores"].unique().to_list() == [2]
    assert (check["cars_per_store"] - check["expect"]).abs().max() < 1e-9
    assert (counts["published_at"] > counts["event_time"]).all()


def test_tank_fill_error_is_below_five_percent_points(trained_alt) -> None:
    home, *_ = trained_alt
    tanks = pl.read_delta(str(home.lake / "raw" / "oil_tanks"))
    truth = pl.read_parquet(home.ground_truth / "tank_fills.parquet")
    # match each true tank to the found tank whose centre lies within its radius
    pairs = truth.join(
        tanks.select("trade_date", "farm_id", "center_x_px", "center_y_px", "fill_ratio"),
        on=["trade_date", "farm_id"],
        suffix="_est",
    ).filter(
        (
            (pl.col("center_x_px") - pl.col("center_x_px_est")) ** 2
            + (pl.col("center_y_px") - pl.col("center_y_px_est")) ** 2
        ).sqrt()
        <= pl.col("radius_px")
    )
    assert pairs.height >= 0.9 * truth.height  # nearly every tank found
    measured = pairs.filter(pl.col("fill_ratio_est").is_not_nan())
    assert measured.height >= 0.8 * truth.height
    mae = (measured["fill_ratio_est"] - measured["fill_ratio"]).abs().mean()
    assert mae <= 0.05, mae
    levels = pl.read_delta(str(home.lake / "raw" / "oil_tank_levels"))
    assert levels.select("trade_date", "ticker").is_unique().all()
    assert ((levels["mean_fill_ratio"] >= 0) & (levels["mean_fill_ratio"] <= 1)).all()
    assert (levels["oil_m3"] <= levels["capacity_m3"] + 1e-6).all()


def test_an_unchanged_detector_is_reused_and_user_weights_replace_training(trained_alt) -> None:
    from alpha_assets.definitions import build_definitions, local_resources

    home, instance, trained, _ = trained_alt
    job = build_definitions(local_resources(home)).resolve_job_def("train_models")
    again = job.execute_in_process(instance=instance)
    meta = _mat_metadata(again, "models/car_detector")
    assert meta["reused"] is True and meta["version"] == 1
    from alpha_assets.altdata.vision_assets import current_detector

    weights = current_detector(_registry(home))["weights_path"]
    user = job.execute_in_process(
        instance=instance,
        run_config={"ops": {"models__car_detector": {"config": {"weights_path": weights}}}},
    )
    meta = _mat_metadata(user, "models/car_detector")
    assert meta["reused"] is False and meta["source"] == "user" and meta["version"] == 2
    assert _registry(home).by_alias("car_detector", "champion").version == 2
    mirror = pl.read_delta(str(home.lake / "models" / "car_detector")).sort("version")
    assert mirror["version"].to_list() == [1, 2] and mirror["source"].to_list() == ["trained", "user"]
    # back to the trained recipe: reused, and it is the champion again
    back = job.execute_in_process(instance=instance)
    assert _mat_metadata(back, "models/car_detector")["reused"] is True
    assert _registry(home).by_alias("car_detector", "champion").version == 1


def test_bad_imagery_is_quarantined_with_a_reason_and_earlier_rows_survive(trained_alt, tmp_path) -> None:
    from alpha_assets.app.runs import materialize
    from alpha_assets.home import AlphaHome

    src, instance, _, _ = trained_alt
    home = AlphaHome(tmp_path / "alpha")
    shutil.copytree(src.root, home.root)
    images = pl.read_delta(str(home.lake / "raw" / "parking_lot_images"))
    day = images["trade_date"].max()
    folder = home.landing / "parking" / day.isoformat()
    stores = sorted(p.stem for p in folder.glob("*.png"))
    corrupt, no_sidecar, wrong_date = stores[:3]
    before = images.filter(pl.col("trade_date") == day)
    # a corrupt re-delivery of an image already counted, an image without its sidecar, a sidecar dated wrongly
    (folder / f"{corrupt}.png").write_bytes((folder / f"{corrupt}.png").read_bytes()[:200])
    (folder / f"{no_sidecar}.json").unlink()
    doc = json.loads((folder / f"{wrong_date}.json").read_text())
    doc["captured_at"] = "2023-01-03T15:00:00+00:00"
    (folder / f"{wrong_date}.json").write_text(json.dumps(doc))
    tank_folder = home.landing / "tanks" / day.isoformat()
    farm = sorted(tank_folder.glob("*.png"))[0]
    farm.write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")

    keys = ["raw/parking_lot_images", "raw/parking_lot_counts", "raw/oil_tanks", "raw/oil_tank_levels"]
    res = materialize(home, start=day, end=day, select=keys, quiet=True, instance=instance)
    assert res["success"], res
    for name, why in (
        (f"{corrupt}.png", "cannot decode"),
        (f"{no_sidecar}.png", "no sidecar"),
        (f"{wrong_date}.json", "not on the delivery date"),
    ):
        q = home.quarantine / "parking" / day.isoformat() / name
        assert q.is_file(), name
        reason = json.loads(Path(str(q) + ".reason.json").read_text())
        assert why in reason["reason"] and reason["file"] == f"parking/{day.isoformat()}/{name}"
        assert not (folder / name).exists()
    q = home.quarantine / "tanks" / day.isoformat() / farm.name
    assert q.is_file() and "cannot decode" in json.loads(Path(str(q) + ".reason.json").read_text())["reason"]

    after = pl.read_delta(str(home.lake / "raw" / "parking_lot_images")).filter(pl.col("trade_date") == day)
    # the corrupt re-delivery keeps the count made from the good delivery; the two never-good images were
    # counted by the first run too, so their earlier rows stay as well: nothing is lost
    assert sorted(after["store_id"].to_list()) == sorted(before["store_id"].to_list())
    assert after.sort("store_id")["n_cars"].to_list() == before.sort("store_id")["n_cars"].to_list()
    tank_rows = pl.read_delta(str(home.lake / "raw" / "oil_tanks")).filter(pl.col("trade_date") == day)
    assert farm.stem in tank_rows["farm_id"].to_list()


def test_weights_missing_on_this_machine_come_back_from_mlflow(trained_alt, tmp_path) -> None:
    import hashlib

    from alpha_assets.altdata.vision_assets import current_detector
    from alpha_assets.definitions import local_resources
    from alpha_assets.home import AlphaHome

    src, *_ = trained_alt
    home = AlphaHome(tmp_path / "alpha")
    shutil.copytree(src.root, home.root)
    registry = local_resources(home)["model_registry"]
    original = Path(current_detector(registry)["weights_path"])
    # another machine: no local copy of any model, only the registry
    shutil.rmtree(home.models / "registry_cache", ignore_errors=True)
    fetched = Path(current_detector(registry)["weights_path"])
    assert fetched.is_file()
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (fetched, original)]
    assert digest[0] == digest[1]
