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
# Everything comes from requirements.lock (scripts/lock.sh makes it; README says how to upgrade).
TORCH_VERSION=${TORCH_VERSION:-$(sed -n 's/^# torch==\([^ ]*\).*/\1/p' requirements.lock)}
# torch through pip, first: pip's configuration may point at a local CPU build, which uv never reads;
# with it installed, uv keeps it instead of fetching a multi-GB CUDA build. --no-compile: pip compiles
# one file at a time (5 of this step's 6 minutes on a loaded 2-core machine); compiled below, on all cores.
step "torch ${TORCH_VERSION} (the host's build; CPU here, through pip)"
pip install --no-compile "torch==${TORCH_VERSION}"
step "uv ${UV_VERSION:=0.13.9} (the installer for the rest: several times faster than pip here)"
pip install --quiet "uv==${UV_VERSION}"
step "the locked dependencies (requirements.lock, hashes checked) and engineforge itself (uv)"
# --compile-bytecode: the venv's modules compiled once, on all cores; where PYTHONDONTWRITEBYTECODE is
# set, Python would otherwise compile them again in memory on every command (first line: 42 s, not 12).
# --no-deps: the lock is the whole closure but torch (installed above, unhashed: the host's build);
# `uv pip check` then proves the environment consistent.
.venv/bin/uv pip install --python .venv/bin/python --compile-bytecode --require-hashes --no-deps -r requirements.lock
.venv/bin/uv pip install --python .venv/bin/python --compile-bytecode --no-deps -e .
.venv/bin/uv pip check --python .venv/bin/python
step "bytecode for what pip installed (torch, sympy, ...): uv compiles only the packages it installs"
# Without it, every process that imports torch compiles ~4,000 files in memory where PYTHONDONTWRITEBYTECODE
# is set: `transformers serve` of the tiny model answered after 24 s, 14 s with it. Files written for a
# newer Python (torch's py312_intrinsics.py) do not compile here; as pip and uv do, their errors are ignored.
.venv/bin/python -m compileall -q -j 0 "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null || true
step "done: $(.venv/bin/engineforge --version)"
