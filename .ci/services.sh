#!/usr/bin/env bash
# Services for the packaging tests: Debian's docker.io (dockerd), docker-registry and debootstrap.
#
#   bash .ci/services.sh          # install what is missing, start dockerd, wait until it answers
#
# Idempotent: packages already installed are not reinstalled, a running daemon is left alone.
# Needs root (apt-get, dockerd); as another user it only reports whether a daemon answers, and the
# Docker tests then skip with that reason. The tests start their own registries (docker-registry
# serve CONFIG on 127.0.0.1, random ports) and build engineforge's base image with debootstrap
# once per machine. Environment: DOCKERD_LOG (default /var/log/engineforge-dockerd.log),
# DOCKERD_WAIT_S (default 60), DOCKERD_ARGS (extra dockerd flags, e.g. "--storage-driver=vfs").
set -euo pipefail

PACKAGES=(docker.io docker-registry debootstrap)
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/engineforge-dockerd.log}
DOCKERD_WAIT_S=${DOCKERD_WAIT_S:-60}

say() { echo "services: $*"; }

daemon_answers() { docker info >/dev/null 2>&1; }

if [ "$(id -u)" -ne 0 ]; then
    if command -v docker >/dev/null && daemon_answers; then say "dockerd answers"; else
        say "not root: cannot install or start dockerd; the Docker tests will skip"; fi
    exit 0
fi

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if daemon_answers; then
    say "dockerd already answers"
    exit 0
fi

say "starting dockerd (log: $DOCKERD_LOG)"
# shellcheck disable=SC2086  # DOCKERD_ARGS is a list of flags
setsid dockerd ${DOCKERD_ARGS:-} >>"$DOCKERD_LOG" 2>&1 < /dev/null &
pid=$!
for _ in $(seq 1 "$DOCKERD_WAIT_S"); do
    if daemon_answers; then say "dockerd answers (pid $pid)"; exit 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 1
done
say "dockerd did not answer within ${DOCKERD_WAIT_S}s; last lines of $DOCKERD_LOG:"
tail -n 20 "$DOCKERD_LOG" >&2
exit 1
