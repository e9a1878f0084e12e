"""A background server engineforge starts on this machine and stops later, from another command: the
local Prefect server (`orchestration/local_prefect.py`) and the MLflow tracking server
(`artifacts/server.py`).

One state directory per server holds its log (`server.log`) and its record (`server.json`: URL, pid,
the process's exact start time and command line, `owner.started_process`). The server runs
detached in its own session (it outlives the command that started it, and its process group is its
own), with an environment scrubbed of secrets: it serves later commands, so a caller's HF_TOKEN or
registry password must not live on in it or its workers. The record is written as soon as the
process exists, so a start that is interrupted (an error, Ctrl+C) still stops, or leaves a record of,
what it started. `stop` signals only a process the record proves is the one started: a pid the
kernel has since given to an unrelated process is never signalled, and a record an older engineforge
wrote (URL and pid only) whose pid is alive is refused, naming the file, not guessed at.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil

from engineforge.processes.environment import SECRET_NAME, scrubbed_environment
from engineforge.errors import EngineForgeError, UserError
from engineforge.processes.owner import is_started_process, started_process
from engineforge.processes.serving import Unhealthy, wait_healthy

STATE_FILE = "server.json"
LOG_FILE = "server.log"
STOP_TIMEOUT_S = 20.0


def read_record(directory: Path) -> dict | None:
    try:
        record = json.loads((directory / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def running_record(directory: Path, healthy: Callable[[str], bool]) -> dict | None:
    """The record of the server started here when that very process still runs and answers."""
    record = read_record(directory)
    if record and is_started_process(record) and healthy(record.get("url", "")):
        return record
    return None


def holds_secrets(record: dict) -> bool:
    """Whether the recorded server or one of its children has a secret in its environment (one
    started before its environment was scrubbed), so that it is replaced rather than reused."""
    try:
        process = psutil.Process(record["pid"])
        return any(SECRET_NAME.search(name) for each in (process, *process.children(recursive=True))
                   for name in each.environ())
    except psutil.Error:
        return False


def start(directory: Path, argv: list[str], url: str, health_url: str, timeout_s: float, failure: str,
          **environment: str) -> dict:
    """Start `argv` detached with a scrubbed environment (plus `environment`), record it, and wait
    until `health_url` answers; if it does not, stop it and raise UserError(`failure`), naming the log."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOG_FILE, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=scrubbed_environment(**environment))
    try:
        record = {"url": url, **started_process(process.pid)}  # once the exec shows the server's own command line
        (directory / STATE_FILE).write_text(json.dumps(record))
        wait_healthy(health_url, timeout_s, lambda: None if process.poll() is None else "exited")
    except (Unhealthy, psutil.NoSuchProcess):
        _end(process, directory)
        raise UserError(f"{failure} (log: {directory / LOG_FILE})") from None
    except BaseException:  # interrupted while it starts: nothing half-started stays behind
        _end(process, directory)
        raise
    return record


def stop(directory: Path, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the server `start` recorded in `directory` (its whole process group: the server and its
    workers) and wait until it is gone, so that its port is free; False when no such process ran.
    A record whose pid now names another process is removed without signalling anything."""
    record = read_record(directory)
    if record is None:
        return False
    _refuse_unproven(directory, record)
    ours = is_started_process(record)
    if ours:
        _signal_group(record["pid"], signal.SIGTERM)
        if not _exited(record["pid"], timeout_s):
            _signal_group(record["pid"], signal.SIGKILL)
            _exited(record["pid"], 5.0)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return ours


def _refuse_unproven(directory: Path, record: dict) -> None:
    """An older engineforge's record holds no start time or command line, so nothing proves its pid is
    still the server: while that pid lives, say how to stop it by hand instead of signalling it."""
    pid = record.get("pid")
    if {"create_time", "cmdline"} <= record.keys() or not isinstance(pid, int) or pid <= 0 or not psutil.pid_exists(pid):
        return
    state = directory / STATE_FILE
    raise EngineForgeError(
        f"{state} was written by an older engineforge (pid {pid}, no start time or command line), so nothing "
        f"proves pid {pid} is the server it started; nothing was signalled. If `ps -o pid,lstart,args -p {pid}` "
        f"shows that server, stop it with `kill -TERM -{pid}`; then delete {state}")


def _end(process: subprocess.Popen, directory: Path) -> None:
    """Kill a server that never served, and its record with it."""
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()
    (directory / STATE_FILE).unlink(missing_ok=True)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)  # started with start_new_session: its group id is its pid
    except ProcessLookupError:
        pass


def _exited(pid: int, timeout_s: float) -> bool:
    try:
        psutil.Process(pid).wait(timeout_s)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True
