"""One machine's tracking server: `mlflow server` on loopback, SQLite backend, proxied artifacts.

Clients then reach artifacts only through the server (`mlflow-artifacts:` URIs), as hosts without
a shared disk must; for many hosts the same flags take a PostgreSQL backend and an object store
(README, "Several hosts"). State (database, artifacts, log, pid) lives in `.engineforge/tracking/`
or $ENGINEFORGE_TRACKING_HOME.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from engineforge.errors import UserError
from engineforge.serving import LOOPBACK, Unhealthy, wait_healthy
from engineforge.settings import settings

STATE_FILE = "server.json"
DEFAULT_PORT = 5000


def home() -> Path:
    return settings().TRACKING_HOME.resolve()


def argv(directory: Path, port: int, host: str = LOOPBACK) -> list[str]:
    return [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
            "--artifacts-destination", str(directory / "artifacts"), "--serve-artifacts"]


def running_url(directory: Path | None = None) -> str | None:
    """The URL of the live server started here before, or None."""
    state = _state(directory or home())
    return state["url"] if state and _answers(state["url"], 2.0) else None


def start(port: int = DEFAULT_PORT, startup_timeout_s: float = 300.0, directory: Path | None = None) -> str:
    """The tracking URI of the server, started unless it already runs (a loaded 2-core machine took 100 s)."""
    directory = directory or home()
    if url := running_url(directory):
        return url
    directory.mkdir(parents=True, exist_ok=True)
    url = f"http://{LOOPBACK}:{port}"
    if _answers(url, 2.0):
        raise UserError(f"something else answers at {url}; pass another --port")
    with open(directory / "server.log", "ab") as log:
        process = subprocess.Popen(argv(directory, port), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    if not _answers(url, startup_timeout_s, lambda: None if process.poll() is None else "exited"):
        _kill(process.pid)
        raise UserError(f"mlflow server did not start at {url} (log: {directory / 'server.log'})")
    (directory / STATE_FILE).write_text(json.dumps({"url": url, "pid": process.pid}))
    return url


def stop(directory: Path | None = None) -> bool:
    """Stop the server `start` started; False when none was recorded."""
    directory = directory or home()
    state = _state(directory)
    if state is None:
        return False
    _kill(state["pid"])
    (directory / STATE_FILE).unlink(missing_ok=True)
    return True


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # the server and its uvicorn workers
    except ProcessLookupError:
        pass


def _answers(url: str, timeout_s: float, exited=lambda: None) -> bool:
    try:
        wait_healthy(f"{url}/health", timeout_s, exited)
    except Unhealthy:
        return False
    return True


def _state(directory: Path) -> dict | None:
    path = directory / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None
