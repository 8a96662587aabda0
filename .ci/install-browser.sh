#!/usr/bin/env bash
# Debian's chromium for the browser tests (alpha_assets_tests/serving/test_browser.py), driven by Playwright's Python
# package through executable_path: never `playwright install` (it downloads a browser). Idempotent, quiet.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) 1>&2
fi
/usr/bin/chromium --version 2>/dev/null | head -1
