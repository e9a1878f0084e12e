"""`python -m engineforge.processes.lifeline PARENT_PID ARGV...`: run ARGV so that it dies with PARENT_PID.

A server we start lives in its own process group (so stopping it stops what it spawned) and so
outlives a parent killed with SIGKILL, which runs no cleanup. This small leader of that group asks
the kernel for a signal when its parent dies (PR_SET_PDEATHSIG) and then stops the whole group:
TERM, a short grace, KILL. Otherwise it waits for ARGV and exits with its code, so callers that
poll it see the server's own exit.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
GRACE_S = 5.0


orphaned = False


def _parent_died(signum, frame) -> None:
    global orphaned
    orphaned = True


def main(parent: int, argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a group stop is for the server; we follow it out
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, _parent_died)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGHUP)
    if os.getppid() != parent:  # the parent died before the request took effect
        return 1
    child = subprocess.Popen(argv, preexec_fn=_default_signals)
    while not orphaned:
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    os.killpg(0, signal.SIGTERM)  # reaches this process too, which ignores it
    try:
        child.wait(timeout=GRACE_S)
    finally:
        os.killpg(0, signal.SIGKILL)  # the server's leftovers and this process


def _default_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


if __name__ == "__main__":
    code = main(int(sys.argv[1]), sys.argv[2:])
    sys.exit(code if code >= 0 else 128 - code)
