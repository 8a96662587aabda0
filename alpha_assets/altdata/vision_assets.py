"""Satellite imagery: models.car_detector, raw.parking_lot_counts (YOLO) and raw.oil_tank_levels (shadows).

The detector is trained once on the imagery vendor's labelled sample and reused while that sample and the
training configuration are unchanged (the fingerprint of both names the weights). A user's own weights (e.g. a
pretrained yolov8n.pt) replace training through ``CarDetectorConfig.weights_path``. Either way the weights are
logged to MLflow and registered as a model version, and ``models.car_detector`` (a Delta table, one row per
model version) says which weights the daily counts use.
"""

import hashlib
import json
import math
import shutil
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    Config,
    Output,
    asset,
    multi_asset,
)

from alpha_assets.altdata._landing import SidecarError, read_sidecar, sidecar_name
from alpha_assets.compute import IMAGERY, vendor_backfill_policy
from alpha_assets.intake import Intake, keep_table_rows
from alpha_assets.keys import (
    MODELS_CAR_DETECTOR,
    RAW_OIL_TANK_LEVELS,
    RAW_OIL_TANKS,
    RAW_PARKING_LOT_COUNTS,
    RAW_PARKING_LOT_IMAGES,
)
from alpha_assets.lib.altdata.point_in_time import TS, published_at
from partitions import trading_days, window_dates
from resources.lake_resource import DeltaLakeResource
from resources.landing import VendorLanding
from resources.model_registry import CHAMPION, ModelRegistry

TRAINING_PREFIX, PARKING_PREFIX, TANK_PREFIX = "detector_training", "parking", "tanks"

# models.car_detector mirrors the MLflow registry's car_detector versions (read-only, for SQL); MLflow decides.
MIRROR_SCHEMA = {
    "version": pl.Int64,
    "aliases": pl.String,
    "fingerprint": pl.String,
    "source": pl.String,
    "run_id": pl.String,
    "val_count_mae": pl.Float64,
    "val_count_mae_pct": pl.Float64,
    "train_seconds": pl.Float64,
}
DETECTOR_MODEL = "car_detector"


class CarDetectorConfig(Config):
    weights_path: str = (
        ""  # a local YOLO weights file to use instead of training (e.g. a pretrained yolov8n.pt)
    )
    car_class_ids: list[int] = []  # classes counted as cars; empty: the model's classes named "car"
    epochs: int = 12
    imgsz: int = 320
    batch: int = 4
    seed: int = 0
    architecture: str = "yolov8n.yaml"
    force_retrain: bool = False


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _local_training_set(landing: VendorLanding, work: Path) -> tuple[Path, Path, str, int, int]:
    """The labelled sample as a local YOLO dataset: its root, a data.yaml pointing at it, its fingerprint, and
    the number of train/val images."""
    # Only images and YOLO label files count: ultralytics drops label *.cache files next to the labels.
    files = [
        f
        for f in landing.list_files(TRAINING_PREFIX)
        if f.name.startswith("images/") or (f.name.startswith("labels/") and f.name.endswith(".txt"))
    ]
    images = [f for f in files if f.name.startswith("images/")]
    if not images:
        raise FileNotFoundError(
            f"no labelled imagery under landing/{TRAINING_PREFIX}/images: nothing to train the car detector on "
            "(deliver a YOLO-format sample, or set weights_path to your own weights)"
        )
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        h.update(f"{f.name}:{f.fingerprint}\n".encode())
    # S3: copies each file into the local cache; local: the files are already here
    local = {f.name: landing.local_path(TRAINING_PREFIX, f.name) for f in files}
    root = local[images[0].name].parents[2]  # <root>/images/<split>/<file>
    n_val = sum(1 for f in images if f.name.startswith("images/val/"))
    data_yaml = work / "data.yaml"
    data_yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: car\n")
    return root, data_yaml, h.hexdigest(), len(images) - n_val, n_val


def _val_count_error(model, root: Path) -> tuple[float, float]:
    """Mean absolute count error on the validation split, absolute and as % of the mean true count."""
    from alpha_assets.lib.altdata.vision import count_cars

    images = sorted((root / "images" / "val").glob("*.png"))
    if not images:
        return float("nan"), float("nan")
    truth = []
    for p in images:
        label = root / "labels" / "val" / (p.stem + ".txt")
        truth.append(
            sum(1 for line in label.read_text().splitlines() if line.strip()) if label.exists() else 0
        )
    counts = count_cars(model, images)["n_cars"].to_list()
    mae = sum(abs(a - b) for a, b in zip(counts, truth, strict=True)) / len(images)
    mean = sum(truth) / len(truth)
    return mae, (100.0 * mae / mean if mean else float("nan"))


