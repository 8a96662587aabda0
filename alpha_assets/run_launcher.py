"""The local deployment's run launcher: Dagster's default launcher, plus a check that a run's process is alive.

Dagster's run monitoring (the daemon's ``run_monitoring`` in ``deploy/local/dagster.yaml``) marks a STARTED run
FAILURE when the launcher reports its worker dead, which frees its ``max_concurrent_runs`` slot. The default launcher
reports nothing, so a run whose process was killed (``kill -9`` of ``alpha materialize``, of a run the UI launched,
or a machine restart) stayed STARTED forever and held its slot. Here the worker is the process that wrote the run's
RUN_START event (its pid is in the event): alive, the run is running; gone, a zombie, or a newer process reusing
the pid, the run is dead. A run started on another host (the ``alpha/host`` tag the CLI sets) cannot be checked
from here and is left alone. Loaded by every process that opens the instance: dagster and psutil only.
"""

from __future__ import annotations

import socket

from dagster import DagsterEventType, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

HOST_TAG = "alpha/host"
# A RUN_START event is written a moment after its process starts; a process created later than this past the
# event is another process that reuses the pid.
PID_REUSE_SLACK_SECONDS = 2.0


def this_host() -> str:
    return socket.gethostname()


def process_status(pid: int, started_at: float) -> str | None:
    """None when the process that started at ``started_at`` (a Unix time) is alive; else why it is not."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"process {pid} has exited"
        if proc.create_time() > started_at + PID_REUSE_SLACK_SECONDS:
            return f"process {pid} has exited (the pid now belongs to a newer process)"
    except psutil.NoSuchProcess:
        return f"process {pid} is gone (killed, or the machine restarted)"
    except psutil.AccessDenied:  # exists, owned by another user: alive as far as we can tell
        return None
    return None


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose runs' workers the run monitoring daemon can check (see the module doc)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        host = run.tags.get(HOST_TAG)
        if host and host != this_host():
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"started on {host}: not checked from here")
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.RUN_START, limit=1
        ).records
        event = records[0].event_log_entry if records else None
        pid = event.dagster_event.pid if event is not None and event.dagster_event is not None else None
        if pid is None:  # nothing to check yet: the run is not judged dead on no evidence
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker process recorded")
        why = process_status(pid, event.timestamp)
        if why is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"process {pid} is running")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's {why}")
