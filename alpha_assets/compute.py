"""What a heavy step needs from the machine that runs it, declared once per kind of work.

Three kinds of step are heavy: imagery (the car detector and the YOLO/tank vision assets), NLP (transcript and
filing sentiment) and training (the fusion encoder and the alpha learners). Each kind is a Dagster **pool**
(``imagery``, ``nlp``, ``training``: the instance's concurrency limits cap how many such steps run at once across
runs, ``deploy/*/dagster.yaml``), and its op tags ask for the same resources from whichever engine runs the step:

- ``dagster-k8s/config``: the container's CPU and memory requests/limits when ``k8s_job_executor`` runs each step
  as its own pod (``deploy/k8s/values.yaml``);
- ``dagster-dask/resource_requirements``: Dask's abstract ``MEMORY`` resource (bytes), so a step only lands on a
  worker started with ``--resources "MEMORY=..."`` of at least that much (``alpha_assets.executors``).

Light steps (prices, features, books) declare nothing: they take the run's default pod or any Dask worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class StepCompute:
    pool: str
    cpu: str  # Kubernetes CPU quantity
    memory_gib: int

    @property
    def op_tags(self) -> dict:
        memory = f"{self.memory_gib}Gi"
        resources = {"requests": {"cpu": self.cpu, "memory": memory}, "limits": {"memory": memory}}
        return {
            "dagster-k8s/config": {"container_config": {"resources": resources}},
            "dagster-dask/resource_requirements": json.dumps({"MEMORY": float(self.memory_gib * GIB)}),
        }


# Sizes from the demo's and the benchmarks' peaks (benchmarks/models.py: 3.9 GB RSS training 5,000 names).
IMAGERY = StepCompute(pool="imagery", cpu="2", memory_gib=4)
NLP = StepCompute(pool="nlp", cpu="2", memory_gib=4)
TRAINING = StepCompute(pool="training", cpu="2", memory_gib=8)
HEAVY = {c.pool: c for c in (IMAGERY, NLP, TRAINING)}

# A backfill of a per-day vendor asset (images, transcripts, filings: no lookback, each day its own files) is
# split into runs of at most this many sessions, which the run queue starts in parallel within its limits
# (deploy/*/dagster.yaml: locally one backfill run at a time, in prod 4 per backfill). A month of sessions: a run
# is minutes of work at 5,000 names (parking counts ~7 s a day), against ~10 s to start it and load its model.
VENDOR_BACKFILL_SESSIONS = 21


def vendor_backfill_policy():
    """The backfill policy of the per-day heavy vendor assets: parallel runs of VENDOR_BACKFILL_SESSIONS."""
    from dagster import BackfillPolicy

    return BackfillPolicy.multi_run(max_partitions_per_run=VENDOR_BACKFILL_SESSIONS)