@asset(
    key=MODELS_CAR_DETECTOR,
    op_tags=IMAGERY.op_tags,
    pool=IMAGERY.pool,
    group_name="models",
    kinds={"pytorch", "mlflow", "delta"},
    description="The YOLOv8n car detector: trained on the vendor's labelled sample (or a user's weights), "
    "registered in MLflow (alias champion = current); the Delta table mirrors its versions.",
)
def car_detector(
    context: AssetExecutionContext,
    config: CarDetectorConfig,
    landing: VendorLanding,
    model_registry: ModelRegistry,
):
    from alpha_assets.lib.altdata.vision import load_car_detector, train_car_detector

    params: dict = {
        "architecture": config.architecture,
        "epochs": config.epochs,
        "imgsz": config.imgsz,
        "batch": config.batch,
        "seed": config.seed,
    }
    n_train = n_val = 0
    root = data_yaml = None
    with tempfile.TemporaryDirectory(prefix="car_detector_") as tmp:
        work = Path(tmp)
        if config.weights_path:
            weights = Path(config.weights_path).expanduser()
            if not weights.is_file():
                raise FileNotFoundError(
                    f"car detector weights_path {weights} does not exist (nothing is downloaded)"
                )
            fingerprint, source = "user:" + _sha256_file(weights), "user"
            params = {"weights_path": str(weights)}
        else:
            root, data_yaml, data_fp, n_train, n_val = _local_training_set(landing, work)
            fingerprint = hashlib.sha256((data_fp + json.dumps(params, sort_keys=True)).encode()).hexdigest()
            source, weights = "trained", work / "best.pt"
        known = model_registry.find(DETECTOR_MODEL, fingerprint=fingerprint)
        if known is not None and not config.force_retrain:
            context.log.info(
                f"car detector unchanged (fingerprint {fingerprint[:12]}): reusing version {known.version}"
            )
            # Reuse makes that version the champion again: inference loads the champion.
            model_registry.set_alias(DETECTOR_MODEL, CHAMPION, known.version)
            return Output(
                detector_mirror(model_registry),
                metadata={
                    "reused": True,
                    "version": known.version,
                    "fingerprint": fingerprint,
                    "mlflow_run_id": known.run_id,
                },
            )
        t0 = time.perf_counter()
        if source == "trained":
            best = train_car_detector(
                data_yaml,
                work / "run",
                epochs=config.epochs,
                imgsz=config.imgsz,
                seed=config.seed,
                batch=config.batch,
                architecture=config.architecture,
            )
            shutil.copy2(best, weights)
        train_seconds = time.perf_counter() - t0
        model = load_car_detector(weights)
        if config.car_class_ids:
            mae, mae_pct = float("nan"), float("nan")  # a user's class map: the vendor's labels may not apply
        else:
            mae, mae_pct = _val_count_error(model, root) if root else (float("nan"), float("nan"))
        metrics = {"train_seconds": train_seconds}
        if not math.isnan(mae):
            metrics |= {"val_count_mae": mae, "val_count_mae_pct": mae_pct}
        model_dir = work / "model"
        model_dir.mkdir()
        shutil.copy2(weights, model_dir / weights.name)
        mv = model_registry.log_model(
            DETECTOR_MODEL,
            f"{DETECTOR_MODEL}-{fingerprint[:12]}",
            {
                **params,
                "source": source,
                "train_images": n_train,
                "val_images": n_val,
                "fingerprint": fingerprint,
            },
            metrics,
            model_dir,
            run_tags={"dagster/run_id": context.run.run_id},
            version_tags={"fingerprint": fingerprint, "source": source, "weights_file": weights.name},
            alias=CHAMPION,
        )
    return Output(
        detector_mirror(model_registry),
        metadata={
            "reused": False,
            "version": mv.version,
            "source": source,
            "fingerprint": fingerprint,
            "train_seconds": round(train_seconds, 1),
            "train_images": n_train,
            "val_count_mae": mae,
            "val_count_mae_pct": mae_pct,
            "mlflow_run_id": mv.run_id,
        },
    )


