"""Each checkout runs its own code on the shared cached stack (issue 9 #6): two clones set up one after the other,
and each one's python, `alpha` and cached tools (pytest) import the clone's own alpha_assets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _checkout(root: Path) -> Path:
    _run("git", "clone", "-q", f"file://{REPO}", root, cwd=REPO.parent)
    # The setup script as it is in this working tree (the clone holds the last commit's).
    shutil.copy(REPO / ".ci" / "setup-venv.sh", root / ".ci" / "setup-venv.sh")
    return root


def test_two_checkouts_each_import_their_own_code(tmp_path):
    cache = Path(os.environ.get("ALPHA_VENV_CACHE", Path.home() / ".cache" / "alpha-assets"))
    if not list(cache.glob("venv-*/.complete")):
        pytest.skip(f"no cached stack under {cache} to layer on (run .ci/setup-venv.sh once)")
    a, b = _checkout(tmp_path / "a"), _checkout(tmp_path / "b")
    probe = "import alpha_assets, partitions, resources; print(alpha_assets.__file__, partitions.__file__)"
    (tmp_path / "test_probe.py").write_text(
        "import alpha_assets\n\ndef test_probe():\n    print('ALPHA_AT', alpha_assets.__file__)\n"
    )

    _run("bash", ".ci/setup-venv.sh", cwd=a)
    _run("bash", ".ci/setup-venv.sh", cwd=b)  # b last: before the fix, a's `alpha` then imported b's code

    for checkout in (a, b):
        venv = checkout / ".venv" / "bin"
        modules, partitions = _run(venv / "python", "-c", probe, cwd=tmp_path).split()
        assert modules == str(checkout / "alpha_assets" / "__init__.py")
        assert partitions == str(checkout / "partitions" / "__init__.py")
        assert (venv / "alpha").read_text().startswith(f"#!{venv / 'python'}")
        out = _run(
            venv / "pytest", "-q", "-s", "-p", "no:cacheprovider", tmp_path / "test_probe.py", cwd=tmp_path
        )
        assert f"ALPHA_AT {checkout / 'alpha_assets' / '__init__.py'}" in out
        assert "usage: alpha" in _run(venv / "alpha", "--help", cwd=tmp_path)
