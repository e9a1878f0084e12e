#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, start the services the tests use, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -f .ci/services.sh ]; then bash .ci/services.sh; fi   # dockerd, registry, debootstrap (root only)
.venv/bin/pytest -q -p no:cacheprovider "$@"
