"""Prove a venv holds exactly requirements.lock: same names, same versions, nothing missing, nothing extra.

Run with the venv's python: `VENV/bin/python .ci/check-venv.py requirements.lock`. Exit 0 and one line when equal;
exit 1 and one line naming every difference otherwise (setup then rebuilds the venv once, then fails).
The project itself (installed editable by setup) is not part of the lock and is ignored.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

IGNORED = {"alpha-assets"}


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            out[canon(m.group(1))] = m.group(2)
    return out


def installed() -> dict[str, str]:
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[canon(name)] = dist.version
    return out


def main() -> int:
    lock_path = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")
    want, have = locked(lock_path), installed()
    for name in IGNORED:
        want.pop(name, None)
        have.pop(name, None)
    diffs = []
    for name in sorted(set(want) | set(have)):
        w, h = want.get(name), have.get(name)
        if w == h:
            continue
        if h is None:
            diffs.append(f"{name} {w} missing")
        elif w is None:
            diffs.append(f"{name} {h} not in the lock")
        else:
            diffs.append(f"{name} {h} installed, {w} locked")
    if diffs:
        print(f"venv differs from {lock_path} ({len(diffs)}): " + "; ".join(diffs))
        return 1
    print(f"venv equals {lock_path} ({len(want)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
