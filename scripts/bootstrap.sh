#!/usr/bin/env bash
# Create .venv and install engineforge with its test tools. Safe to rerun.
# torch is pinned first so pip takes the CPU build rather than a multi-GB CUDA one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}"
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test,quantize,predict]'