def detector_mirror(model_registry: ModelRegistry) -> pl.DataFrame:
    rows = []
    for v in model_registry.versions(DETECTOR_MODEL):
        m = model_registry.run_metrics(v.run_id)
        rows.append(
            {
                "version": v.version,
                "aliases": ",".join(sorted(v.aliases)),
                "fingerprint": v.tags.get("fingerprint", ""),
                "source": v.tags.get("source", ""),
                "run_id": v.run_id,
                "val_count_mae": m.get("val_count_mae"),
                "val_count_mae_pct": m.get("val_count_mae_pct"),
                "train_seconds": m.get("train_seconds"),
            }
        )
    return pl.DataFrame(rows, schema=MIRROR_SCHEMA)


def current_detector(model_registry: ModelRegistry) -> dict:
    """The registry's champion car detector: its version and a local copy of its weights (downloaded from MLflow
    once per machine, then cached)."""
    mv = model_registry.by_alias(DETECTOR_MODEL, CHAMPION)
    if mv is None:
        raise FileNotFoundError(
            "no car detector in the model registry yet: materialize models/car_detector first (job train_models)"
        )
    path = model_registry.download(mv)
    return {
        "version": mv.version,
        "weights_path": str(Path(path) / mv.tags.get("weights_file", "best.pt")),
        "mlflow_run_id": mv.run_id,
        "fingerprint": mv.tags.get("fingerprint", ""),
    }


# ------------------------------------------------------------------------------------------ shared image intake
def _intake(intake: Intake, prefix: str, start: date, end: date, required: dict, read):
    """Every image delivered in the window with its validated sidecar; bad images (undecodable, missing or bad
    sidecar) are quarantined with both files and the reason. ``read`` decodes one local path or raises
    ImageReadError. Returns (good images, names of the bad ones)."""
    from alpha_assets.lib.altdata.vision import ImageReadError

    good, bad = [], []
    for dv in intake.deliveries(prefix, start, end):
        name, d = dv.name, dv.trade_date
        try:
            meta = read_sidecar(intake.landing, prefix, name, d, required)
            intake.local_path(prefix, sidecar_name(name))  # records the sidecar's fingerprint
            path = intake.local_path(prefix, name)
            read(path)
        except (SidecarError, ImageReadError) as e:
            reason = e.reason if isinstance(e, SidecarError) else f"cannot decode image: {e.reason}"
            _quarantine_image(intake, prefix, name, reason)
            bad.append(f"{prefix}/{name}")
            continue
        good.append((name, d, path, meta))
    return good, bad


def _quarantine_image(intake: Intake, prefix: str, name: str, reason: str) -> None:
    """Move an image and its sidecar (when there is one) to quarantine with the reason."""
    intake.quarantine(prefix, name, reason)
    if intake.landing.exists(prefix, sidecar_name(name)):
        intake.quarantine(prefix, sidecar_name(name), f"its image {name}: {reason}")


def _kept_rows(
    lake_store: DeltaLakeResource,
    table: str,
    new: pl.DataFrame,
    start: date,
    end: date,
    on: list[str],
    covered: list[tuple[date, str]],
) -> tuple[pl.DataFrame, int]:
    """``new`` plus the rows the table already holds for images not read again now (a corrupt re-delivery, an
    image gone from the landing zone): the intake layer's one keep rule, by image (date, site)."""
    units = pl.DataFrame(covered, schema={"trade_date": pl.Date, on[1]: pl.String}, orient="row")
    return keep_table_rows(lake_store.lake, "raw", table, new, start, end, on=on, covered=units)


def _ts(values: list[datetime]) -> pl.Series:
    return pl.Series(values, dtype=TS)


# ------------------------------------------------------------------------------------------ parking lots
IMAGE_SCHEMA = {
    "trade_date": pl.Date,
    "store_id": pl.String,
    "ticker": pl.String,
    "file": pl.String,
    "event_time": TS,
    "published_at": TS,
    "n_cars": pl.Int32,
    "mean_conf": pl.Float64,
    "detector_version": pl.Int64,
}
COUNT_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.String,
    "n_stores": pl.Int64,
    "total_cars": pl.Int64,
    "cars_per_store": pl.Float64,
    "mean_conf": pl.Float64,
    "event_time": TS,
    "published_at": TS,
}


