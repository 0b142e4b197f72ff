#!/usr/bin/env bash
# Set up and run the test suite (sentence-transformers 6.x is the oracle for the numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev >&2
# The web page test drives Debian's Chromium headless: install it when it is missing and this can (root, apt-get).
if [ -z "${OMNIVEC_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] \
        && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
fi
export HF_HUB_OFFLINE=1
# Static checks first (seconds): lint rules, types on src/, the import-layer contract (pyproject.toml).
.venv/bin/python -m ruff check src tests
.venv/bin/pyright
.venv/bin/lint-imports
# --durations=30: the log lists the slowest tests (setup, call, teardown) so a slow-lane growth is seen where it is.
exec .venv/bin/python -m pytest --durations=30 "$@"
