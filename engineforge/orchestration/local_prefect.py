"""A local Prefect server that `engineforge run` starts once and reuses.

Prefect's temporary server costs every command about 7 s to start and stop, more than a fully
cached run takes. Instead, the first `engineforge run` without PREFECT_API_URL starts `prefect
server start` on loopback in the background (state under `.engineforge/prefect/`), and later runs
find it through a small state file. Its UI shows every run. `engineforge server stop` ends it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from engineforge.errors import UserError
from engineforge.serving import LOOPBACK, free_port

STATE_FILE = "server.json"


def home() -> Path:
    return Path(os.environ.get("ENGINEFORGE_PREFECT_HOME", ".engineforge/prefect")).resolve()


def running_api_url(directory: Path | None = None) -> str | None:
    """The URL of a live server started here before, or None."""
    state = _read_state((directory or home()) / STATE_FILE)
    if state and _healthy(state["url"]):
        return state["url"]
    return None


def ensure_api(startup_timeout_s: float = 120.0) -> str:
    """PREFECT_API_URL of a live local server, starting one if none answers."""
    directory = home()
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / "start.lock"):  # two runs starting at once share one server
        url = running_api_url(directory)
        if url:
            return url
        port = free_port()
        url = f"http://{LOOPBACK}:{port}/api"
        with open(directory / "server.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", LOOPBACK, "--port", str(port),
                 "--analytics-off", "--no-late-runs"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "PREFECT_HOME": str(directory), "PREFECT_API_URL": url},
            )
        deadline = time.monotonic() + startup_timeout_s
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise UserError(
                    f"the local Prefect server did not start (log: {directory / 'server.log'}); "
                    "set PREFECT_API_URL to a running server instead"
                )
            time.sleep(0.25)
        (directory / STATE_FILE).write_text(json.dumps({"url": url, "pid": process.pid}))
        return url


def stop() -> bool:
    """Stop the server `ensure_api` started; False when none was running."""
    path = home() / STATE_FILE
    state = _read_state(path)
    if state is None:
        return False
    try:
        os.killpg(state["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    path.unlink(missing_ok=True)
    return True


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


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
