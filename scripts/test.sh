#!/usr/bin/env bash
# Set up and run the test suite (sentence-transformers 6.x is the oracle for the numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev >&2
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