def aggregate_parking(images: pl.DataFrame) -> pl.DataFrame:
    """Per ticker-day: stores imaged, total and mean cars per store, confidence, and the latest capture."""
    return (
        images.group_by("trade_date", "ticker")
        .agg(
            pl.col("store_id").n_unique().cast(pl.Int64).alias("n_stores"),
            pl.col("n_cars").sum().cast(pl.Int64).alias("total_cars"),
            pl.col("n_cars").mean().alias("cars_per_store"),
            pl.col("mean_conf").mean(),
            pl.col("event_time").max(),
            pl.col("published_at").max(),
        )
        .sort("trade_date", "ticker")
        .cast(COUNT_SCHEMA)
        .select(list(COUNT_SCHEMA))
    )


@multi_asset(
    outs={
        "parking_lot_images": AssetOut(
            key=RAW_PARKING_LOT_IMAGES, metadata={"partition_expr": "trade_date"}, kinds={"pytorch", "delta"}
        ),
        "parking_lot_counts": AssetOut(
            key=RAW_PARKING_LOT_COUNTS, metadata={"partition_expr": "trade_date"}, kinds={"polars", "delta"}
        ),
    },
    deps=[MODELS_CAR_DETECTOR],
    partitions_def=trading_days,
    backfill_policy=vendor_backfill_policy(),
    op_tags=IMAGERY.op_tags,
    pool=IMAGERY.pool,
    group_name="alt_data",
    check_specs=[
        AssetCheckSpec(
            "parking_counts_valid",
            asset=RAW_PARKING_LOT_COUNTS,
            blocking=True,
            description="counts ≥ 0, confidence in [0, 1], one row per store-day and per ticker-day",
        ),
        AssetCheckSpec(
            "parking_images_usable",
            asset=RAW_PARKING_LOT_COUNTS,
            description="at least 90% of the window's images decoded and had a valid sidecar",
        ),
    ],
)
def parking_lot_counts(
    context: AssetExecutionContext,
    landing: VendorLanding,
    lake_store: DeltaLakeResource,
    model_registry: ModelRegistry,
):
    """Cars per parking-lot image (YOLO on CPU), then per ticker-day. Each image's capture time comes from its
    sidecar; ``published_at`` adds the imagery vendor's delivery lag."""
    from alpha_assets.lib.altdata.vision import count_cars, load_car_detector, read_rgb

    start, end = window_dates(*context.partition_time_window)
    intake = Intake(landing, context.log)
    good, bad_files = _intake(intake, PARKING_PREFIX, start, end, {"store_id": str, "ticker": str}, read_rgb)
    images = pl.DataFrame(schema=IMAGE_SCHEMA)
    meta: dict = {}
    if good:
        detector = current_detector(model_registry)
        model = load_car_detector(Path(detector["weights_path"]))
        t0 = time.perf_counter()
        counts = count_cars(model, [p for _, _, p, _ in good])
        secs = time.perf_counter() - t0
        captured = [m["captured_at"] for _, _, _, m in good]
        images = pl.DataFrame(
            {
                "trade_date": [d for _, d, _, _ in good],
                "store_id": [m["store_id"] for *_, m in good],
                "ticker": [m["ticker"] for *_, m in good],
                "file": [f"{PARKING_PREFIX}/{n}" for n, *_ in good],
                "event_time": _ts(captured),
                "published_at": _ts([published_at("parking", c) for c in captured]),
                "n_cars": counts["n_cars"],
                "mean_conf": counts["mean_conf"],
                "detector_version": [detector["version"]] * len(good),
            },
            schema=IMAGE_SCHEMA,
        ).sort("trade_date", "store_id")
        meta = {"detector_version": detector["version"], "images_per_second": round(len(good) / secs, 2)}
    covered = [(d, m["store_id"]) for _, d, _, m in good]
    images, n_kept = _kept_rows(
        lake_store, "parking_lot_images", images, start, end, ["trade_date", "store_id"], covered
    )
    images = images.sort("trade_date", "store_id")
    meta["rows_kept_from_earlier_deliveries"] = n_kept
    intake_meta = intake.metadata()
    intake.add_partition_fingerprints(context, RAW_PARKING_LOT_IMAGES, RAW_PARKING_LOT_COUNTS)
    counts_df = aggregate_parking(images)
    yield Output(
        images, output_name="parking_lot_images", metadata={"rows": images.height, **meta, **intake_meta}
    )
    yield Output(
        counts_df,
        output_name="parking_lot_counts",
        metadata={
            "rows": counts_df.height,
            "images": images.height,
            **intake_meta,
            **meta,
        },
    )
    dup_images = images.height - images.select("trade_date", "store_id").unique().height
    bad = images.filter((pl.col("n_cars") < 0) | (pl.col("mean_conf") < 0) | (pl.col("mean_conf") > 1)).height
    yield AssetCheckResult(
        check_name="parking_counts_valid",
        asset_key=RAW_PARKING_LOT_COUNTS,
        passed=bad == 0 and dup_images == 0,
        metadata={"out_of_range": bad, "duplicate_store_days": dup_images},
    )
    n_bad_images = len(bad_files)
    total = len(good) + n_bad_images
    yield AssetCheckResult(
        check_name="parking_images_usable",
        asset_key=RAW_PARKING_LOT_COUNTS,
        severity=AssetCheckSeverity.WARN,
        passed=total == 0 or len(good) / total >= 0.9,
        metadata={"usable": len(good), "quarantined": n_bad_images},
    )


