"""Running a job on a Dask cluster: the job a Dask worker rebuilds (``dask_job``: named by this module and its JSON
arguments, never pickled) and ``run_on_dask``, which checks the cluster and launches the run.

It builds the code location's Definitions, so it lives apart from ``executors`` (the executors, which
``definitions`` imports): the old home of these functions made definitions <-> executors an import cycle hidden by
function-local imports.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alpha_assets.executors import (
    DaskUnavailable,
    alpha_dask_executor,
    check_scheduler,
    dask_run_config,
    local_cluster_config,
    step_requirements,
)


def dask_job(
    job_name: str,
    home_root: str,
    asset_keys: list[str] | None = None,
    check_keys: list[list[str]] | None = None,
):
    """The job ``job_name`` over ALPHA_HOME ``home_root``, with the dask executor, subset to ``asset_keys``
    (``raw/prices`` spellings) and ``check_keys`` ([asset key, check name] pairs). Called on the caller and again
    on every worker (through ``reconstructable_dask_job``): both must build the same job."""
    from dagster import AssetCheckKey, AssetKey

    from alpha_assets.definitions import build_definitions, local_resources
    from alpha_assets.home import AlphaHome

    defs = build_definitions(local_resources(AlphaHome(Path(home_root))), executor=alpha_dask_executor())
    job = defs.resolve_job_def(job_name)
    if asset_keys:
        # None: the selected assets' own checks (Dagster's default for a subset)
        checks = (
            None
            if check_keys is None
            else {AssetCheckKey(AssetKey.from_user_string(a), n) for a, n in check_keys}
        )
        job = job.get_subset(
            asset_selection={AssetKey.from_user_string(k) for k in asset_keys}, asset_check_selection=checks
        )
    return job


def reconstructable_dask_job(
    job_name: str,
    home_root: str,
    asset_keys: list[str] | None = None,
    check_keys: list[list[str]] | None = None,
):
    from dagster import build_reconstructable_job

    return build_reconstructable_job(
        "alpha_assets.dask_runs",
        "dask_job",
        reconstructable_args=(job_name, home_root),
        reconstructable_kwargs={"asset_keys": asset_keys, "check_keys": check_keys},
    )


def run_on_dask(
    job_name: str,
    home_root: str,
    instance,
    tags: dict,
    run_config: dict,
    asset_keys: list[str] | None = None,
    check_keys: list[list[str]] | None = None,
    address: str | None = None,
):
    """Execute the job on the Dask cluster (``address``) or a local one; returns dagster's JobExecutionResult."""
    from dagster import execute_job

    need = step_requirements(dask_job(job_name, home_root, asset_keys, check_keys))
    if address:
        check_scheduler(address, home_root, need)
    else:
        # At the end the nanny warns that each worker took more than 4 s to stop, then stops it: not news.
        logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
        offered = local_cluster_config()["resources"]
        for name, amount in sorted(need.items()):
            if offered.get(name, 0) < amount:
                raise DaskUnavailable(
                    f"a step of this job requires {name}={amount:g} but a local Dask worker "
                    f"offers {offered.get(name, 0):g}: use --dask-address with a bigger cluster"
                )
    recon = reconstructable_dask_job(job_name, home_root, asset_keys, check_keys)
    return execute_job(
        recon, instance=instance, run_config={**run_config, **dask_run_config(address)}, tags=tags
    )
