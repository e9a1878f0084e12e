#!/usr/bin/env bash
# Re-resolve requirements.lock from pyproject.toml (every extra), with hashes. Run after editing
# pyproject.toml's dependencies, or to upgrade: `bash scripts/lock.sh` (all to the newest allowed),
# `bash scripts/lock.sh --upgrade-package transformers` (one). Commit the lock with the change.
#
# torch is resolved (its CPU build, so no CUDA packages enter the lock) but not emitted: its build is
# the host's (this machine's pip gives the CPU wheel; GPU hosts bring their CUDA build). Its version is
# the `# torch==` line below, which scripts/bootstrap.sh installs; each run's engineforge.lock.json
# records the build it ran with.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=${TORCH_VERSION:-$(sed -n 's/^# torch==\([^ ]*\).*/\1/p' requirements.lock 2>/dev/null || true)}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
constraint=$(mktemp); trap 'rm -f "$constraint"' EXIT
echo "torch==${TORCH_VERSION}+cpu" >"$constraint"
# Where the CPU wheel is found: this workplace's wheel folder, else PyTorch's CPU index.
if [ -d /opt/wheels ]; then cpu_torch=(--find-links /opt/wheels)
else cpu_torch=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match); fi
UV=${UV:-.venv/bin/uv}
"$UV" pip compile pyproject.toml --all-extras --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 "${cpu_torch[@]}" -c "$constraint" --no-emit-package torch --no-header --quiet "$@" -o requirements.lock.new
{
  echo "# The one dependency lock: scripts/bootstrap.sh, CI, the worker image and the serving images install these."
  echo "# Made by scripts/lock.sh from pyproject.toml (every extra); tests/test_dependency_lock.py fails when they disagree."
  echo "# torch==${TORCH_VERSION} (installed by scripts/bootstrap.sh; its build is the host's: CPU here, CUDA on GPU hosts)"
  cat requirements.lock.new
} >requirements.lock
rm requirements.lock.new
echo "requirements.lock: $(grep -c '^[a-z]' requirements.lock) packages, torch ${TORCH_VERSION}"