# ------------------------------------------------------------------------------------------ oil tanks
class TankAnalysisConfig(Config):
    # Processes analysing the window's images (the step asks for 2 CPUs, compute.IMAGERY): each image is analysed
    # alone, so the rows are the same for any number. 1: in the step's own process.
    workers: int = 2


TANK_SCHEMA = {
    "trade_date": pl.Date,
    "farm_id": pl.String,
    "ticker": pl.String,
    "tank": pl.Int32,
    "center_x_px": pl.Float64,
    "center_y_px": pl.Float64,
    "radius_px": pl.Float64,
    "height_m": pl.Float64,
    "fill_ratio": pl.Float64,
    "capacity_m3": pl.Float64,
    "oil_m3": pl.Float64,
    "file": pl.String,
    "event_time": TS,
    "published_at": TS,
}
LEVEL_SCHEMA = {
    "trade_date": pl.Date,
    "ticker": pl.String,
    "n_tanks": pl.Int64,
    "n_measured": pl.Int64,
    "mean_fill_ratio": pl.Float64,
    "oil_m3": pl.Float64,
    "capacity_m3": pl.Float64,
    "utilisation": pl.Float64,
    "event_time": TS,
    "published_at": TS,
}


def aggregate_tanks(tanks: pl.DataFrame) -> pl.DataFrame:
    """Per ticker-day: tanks found and measured, mean fill, inventory (oil m³), capacity and utilisation."""
    measured = pl.col("fill_ratio").is_not_nan() & pl.col("fill_ratio").is_not_null()
    return (
        tanks.group_by("trade_date", "ticker")
        .agg(
            pl.len().cast(pl.Int64).alias("n_tanks"),
            measured.sum().cast(pl.Int64).alias("n_measured"),
            pl.col("fill_ratio").filter(measured).mean().alias("mean_fill_ratio"),
            pl.col("oil_m3").filter(measured).sum().alias("oil_m3"),
            pl.col("capacity_m3").filter(measured).sum().alias("capacity_m3"),
            pl.col("event_time").max(),
            pl.col("published_at").max(),
        )
        .with_columns((pl.col("oil_m3") / pl.col("capacity_m3")).alias("utilisation"))
        .sort("trade_date", "ticker")
        .cast(LEVEL_SCHEMA)
        .select(list(LEVEL_SCHEMA))
    )


