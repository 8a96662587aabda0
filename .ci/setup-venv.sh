#!/usr/bin/env bash
# Create .venv with the whole stack. The venv lives in a cache folder keyed by the hash of the
# dependency files, and .venv links to it: an unchanged lock reuses the install (CI, fresh clones).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# The key covers what decides the install (build system, dependencies, extras, constraints, the install recipe
# below), not tool settings elsewhere in pyproject.toml, so editing ruff or import-linter config reuses the venv.
RECIPE_VERSION=2  # bump when the install steps below change
KEY=$({ "$PY" -c 'import json, tomllib; d = tomllib.load(open("pyproject.toml", "rb")); p = d["project"]
print(json.dumps([d.get("build-system"), p.get("dependencies"), p.get("optional-dependencies")], sort_keys=True))'
        cat constraints.txt; echo "recipe $RECIPE_VERSION"; } | sha256sum | cut -c1-16)
CACHE=${ALPHA_VENV_CACHE:-$HOME/.cache/alpha-assets}
VENV="$CACHE/venv-$KEY"
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.complete" ]; then
  echo "setup: reusing $VENV"
else
  echo "setup: installing the stack into $VENV (first time: about 10 minutes)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip wheel setuptools
  # torch first, CPU wheel; then everything constrained to it (else pip pulls CUDA torch).
  "$VENV/bin/pip" install -q torch==2.13.0
  "$VENV/bin/pip" install -q -c constraints.txt -e ".[dev]"
  touch "$VENV/.complete"
fi
# The project itself is installed editable from this checkout (cheap, no deps).
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e . >/dev/null
rm -rf .venv
ln -s "$VENV" .venv
echo "setup: .venv -> $VENV"
