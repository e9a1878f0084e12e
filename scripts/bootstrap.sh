#!/usr/bin/env bash
# Create .venv and install engineforge with its test tools. Safe to rerun. One line per step, then the
# installers' own output, so a slow network shows as progress rather than silence.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
step() { printf '[bootstrap %4ss] %s\n' "$SECONDS" "$*"; }
step "virtual environment .venv"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/pip "$@" --disable-pip-version-check; }
# torch through pip, first: pip's configuration may point at a local CPU build, which uv never reads;
# with it installed, uv keeps it instead of fetching a multi-GB CUDA build. --no-compile: byte-compiling
# torch's thousands of modules took 5 of this step's 6 minutes on a loaded 2-core machine; Python
# compiles the few it imports on first use.
step "torch ${TORCH_VERSION:-2.13.0} (CPU build, pip)"
pip install --no-compile "torch==${TORCH_VERSION:-2.13.0}"
step "uv (the installer for the rest: several times faster than pip here)"
pip install --quiet 'uv>=0.5'
step "engineforge[test,quantize,predict] and its dependencies (uv)"
.venv/bin/uv pip install --python .venv/bin/python -e '.[test,quantize,predict]'
# uv does not byte-compile: compile what `engineforge run` imports before its first line (seconds), so
# the first run prints at once; the rest compiles as a run first imports it.
.venv/bin/python -c 'import engineforge.cli.app, engineforge.cli.run'
step "done: $(.venv/bin/engineforge --version)"
