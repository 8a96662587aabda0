"""The stack is one complete lock (issue 17): every package at an exact version and hash, a venv proven equal to it,
and dask beside the distributed release made for it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"
CHECK = REPO / ".ci" / "check-venv.py"


def _entries(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9][a-z0-9-]*)==(\S+)", text, flags=re.M))


def _check(lock: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), str(lock)], capture_output=True, text=True, timeout=60)


def test_every_locked_package_has_an_exact_version_and_a_sha256():
    text = LOCK.read_text()
    entries = _entries(text)
    assert len(entries) > 250  # the whole stack, transitive packages included
    assert text.count("--hash=sha256:") == len(entries)
    assert entries["torch"].endswith("+cpu")  # never a CUDA build
    assert not [name for name in entries if name.startswith("nvidia-") and name != "nvidia-ml-py"]
    assert entries["dask"] == entries["distributed"]


def test_the_venv_running_the_tests_equals_the_lock():
    done = _check(LOCK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("venv equals")


def test_a_venv_that_drifted_from_the_lock_is_named_in_one_line(tmp_path):
    text = LOCK.read_text()
    entries = _entries(text)
    drifted = re.sub(r"^dask==\S+", "dask==2021.4.1", text, flags=re.M)  # a version that differs
    drifted = re.sub(r"^toolz==\S+ \\\n\s+--hash=\S+\n", "", drifted, flags=re.M)  # installed, not locked
    drifted += "not-a-real-package-xyz==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"  # locked, not installed
    lock = tmp_path / "requirements.lock"
    lock.write_text(drifted)

    done = _check(lock)

    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    assert f"dask {entries['dask']} installed, 2021.4.1 locked" in lines[0]
    assert f"toolz {entries['toolz']} not in the lock" in lines[0]
    assert "not-a-real-package-xyz 1.0 missing" in lines[0]


def test_dask_and_distributed_work_together():
    import dask
    import distributed
    from dagster_dask import dask_executor  # noqa: F401  (imports distributed's client machinery)

    assert dask.__version__ == distributed.__version__
