"""Starting a model server as a child process and always stopping it.

The server runs in its own process group so that stopping it also stops whatever it spawned
(MPI ranks, worker processes); its output goes to a log file kept with the stage output. The
group is led by engineforge/processes/lifeline.py, which stops it when this process dies, even by SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import httpx

from engineforge.processes.environment import scrubbed_environment
from engineforge.errors import StageFailed, UserError
from engineforge.stage_plan import write_files

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def resolve_executable(argv: list[str]) -> list[str]:
    """Prefer the executable beside this Python (the venv's), then PATH."""
    beside = Path(sys.executable).parent / argv[0]
    if beside.exists():
        return [str(beside), *argv[1:]]
    found = shutil.which(argv[0])
    if found is None:
        # A UserError: the stage task running this names itself in the message it shows.
        raise UserError(f"{argv[0]} not found beside {sys.executable} or on PATH; install it on this worker")
    return [found, *argv[1:]]


@contextmanager
def running_server(
    argv: list[str],
    base_url: str,
    log_path: Path,
    startup_timeout_s: float,
    health_path: str = "/health",
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Start `argv`, wait until `base_url + health_path` answers 200, yield base_url, then stop it."""
    with open(log_path, "ab") as log:
        process = start_owned(argv, log, env)
        try:
            _wait_healthy(process, base_url + health_path, log_path, startup_timeout_s)
            yield base_url
        finally:
            stop_process_group(process)


def start_owned(argv: list[str], log, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `argv` in a new process group that dies with this process; output to the open file `log`.
    It gets this process's environment without secrets, plus `env`."""
    return subprocess.Popen(
        [sys.executable, "-m", "engineforge.processes.lifeline", str(os.getpid()), *resolve_executable(argv)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=scrubbed_environment(**(env or {})),
    )


@contextmanager
def running_servers(plan, host: str, log_path: Path, startup_timeout_s: float, env: dict[str, str] | None = None) -> Iterator[str]:
    """Write a StagePlan's files, start its commands in order (each healthy before the next, each with
    `env` under its own), yield the last one's base URL; stop them all, last first. All output goes to one log."""
    write_files(Path(), plan.files)
    with ExitStack() as stack:
        url = ""
        for command in plan.commands:
            url = stack.enter_context(
                running_server(command.argv, f"http://{host}:{command.port}", log_path, startup_timeout_s,
                               env={**(env or {}), **command.env})
            )
        yield url


def stop_process_group(process: subprocess.Popen, grace_s: float = 10.0, first_signal: int = signal.SIGTERM) -> None:
    """Ask the process group to stop, then kill it after `grace_s`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, first_signal)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


class Unhealthy(Exception):
    """A health URL never answered 200: `exited` says why the server stopped first, else it timed out
    and `last` is what the URL last answered."""

    def __init__(self, exited: str | None, last: str):
        super().__init__(exited or last)
        self.exited, self.last = exited, last


def wait_healthy(url: str, timeout_s: float, exited: Callable[[], str | None] = lambda: None,
                 request_timeout_s: float = 2.0, interval_s: float = 0.25) -> float:
    """Poll GET `url` until it answers 200 and return the seconds that took; raise Unhealthy as soon
    as `exited()` names a reason (the server process or container is gone) or after `timeout_s`."""
    start = time.monotonic()
    last = "no answer yet"
    with httpx.Client(timeout=request_timeout_s) as client:
        while time.monotonic() - start < timeout_s:
            reason = exited()
            if reason:
                raise Unhealthy(reason, last)
            try:
                status = client.get(url).status_code
                if status == 200:
                    return time.monotonic() - start
                last = f"answered {status}"
            except httpx.RequestError as error:  # not up yet, or answering garbage while it starts
                last = type(error).__name__
            time.sleep(interval_s)
    raise Unhealthy(None, last)


def _wait_healthy(process: subprocess.Popen, url: str, log_path: Path, timeout_s: float) -> None:
    try:
        wait_healthy(url, timeout_s, lambda: None if process.poll() is None else f"server exited with code {process.returncode}")
    except Unhealthy as failure:
        if failure.exited:
            raise StageFailed("validate", f"{failure.exited} before it was healthy: {log_tail(log_path)}") from None
        raise StageFailed(
            "validate", f"server not healthy at {url} after {timeout_s:.0f} s (serve.startup_timeout_s): {log_tail(log_path)}"
        ) from None


def log_tail(log_path: Path, lines: int = 3) -> str:
    """The last lines of a log, joined on one line (for one-line failure messages)."""
    try:
        text = log_path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
