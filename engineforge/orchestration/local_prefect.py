"""A local Prefect server that `engineforge run` starts once and reuses.

Prefect's temporary server costs every command about 7 s to start and stop, more than a fully
cached run takes. Instead, the first `engineforge run` without PREFECT_API_URL starts `prefect
server start` on loopback in the background (state under `.engineforge/prefect/`; through
`prefect_server`, whose SQLite writers wait their turn instead of being refused), and later runs
find it through a small state file. Its UI shows every run. `engineforge server stop` ends it.

That server outlives the run that started it and serves later ones, so it starts with an
environment scrubbed of secrets (tokens, passwords, keys): a run's HF_TOKEN or registry password
must not live on in it. Results Prefect persists (a failed task's exception) stay under the
state directory, not in ~/.prefect/storage.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
from filelock import FileLock

from engineforge.child_environment import SECRET_NAME, scrubbed_environment
from engineforge.errors import UserError
from engineforge.orchestration import prefect_server
from engineforge.serving import LOOPBACK, Unhealthy, free_port, wait_healthy
from engineforge.settings import settings

STATE_FILE = "server.json"
PORT_FILE = "port"  # kept by `stop`, unlike the state file
PROBE_TIMEOUT_S = 4.0


def home() -> Path:
    return settings().PREFECT_HOME.resolve()


def prepare_api(ephemeral: bool = False) -> None:
    """Before a run imports Prefect: results under the state directory, and an API that answers:
    the user's PREFECT_API_URL probed, else the local server (started once), unless `ephemeral`."""
    keep_results_local()
    if os.environ.get("PREFECT_API_URL"):
        probe(os.environ["PREFECT_API_URL"])
    elif not ephemeral:
        os.environ["PREFECT_API_URL"] = ensure_api()


def keep_results_local() -> None:
    """Persist Prefect results under the state directory; call before Prefect is imported (its
    settings are read then). An operator's own setting wins."""
    os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(home() / "storage"))


def probe(url: str) -> None:
    """Fail in seconds, in one line, when the Prefect API at `url` does not answer."""
    if not healthy(url, PROBE_TIMEOUT_S):
        raise UserError(f"Prefect API {url} does not answer (/health, {PROBE_TIMEOUT_S:.0f} s); start it, or "
                        "unset PREFECT_API_URL to use the local server engineforge starts")


def running_api_url(directory: Path | None = None) -> str | None:
    """The URL of a live server started here before, or None."""
    state = _read_state((directory or home()) / STATE_FILE)
    if state and healthy(state["url"]):
        return state["url"]
    return None


def ensure_api(startup_timeout_s: float = 300.0) -> str:  # a first start (database creation) on a loaded 2-core machine took over 120 s
    """PREFECT_API_URL of a live local server, starting one if none answers."""
    directory = home()
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / "start.lock"):  # two runs starting at once share one server
        url = running_api_url(directory)
        if url and not _holds_secrets(_read_state(directory / STATE_FILE)["pid"]):
            return url
        if url:  # started before its environment was scrubbed: replace it
            stop()
        port = _port(directory)
        url = f"http://{LOOPBACK}:{port}/api"
        with open(directory / "server.log", "ab") as log:
            process = subprocess.Popen(
                prefect_server.command("--host", LOOPBACK, "--port", str(port), "--analytics-off", "--no-late-runs"),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env=scrubbed_environment(PREFECT_HOME=str(directory), PREFECT_API_URL=url),
            )
        try:
            wait_healthy(f"{url}/health", startup_timeout_s, lambda: None if process.poll() is None else "exited")
        except Unhealthy:
            process.kill()
            raise UserError(
                f"the local Prefect server did not start (log: {directory / 'server.log'}); "
                "set PREFECT_API_URL to a running server instead"
            ) from None
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
    _wait_exited(state["pid"])  # its port free again for the next start
    path.unlink(missing_ok=True)
    return True


def _port(directory: Path) -> int:
    """The port the server had before when it is free, so that the flow-run URLs MLflow runs were
    tagged with stay valid across restarts; else a free one, kept for next time."""
    path = directory / PORT_FILE
    try:
        port = int(path.read_text())
        with socket.socket() as probe_socket:
            probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            probe_socket.bind((LOOPBACK, port))
        return port
    except (FileNotFoundError, ValueError, OSError):
        port = free_port()
        path.write_text(f"{port}\n")
        return port


def _wait_exited(pid: int, timeout_s: float = 20.0) -> None:
    import psutil

    try:
        psutil.Process(pid).wait(timeout_s)
    except (psutil.Error, psutil.TimeoutExpired):
        pass


def healthy(url: str, timeout_s: float = 2.0) -> bool:
    """Whether the Prefect API at `url` answers /health within `timeout_s`."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _holds_secrets(pid: int) -> bool:
    import psutil

    try:
        return any(SECRET_NAME.search(name) for name in psutil.Process(pid).environ())
    except psutil.Error:
        return False


def _read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
