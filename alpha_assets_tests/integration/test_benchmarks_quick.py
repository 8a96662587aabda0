"""Every benchmark's ``--quick`` form runs (issue 21 item 8): a smoke test, so a benchmark the README cites cannot
break unnoticed. No timing is asserted: each run must exit 0 and print, as its last line, one JSON object.

The list is discovered (``benchmarks/*.py``), so a new benchmark is included without editing this file; ``_*.py``
are shared modules and ``altdata_*.py`` run inside ``altdata.py`` (as ``make bench`` skips them). Each benchmark
runs in its own process from the repository root, with the offline environment ``make bench`` uses; the timeout
fails a hung benchmark, it is no performance bar. ``serving.py`` uses the embedded SQLite store unless ``--pg``
is given, so it needs no PostgreSQL server (it starts a local API server: marked ``service``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(
    p.name
    for p in (REPO / "benchmarks").glob("*.py")
    if not p.name.startswith("_") and not p.name.startswith("altdata_")
)
# A hang fails; no timing is asserted. The quick forms take seconds to a few minutes each on 2 quiet cores; scale.py
# (a year of sessions through every layer, in 7 processes) took 29 min on 2 cores at a load of 5-8, so its limit
# is just under pytest-timeout's 2400 s (pyproject): this test kills it and shows its output's tail; research.py
# (a year of sessions built through daily_data) took 8-9 min there.
TIMEOUT_S, TIMEOUTS = 900, {"scale.py": 2300, "research.py": 1500}
SERVICE = {"serving.py"}  # starts a local API server (uvicorn) on loopback
# Marked heavy: their quick forms build a year of sessions through the pipeline (scale 12 min, research 5 min on 2
# cores under load), too much for CI's 90 minutes beside the suite; `make test-all` runs them (make bench too).
HEAVY = {"scale.py", "research.py"}


def _marks(bench: str) -> list:
    return [m for b, m in ((SERVICE, pytest.mark.service), (HEAVY, pytest.mark.heavy)) if bench in b]


OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "YOLO_OFFLINE": "True",
    "YOLO_AUTOINSTALL": "False",
    "MLFLOW_ALLOW_FILE_STORE": "true",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}


def _env() -> dict:
    """The test process's environment without a developer's (or the test session's) homes and settings: each
    benchmark makes its own temporary homes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHA_", "DAGSTER_"))}
    env.update(OFFLINE)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def test_the_benchmarks_are_found():
    assert "scale.py" in BENCHMARKS and "models.py" in BENCHMARKS, BENCHMARKS
    assert not any(b.startswith(("_", "altdata_")) for b in BENCHMARKS), BENCHMARKS


@pytest.mark.parametrize(
    "bench",
    [pytest.param(b, marks=_marks(b)) for b in BENCHMARKS],
)
def test_benchmark_quick_form_runs(bench, tmp_path):
    # the benchmark's TMPDIR: its temporary folders go here, and must be gone at the end
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # the libraries' own caches (ultralytics' settings, torch's compile cache) go beside it: they are no
    # benchmark's temporary folders
    caches = {
        "YOLO_CONFIG_DIR": str(tmp_path / "ultralytics"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "torchinductor"),
    }
    # its own process group: a hung benchmark is killed with the stage processes it started
    proc = subprocess.Popen(
        [sys.executable, f"benchmarks/{bench}", "--quick"],
        cwd=REPO,
        env={**_env(), "TMPDIR": str(tmp), **caches},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timeout = TIMEOUTS.get(bench, TIMEOUT_S)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{bench} --quick hung past {timeout} s\nstdout:\n{_tail(out)}\nstderr:\n{_tail(err)}")
    where = f"{bench} --quick (exit {proc.returncode})\nstdout:\n{_tail(out)}\nstderr:\n{_tail(err)}"
    assert proc.returncode == 0, where
    lines = out.strip().splitlines()
    assert lines, where
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        pytest.fail(f"the last line is not JSON ({e})\n{where}")
    assert isinstance(figures, dict) and figures, where
    # Temporary folders: the benchmark made them under this test's TMPDIR and removed them.
    left = sorted(p.name for p in tmp.iterdir())
    assert not left, f"{bench} --quick left {left} in its temporary folder\n{where}"
