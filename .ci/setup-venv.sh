#!/usr/bin/env bash
# Create .venv with the whole stack. The dependencies live in a cached venv built from requirements.lock (exact
# versions and hashes, from `make lock`) and keyed by its hash, shared by every checkout (an unchanged lock reuses
# the install: CI, fresh clones), and proven equal to the lock on every setup. The project itself is
# never taken from the cache: .venv is a small venv of this checkout, layered on the cached one by a .pth, with
# this checkout installed editable in it and the cached tools wrapped to run on its python. So each checkout's
# `alpha`, pytest and dagster import its own code, whichever checkout ran setup last.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# The cached venv is keyed by the lock (every package at an exact version and hash, from `make lock`) and the
# install recipe below: a new lock is a new venv. A cached venv is then *proven* equal to the lock, every setup,
# so a drifted or hand-modified cache can never pass: it is rebuilt once, and setup fails if it still differs.
RECIPE_VERSION=3  # bump when the install steps below change
KEY=$({ cat requirements.lock; echo "recipe $RECIPE_VERSION"; } | sha256sum | cut -c1-16)
CACHE=${ALPHA_VENV_CACHE:-$HOME/.cache/alpha-assets}
VENV="$CACHE/venv-$KEY"
mkdir -p "$CACHE"
# One setup at a time per cache (two checkouts or a CI run and a developer): the second waits for the first.
exec 9>"$CACHE/.setup.lock"
flock 9
install_stack() {
  echo "setup: installing requirements.lock into $VENV (first time: about 10 minutes)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PY" -m venv "$VENV"
  # Exactly the lock: no resolver (--no-deps), every file checked against its sha256 (--require-hashes).
  # The CPU torch wheel is in the lock (torch==2.13.0+cpu), so no CUDA build can be chosen.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements.lock \
    2> >(grep -v "is ignored: it is neither" >&2)
  touch "$VENV/.complete"
}
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.complete" ]; then
  echo "setup: reusing $VENV"
else
  install_stack
fi
if ! why=$("$VENV/bin/python" .ci/check-venv.py requirements.lock); then
  echo "setup: $why; rebuilding $VENV"
  install_stack
  why=$("$VENV/bin/python" .ci/check-venv.py requirements.lock) || { echo "setup: $why" >&2; exit 1; }
fi
echo "setup: $why"
# The per-checkout layer: a venv of the same python, the cached packages on its path, this checkout editable.
HERE=$(pwd)
rm -rf .venv
"$VENV/bin/python" -m venv --without-pip .venv
STACK=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
OWN=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# addsitedir also runs the cached venv's .pth files; this checkout's own editable finder is installed first.
echo "import site; site.addsitedir('$STACK')" > "$OWN/zz_alpha_stack.pth"
if ! out=$(.venv/bin/python -m pip install -q --no-deps --no-build-isolation --disable-pip-version-check -e . 2>&1)
then
  echo "$out" >&2; exit 1
fi
.venv/bin/python -c 'import alpha_assets, alpha_world, sys; sys.exit(not all(m.__file__.startswith(sys.argv[1]) for m in (alpha_assets, alpha_world)))' "$HERE" \
  || { echo "setup: .venv does not import this checkout's alpha_assets and alpha_world" >&2; exit 1; }
# The cached tools (pytest, dagster, ruff, ...) run with this checkout's python, so they import its code too.
for tool in "$VENV"/bin/*; do
  name=$(basename "$tool")
  case "$name" in python*|pip*|activate*|Activate.ps1|__pycache__) continue ;; esac
  [ -e ".venv/bin/$name" ] && continue  # installed for this checkout (alpha)
  if [ "$(head -c 2 "$tool")" = "#!" ] && head -n 2 "$tool" | grep -q python; then
    printf '#!/bin/sh\nexec "%s/.venv/bin/python" "%s" "$@"\n' "$HERE" "$tool" > ".venv/bin/$name"
    chmod +x ".venv/bin/$name"
  else
    ln -s "$tool" ".venv/bin/$name"  # native binaries (ruff)
  fi
done
echo "setup: .venv (this checkout's code) on the cached stack $VENV"
# The dbt marts' manifest, parsed here once (~5 s) so that loading the code location neither runs `dbt parse` nor
# writes dbt/target/ (it re-parses at load only after a dbt file changed: the dev loop).
.venv/bin/python -c 'from alpha_assets.serving.marts import ensure_manifest; ensure_manifest()' \
  || { echo "setup: dbt parse of dbt/ failed" >&2; exit 1; }
