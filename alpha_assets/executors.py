"""Where a run's steps execute: in the run's own process (the default) or on a Dask cluster (dagster-dask).

A Dask run ships every step to a worker, which rebuilds the job itself: the job is named by this module's
``dask_runs.dask_job`` and its JSON arguments (job name, ALPHA_HOME, the selected assets and checks), never pickled, so a
worker needs this project installed (the same image or venv) and access to the lake, not the caller's
environment variables. ``check_scheduler`` refuses, in one line, an address that is not a Dask scheduler, a
scheduler without workers, and workers that cannot run our steps, before a run is created.

dagster-dask schedules steps by Dask *resources*: a heavy step's ``dagster-dask/resource_requirements`` tag
(e.g. ``{"MEMORY": 4e9}``) only runs on a worker that declares at least that much (``dask worker --resources
"MEMORY=8e9"``); the local cluster declares each worker's share of this machine's memory.
"""

from __future__ import annotations

import json
import os
import re

LOCAL_WORKERS = 2
ADDRESS = re.compile(r"^(tcp|tls)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


class DaskUnavailable(Exception):
    """The requested Dask cluster cannot run this job: the message is the one line the user sees."""


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def local_cluster_config(n_workers: int = LOCAL_WORKERS) -> dict:
    """``distributed.LocalCluster`` arguments: process workers on loopback, one thread each, no dashboard port
    beyond a random loopback one, each worker declaring its share of the machine's memory as a resource."""
    return {
        "n_workers": n_workers,
        "threads_per_worker": 1,  # one step at a time per worker: Dagster's step context is not thread-safe
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        "resources": {"MEMORY": float(machine_memory_bytes() // n_workers)},
    }


def dask_run_config(address: str | None) -> dict:
    """The ``execution`` run config of dagster-dask's executor: the scheduler at ``address``, or a local cluster."""
    cluster = {"existing": {"address": address}} if address else {"local": local_cluster_config()}
    return {"execution": {"config": {"cluster": cluster}}}


class _Opaque:
    """Hides a step's arguments from dask's argument parsing, which walks into every tuple and so into Dagster's
    NamedTuple-based records: with dagster-dask 0.29.27 and distributed 2026.8 a partitioned run fails to submit
    its first step (``Iteration is not allowed on @record TimeWindowPartitionsDefinition``, from the run)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _execute_step_on_worker(dependencies, packed: _Opaque):
    """The Dask task of one step: dagster-dask's own worker function, given the unwrapped arguments; its events
    go back wrapped too (Dask's size estimate would otherwise walk them and warn on every step)."""
    from dagster_dask.executor import query_on_dask_worker

    return _Opaque(list(query_on_dask_worker(dependencies, *packed.value)))


def alpha_dask_executor():
    """dagster-dask's executor (same config: ``cluster: {existing: {address}} | {local: {...}}``), submitting each
    step with its arguments wrapped (see ``_Opaque``). Built on call: the code location never imports dask."""
    import dask.distributed
    from dagster import executor, multiple_process_executor_requirements
    from dagster._core.errors import raise_execution_interrupts
    from dagster._utils import iterate_with_context
    from dagster_dask.executor import DaskExecutor, dask_executor, get_dask_resource_requirements

    class RangeSafeDaskExecutor(DaskExecutor):
        def execute(self, plan_context, execution_plan):
            if self.cluster_type == "existing":
                cluster = self.cluster_configuration["address"]
            elif self.cluster_type == "local":
                cluster = dask.distributed.LocalCluster(**self.build_dict(plan_context.job_name))
            else:
                raise ValueError(f"cluster type {self.cluster_type!r}: use 'existing' or 'local'")
            with dask.distributed.Client(cluster) as client:
                futures: dict = {}
                for level in execution_plan.get_steps_to_execute_by_level():
                    for step in level:
                        # The futures of the step's inputs are arguments, so Dask runs it after them.
                        deps = [
                            futures[k] for step_input in step.step_inputs for k in step_input.dependency_keys
                        ]
                        args = (
                            plan_context.reconstructable_job,
                            plan_context.dagster_run,
                            plan_context.run_config,
                            [step.key],
                            plan_context.instance.get_ref(),
                            execution_plan.known_state,
                        )
                        futures[step.key] = client.submit(
                            _execute_step_on_worker,
                            deps,
                            _Opaque(args),
                            key=f"{plan_context.job_name}.{step.key}",
                            resources=get_dask_resource_requirements(step.tags),
                        )
                done = dask.distributed.as_completed(list(futures.values()), with_results=True)
                for _future, events in iterate_with_context(raise_execution_interrupts, done):
                    yield from events.value

    @executor(
        name="dask",
        config_schema=dask_executor.config_schema,
        requirements=multiple_process_executor_requirements(),
    )
    def range_safe_dask_executor(init_context):
        ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
        return RangeSafeDaskExecutor(cluster_type, cluster_configuration)

    return range_safe_dask_executor


EXECUTORS = ("in_process", "multiprocess", "k8s_job", "dask")


def executor_from_env():
    """The code location's executor in a deployment, from ``ALPHA_EXECUTOR`` (read when Dagster loads the
    definitions, never at import): ``in_process`` (default: the run's steps in the run's own process or pod),
    ``multiprocess``, ``k8s_job`` (dagster-k8s: a pod per step, sized by the heavy steps' tags) or ``dask`` (the
    scheduler at ``ALPHA_DASK_ADDRESS``). None means the in-process default of ``build_definitions``."""
    name = os.environ.get("ALPHA_EXECUTOR", "in_process") or "in_process"
    if name not in EXECUTORS:
        raise ValueError(f"ALPHA_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {name!r}")
    if name == "multiprocess":
        from dagster import multiprocess_executor

        return multiprocess_executor
    if name == "k8s_job":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if name == "dask":
        return alpha_dask_executor().configured(
            {"cluster": {"existing": {"address": {"env": "ALPHA_DASK_ADDRESS"}}}}, name="dask"
        )
    return None


def step_requirements(job) -> dict[str, float]:
    """The largest amount of each Dask resource any step of ``job`` asks for."""
    need: dict[str, float] = {}
    for node in job.graph.node_dict.values():
        raw = node.definition.tags.get("dagster-dask/resource_requirements")
        for name, amount in (json.loads(raw) if raw else {}).items():
            need[name] = max(need.get(name, 0.0), float(amount))
    return need


def address_problem(address: str) -> None:
    """Refuse, with one line, an address Dask's client could not even try (it would raise, and leave a client whose
    clean-up prints a traceback 20 s later): tcp:// or tls://, a host (an IPv6 one in brackets), a port 1-65535."""
    from urllib.parse import urlsplit

    usage = f"--dask-address {address!r} is not a Dask scheduler address: use tcp://HOST:PORT"
    if not ADDRESS.match(address):
        raise DaskUnavailable(usage)
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as e:  # unbalanced brackets, a port out of range
        raise DaskUnavailable(f"{usage} ({e})") from None
    if not parts.hostname or port is None or not 0 < port < 65536:
        raise DaskUnavailable(f"{usage} (port 1-65535)" if parts.hostname else usage)
    host = parts.netloc.rsplit(":", 1)[0]
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise DaskUnavailable(f"{usage} (an IPv6 host goes in brackets: tcp://[::1]:8786)")


def check_scheduler(
    address: str, home_root: str, requirements: dict[str, float], timeout: float = 10.0
) -> int:
    """Refuse, with one line, what would make a Dask run fail late or hang: a malformed address, no scheduler
    answering, no workers, workers that cannot import this project or see ALPHA_HOME, or no worker declaring
    enough of a resource some step requires. Returns the number of workers."""
    address_problem(address)
    from dask.distributed import Client

    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as e:  # OSError, TimeoutError, or what distributed raises for an address it cannot use
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DaskUnavailable(
            f"no Dask scheduler answers at {address} ({why}): start one with `dask scheduler`, "
            "or leave out --dask-address for a local cluster"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise DaskUnavailable(
                f"the Dask scheduler at {address} has no workers: start some with `dask worker {address}`"
            ) from None

        # Defined here so that it travels by value: a worker without our code can still answer it.
        def worker_view(home: str) -> dict:
            import importlib.util
            import os.path

            return {
                "code": importlib.util.find_spec("alpha_assets") is not None,
                "home": os.path.isdir(os.path.join(home, "landing")),
            }

        views = client.run(worker_view, home_root)
        for worker, view in sorted(views.items()):
            if not view["code"]:
                raise DaskUnavailable(
                    f"Dask worker {worker} cannot import alpha_assets: run the workers from this "
                    "project's venv or image"
                )
            if not view["home"]:
                raise DaskUnavailable(
                    f"Dask worker {worker} cannot see ALPHA_HOME {home_root}: a local lake needs "
                    "workers on a shared filesystem (or the prod deployment on S3)"
                )
        offered = [w.get("resources", {}) for w in client.scheduler_info()["workers"].values()]
        for name, amount in sorted(requirements.items()):
            if not any(r.get(name, 0) >= amount for r in offered):
                raise DaskUnavailable(
                    f"no Dask worker at {address} offers {name}={amount:g}, which a step of this job requires: "
                    f'start workers with `dask worker {address} --resources "{name}={amount:g}"`'
                )
        return len(views)
    finally:
        client.close()
