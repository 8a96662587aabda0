"""The demo's two lanes (the car detector and the parking counts in a second process while the rest of the data
layer runs) and what needs the demo world's package (``alpha_world``: absent from the production image)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from alpha_assets.app.runs import UserError, materialize, train_models
from alpha_assets.home import AlphaHome
from alpha_assets.lib.settings import PURGE_SESSIONS, SESSIONS_PER_QUARTER, SESSIONS_PER_YEAR


def require_world() -> None:
    """The demo world is its own package (``alpha_world``), installed with a development checkout and absent from
    the production image: a command that needs it says so in one line there."""
    import importlib.util

    if importlib.util.find_spec("alpha_world") is None:
        raise UserError(
            "the demo world (package alpha_world) is not installed here: it comes with a development checkout "
            "(`make setup`), not with the production image"
        )


def serve_vendor_site(home: AlphaHome, port: int = 0):
    """Serve the demo world's vendor web site on 127.0.0.1 and point the platform at it (ALPHA_WEB_VENDOR_URL);
    returns the running server, or None when the world has no site."""
    if not (home.vendor_site / "index.html").exists():
        return None
    require_world()
    from alpha_world.vendor_site import serve_site

    server = serve_site(home.vendor_site, port=port)
    os.environ["ALPHA_WEB_VENDOR_URL"] = server.url
    return server


# A quarterly block needs a training year + the purge before it, and the first full quarter after that may start up
# to a quarter later: below this the demo would have no out-of-sample book to show.
MIN_DEMO_SESSIONS = SESSIONS_PER_YEAR + PURGE_SESSIONS + SESSIONS_PER_QUARTER + 20


def demo_lanes(job) -> tuple[list[str], list[str], list[str]]:
    """The data job's assets in three groups for the demo: ``imagery`` (the parking-lot counts, which need the car
    detector), ``rest`` (everything that does not read them) and ``after`` (what reads them, inside the job)."""
    from dagster import AssetKey

    from alpha_assets.keys import RAW_PARKING_LOT_COUNTS

    graph = job.asset_layer.asset_graph
    in_job = set(job.asset_layer.executable_asset_keys)
    imagery = {
        k
        for k in graph.get_execution_set_asset_and_check_keys(RAW_PARKING_LOT_COUNTS)
        if isinstance(k, AssetKey)
    }
    after: set = set()
    todo = list(imagery)
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child in in_job and child not in after and child not in imagery:
                after.add(child)
                todo.append(child)
    rest = in_job - imagery - after

    def names(keys: set) -> list[str]:
        return sorted(k.to_user_string() for k in keys)

    return names(imagery), names(rest), names(after)


def _imagery_lane(home_root: str, log: str, out: str, world_written) -> None:
    """The demo's second process: train the car detector, then (once ``world_written`` is set: the parking images
    are drawn by then) count the parking lots; output to ``log``, the summary as JSON to ``out``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import warnings

    # as `alpha` itself (cli.main): a library's warning is not the user's news
    warnings.simplefilter("ignore")
    os.environ["ALPHA_HOME"] = home_root
    home = AlphaHome.from_env()
    result: dict = {"detector": train_models(home)}
    import multiprocessing

    parent = multiprocessing.parent_process()
    while not world_written.wait(2.0):
        if parent is not None and not parent.is_alive():
            return  # the demo was killed: nothing to count for
    if result["detector"]["success"] and (home.landing / "parking").is_dir():
        from alpha_assets.keys import RAW_PARKING_LOT_COUNTS

        # the same selection as demo_lanes' imagery: materialize adds the multi-asset's parking_lot_images
        imagery = [RAW_PARKING_LOT_COUNTS.to_user_string()]
        res = materialize(home, job_name="daily_data", select=imagery, refresh_dependents=False)
        keep = ("success", "seconds", "failed_steps", "failure_reasons", "failed_checks", "run_ids")
        result["imagery"] = {k: res[k] for k in keep}
    sys.stdout.flush()
    Path(out).write_text(json.dumps(result, default=str))


class ImageryLane:
    """The demo's second process (``_imagery_lane``): started as soon as the world has written the detector's
    training set, it trains the car detector while the world's other files are drawn, and counts the parking
    lots once ``world_written()`` has been called."""

    def __init__(self, home: AlphaHome):
        import multiprocessing

        logs = home.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log, self.out = logs / "demo_imagery_lane.log", logs / "demo_imagery_lane.json"
        self.out.unlink(missing_ok=True)
        ctx = multiprocessing.get_context("spawn")
        self._written = ctx.Event()
        self.process = ctx.Process(
            target=_imagery_lane,
            args=(str(home.root), str(self.log), str(self.out), self._written),
            name="imagery-lane",
        )

    @property
    def started(self) -> bool:
        return self.process.pid is not None

    def start(self) -> None:
        print(
            f"car detector training, then the parking lots: in a second process beside this one (log: {self.log})",
            flush=True,
        )
        self.process.start()

    def world_written(self) -> None:
        self._written.set()

    def stop(self) -> None:
        self.world_written()
        if self.started:
            if self.process.is_alive():
                self.process.terminate()
            self.process.join()


def data_layer_in_two_lanes(home: AlphaHome, lane: ImageryLane) -> dict:
    """``daily_data`` for the demo on two cores: ``lane`` (a second process, training the car detector since the
    world wrote its training set) counts the parking lots while this process materializes everything that does not
    read them (prices, universe, tanks, texts, web, labels, price features); then the assets that read both (alt
    features, the feature matrix). The same assets and partitions as one ``daily_data`` run, in three runs on the
    instance; the detector's training (about 3 minutes of one core) no longer waits in line."""
    from alpha_assets.definitions import build_definitions, local_resources

    job = build_definitions(local_resources(home)).resolve_job_def("daily_data")
    imagery, rest, after = demo_lanes(job)
    lane.world_written()
    try:
        res = materialize(home, job_name="daily_data", select=rest, refresh_dependents=False)
    except BaseException:
        lane.stop()
        raise
    lane.process.join()
    done = json.loads(lane.out.read_text()) if lane.out.exists() else {}
    det, img = done.get("detector", {}), done.get("imagery")
    if not det.get("success"):
        print(f"car detector FAILED (exit code {lane.process.exitcode}; see {lane.log})")
        return {**res, "success": False}
    err = det.get("val_count_mae_pct")
    print(
        f"car detector v{det.get('version')} "
        + ("reused" if det.get("reused") else f"trained in {det.get('seconds', 0):.0f}s")
        + (f", validation count error {err:.1f}% of the mean" if isinstance(err, float) else "")
    )
    if not img or not img["success"]:
        why = "; ".join(f"{s}: {r}" for s, r in (img or {}).get("failure_reasons", {}).items())
        print(f"parking lots FAILED ({why or f'exit code {lane.process.exitcode}'}; see {lane.log})")
        return {**res, "success": False}
    print(f"  {', '.join(imagery)}: run {img['run_ids'][0][:8]} succeeded in {img['seconds']:.0f}s")
    if not res["success"]:
        return res
    last = materialize(home, job_name="daily_data", select=after, refresh_dependents=False)
    return {
        **last,
        "start": res["start"],
        "failed_steps": img["failed_steps"] + last["failed_steps"],
        "failed_checks": sorted(
            set(res["failed_checks"]) | set(img["failed_checks"]) | set(last["failed_checks"])
        ),
        "run_ids": res["run_ids"] + img["run_ids"] + last["run_ids"],
    }