@multi_asset(
    outs={
        "oil_tanks": AssetOut(
            key=RAW_OIL_TANKS, metadata={"partition_expr": "trade_date"}, kinds={"opencv", "delta"}
        ),
        "oil_tank_levels": AssetOut(
            key=RAW_OIL_TANK_LEVELS, metadata={"partition_expr": "trade_date"}, kinds={"polars", "delta"}
        ),
    },
    partitions_def=trading_days,
    backfill_policy=vendor_backfill_policy(),
    op_tags=IMAGERY.op_tags,
    pool=IMAGERY.pool,
    group_name="alt_data",
    check_specs=[
        AssetCheckSpec(
            "tank_levels_valid",
            asset=RAW_OIL_TANK_LEVELS,
            blocking=True,
            description="fill ratios in [0, 1], inventory ≤ capacity, one row per ticker-day",
        ),
        AssetCheckSpec(
            "tank_images_usable",
            asset=RAW_OIL_TANK_LEVELS,
            description="at least 90% of the window's images decoded and had a valid sidecar",
        ),
    ],
)
def oil_tank_levels(
    context: AssetExecutionContext,
    config: TankAnalysisConfig,
    landing: VendorLanding,
    lake_store: DeltaLakeResource,
):
    """Floating-roof tanks found by their circular rims; fill from the roof's shadow crescent against the tank's
    ground shadow, with the sun elevation and azimuth from each image's sidecar."""
    from alpha_assets.lib.altdata.vision import analyze_tank_arrays, read_gray

    start, end = window_dates(*context.partition_time_window)
    required = {
        "farm_id": str,
        "ticker": str,
        "sun_elevation_deg": float,
        "sun_azimuth_deg": float,
        "gsd_m": float,
    }
    decoded: dict[Path, object] = {}
    intake = Intake(landing, context.log)
    good, bad_files = _intake(
        intake, TANK_PREFIX, start, end, required, lambda p: decoded.__setitem__(p, read_gray(p))
    )
    rows, failed = [], []
    t0 = time.perf_counter()
    jobs = [
        (decoded.pop(path), m["sun_elevation_deg"], m["sun_azimuth_deg"], m["gsd_m"])
        for _, _, path, m in good
    ]
    analysed = analyze_tank_arrays(jobs, workers=config.workers)
    del jobs
    for (name, d, _, m), tanks in zip(good, analysed, strict=True):
        # e.g. a sun elevation outside (0, 90): the sidecar is wrong, not the pipeline
        if isinstance(tanks, str):
            _quarantine_image(intake, TANK_PREFIX, name, tanks)
            failed.append(name)
            bad_files.append(f"{TANK_PREFIX}/{name}")
            continue
        pub = published_at("tanks", m["captured_at"])
        for k, t in enumerate(tanks):
            rows.append(
                {
                    "trade_date": d,
                    "farm_id": m["farm_id"],
                    "ticker": m["ticker"],
                    "tank": k,
                    **{
                        c: t[c]
                        for c in (
                            "center_x_px",
                            "center_y_px",
                            "radius_px",
                            "height_m",
                            "fill_ratio",
                            "capacity_m3",
                            "oil_m3",
                        )
                    },
                    "file": f"{TANK_PREFIX}/{name}",
                    "event_time": m["captured_at"],
                    "published_at": pub,
                }
            )
    secs = time.perf_counter() - t0
    covered = [(d, m["farm_id"]) for name, d, _, m in good if name not in failed]  # an image may hold no tank
    tanks_df, n_kept = _kept_rows(
        lake_store,
        "oil_tanks",
        pl.DataFrame(rows, schema=TANK_SCHEMA),
        start,
        end,
        ["trade_date", "farm_id"],
        covered,
    )
    tanks_df = tanks_df.sort("trade_date", "farm_id", "tank")
    intake_meta = intake.metadata()
    intake.add_partition_fingerprints(context, RAW_OIL_TANKS, RAW_OIL_TANK_LEVELS)
    levels = aggregate_tanks(tanks_df)
    n_images = len(good) - len(failed)
    yield Output(
        tanks_df,
        output_name="oil_tanks",
        metadata={"rows": tanks_df.height, "images": n_images, **intake_meta},
    )
    yield Output(
        levels,
        output_name="oil_tank_levels",
        metadata={
            "rows": levels.height,
            "images": n_images,
            **intake_meta,
            "rows_kept_from_earlier_deliveries": n_kept,
            "images_per_second": round(n_images / secs, 2) if secs > 0 and n_images else 0.0,
        },
    )
    bad = levels.filter(
        (pl.col("mean_fill_ratio") < 0)
        | (pl.col("mean_fill_ratio") > 1)
        | (pl.col("oil_m3") > pl.col("capacity_m3") + 1e-6)
    ).height
    dups = levels.height - levels.select("trade_date", "ticker").unique().height
    yield AssetCheckResult(
        check_name="tank_levels_valid",
        asset_key=RAW_OIL_TANK_LEVELS,
        passed=bad == 0 and dups == 0,
        metadata={"out_of_range": bad, "duplicate_ticker_days": dups},
    )
    n_bad = len(bad_files)  # failed analyses included
    total = n_images + n_bad
    yield AssetCheckResult(
        check_name="tank_images_usable",
        asset_key=RAW_OIL_TANK_LEVELS,
        severity=AssetCheckSeverity.WARN,
        passed=total == 0 or n_images / total >= 0.9,
        metadata={"usable": n_images, "quarantined": n_bad},
    )
