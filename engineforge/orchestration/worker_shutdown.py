"""`engineforge worker` runs Prefect's worker as its child and stops it, and the flow runs it started, when
asked to stop.

Prefect's own answer to SIGTERM is to stop polling and exit, leaving the flow-run processes it started to
finish on their own (prefect/utilities/processutils `setup_signal_handlers_worker`); a flow run whose
process dies with the host's service stop then stays RUNNING in Prefect and MLflow. A stopped worker here
takes its flow runs with it: each gets SIGTERM (its stage servers follow it through their lifelines), the
worker gets SIGINT, whatever is still alive after a grace period is killed, and the records of the runs
that died are closed as a dead owner's are (`stale_runs.close_stale`: Prefect CRASHED, MLflow KILLED).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

# Imported with the worker, not while it stops: it brings MLflow, seconds of import on a loaded host.
from engineforge.orchestration import stale_runs

GRACE_S = 4.0  # for the flow runs' own cleanup (MLflow run closed, servers stopped), then SIGKILL


def supervise(argv: list[str], env: dict[str, str], tracking_uri: str) -> int:
    """Run the worker until it exits and return its exit status; or, when SIGTERM/SIGINT comes, stop it and
    its flow runs (a second signal kills them at once) and end this process at once with 128 + the signal.

    At once (os._exit), because every record is closed by then and what is left is interpreter teardown:
    Prefect's and MLflow's exit handlers and their API workers took seconds more on a loaded host, past
    the 10 s a service manager allows a stop."""
    asked: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: asked.append(number))
    # Started after our handlers are in place, so the worker gets SIGINT at its default (a handled signal is
    # reset on exec) even when we were started with it ignored (`nohup ... &`): SIGINT is how `stop` ends it.
    process = subprocess.Popen(argv, env=env)
    while process.poll() is None:
        if asked:
            code = stop(process, tracking_uri, asked)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        time.sleep(0.2)
    return process.returncode


def stop(process: subprocess.Popen, tracking_uri: str, asked: list[int]) -> int:
    started = time.monotonic()
    try:
        worker = psutil.Process(process.pid)
    except psutil.NoSuchProcess:  # it ended on its own as the signal came
        return process.wait()
    flow_runs = _children(worker)
    everything = flow_runs + [p for run in flow_runs for p in _children(run, recursive=True)]
    print(f"engineforge worker: {signal.Signals(asked[0]).name}: stopping {len(flow_runs)} flow run "
          "process(es) and the worker", file=sys.stderr, flush=True)
    for run in flow_runs:
        _signal(run, signal.SIGTERM)
    _signal(worker, signal.SIGINT)  # Prefect's worker stops polling and exits on SIGINT
    deadline = started + GRACE_S
    while time.monotonic() < deadline and len(asked) < 2 and any(_alive(p) for p in [worker, *everything]):
        time.sleep(0.1)
    killed = [p for p in [*everything, worker] if _alive(p)]
    for leftover in killed:
        _signal(leftover, signal.SIGKILL)
    process.wait()
    print(f"engineforge worker: processes ended in {time.monotonic() - started:.1f} s ({len(killed)} killed)",
          file=sys.stderr, flush=True)
    if flow_runs:
        for line in stale_runs.close_stale(tracking_uri):
            print(f"engineforge worker: {line}", file=sys.stderr, flush=True)
    print(f"engineforge worker: stopped in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return 128 + asked[0]


def _children(process: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
    try:
        return process.children(recursive=recursive)
    except psutil.NoSuchProcess:
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(process: psutil.Process, signum: int) -> None:
    try:
        process.send_signal(signum)
    except psutil.NoSuchProcess:
        pass
