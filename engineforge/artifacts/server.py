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
import time
from pathlib import Path

import httpx

from engineforge.errors import UserError
from engineforge.serving import LOOPBACK

STATE_FILE = "server.json"
DEFAULT_PORT = 5000


def home() -> Path:
    return Path(os.environ.get("ENGINEFORGE_TRACKING_HOME", ".engineforge/tracking")).resolve()


def argv(directory: Path, port: int, host: str = LOOPBACK) -> list[str]:
    return [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
            "--artifacts-destination", str(directory / "artifacts"), "--serve-artifacts"]


def running_url(directory: Path | None = None) -> str | None:
    """The URL of the live server started here before, or None."""
    state = _read_state((directory or home()) / STATE_FILE)
    return state["url"] if state and _healthy(state["url"]) else None


def start(port: int = DEFAULT_PORT, startup_timeout_s: float = 300.0, directory: Path | None = None) -> str:
    """The tracking URI of the server, started unless it already runs."""
    directory = directory or home()
    if url := running_url(directory):
        return url
    directory.mkdir(parents=True, exist_ok=True)
    url = f"http://{LOOPBACK}:{port}"
    if _healthy(url):
        raise UserError(f"something else answers at {url}; pass another --port")
    with open(directory / "server.log", "ab") as log:
        process = subprocess.Popen(argv(directory, port), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + startup_timeout_s
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            _kill(process.pid)
            raise UserError(f"mlflow server did not start at {url} (log: {directory / 'server.log'})")
        time.sleep(0.25)
    (directory / STATE_FILE).write_text(json.dumps({"url": url, "pid": process.pid}))
    return url


def stop(directory: Path | None = None) -> bool:
    """Stop the server `start` started; False when none was recorded."""
    path = (directory or home()) / STATE_FILE
    state = _read_state(path)
    if state is None:
        return False
    _kill(state["pid"])
    path.unlink(missing_ok=True)
    return True


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # the server and its uvicorn workers
    except ProcessLookupError:
        pass


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
