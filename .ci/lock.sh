#!/usr/bin/env bash
# Regenerate requirements.lock: every package of the stack, transitive ones included, at an exact version with the
# sha256 of the file pip chose. One resolve of pyproject.toml (with the dev extra) under constraints.txt (the
# top-level pins: CPU torch, the dagster family, dask + distributed, ...), in a throwaway venv, with pip's
# --dry-run --report, so nothing is installed. Usage: make lock (then commit requirements.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# The installer itself is part of the lock: the same pip resolves and installs everywhere.
PIP_VERSION=26.3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "pip==$PIP_VERSION"
echo "lock: resolving pyproject.toml[dev] under constraints.txt (a few minutes: metadata only, nothing installed)"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check --dry-run --ignore-installed --report "$WORK/report.json" \
  -c constraints.txt "pip==$PIP_VERSION" "setuptools==80.9.0" "wheel==0.45.1" -e ".[dev]" 2> >(grep -v "is ignored: it is neither" >&2)
"$WORK/venv/bin/python" - "$WORK/report.json" > requirements.lock.tmp <<'PY'
import json, re, sys

report = json.load(open(sys.argv[1]))
lines = []
for item in report["install"]:
    meta = item["metadata"]
    name = re.sub(r"[-_.]+", "-", meta["name"]).lower()
    if name == "alpha-assets":  # this project: installed editable by setup, never from the lock
        continue
    hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
    if "sha256" not in hashes:
        sys.exit(f"lock: no sha256 for {name} {meta['version']} ({item['download_info'].get('url')})")
    lines.append(f"{name}=={meta['version']} \\\n    --hash=sha256:{hashes['sha256']}")
print("# The whole stack, resolved by `make lock` (.ci/lock.sh) from pyproject.toml[dev] + constraints.txt.")
print("# Do not edit by hand. `make setup` installs exactly this (--require-hashes --no-deps) and checks the venv equals it.")
print(f"# python {sys.version.split()[0]}, {len(lines)} packages")
print("\n".join(sorted(lines)))
PY
mv requirements.lock.tmp requirements.lock
echo "lock: wrote requirements.lock ($(grep -c '^[a-z0-9]' requirements.lock) packages)"
