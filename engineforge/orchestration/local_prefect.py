"""A local Prefect server that `engineforge run` starts once and reuses.

Prefect's temporary server costs every command about 7 s to start and stop, more than a fully
cached run takes. Instead, the first `engineforge run` without PREFECT_API_URL starts `prefect
server start` on loopback in the background (state under `.engineforge/prefect/`; through
`prefect_server`, whose SQLite writers wait their turn instead of being refused), and later runs
find it through a small state file. Its UI shows every run. `engineforge server stop` ends it.

That server outlives the run that started it and serves later ones on purpose; `local_service` starts
it with an environment scrubbed of secrets, records it, and stops only that process. Results Prefect persists (a failed task's exception) stay under the
state directory, not in ~/.prefect/storage.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
from filelock import FileLock

from engineforge.processes import local_service
from engineforge.errors import UserError
from engineforge.orchestration import prefect_server
from engineforge.processes.serving import LOOPBACK, free_port
from engineforge.settings import settings

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
    record = local_service.running_record(directory or home(), healthy)
    return record["url"] if record else None


def ensure_api(startup_timeout_s: float = 300.0) -> str:  # a first start (database creation) on a loaded 2-core machine took over 120 s
    """PREFECT_API_URL of a live local server, starting one if none answers."""
    directory = home()
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / "start.lock"):  # two runs starting at once share one server
        record = local_service.running_record(directory, healthy)
        if record and not local_service.holds_secrets(record):
            return record["url"]
        local_service.stop(directory)  # one started before its environment was scrubbed, or a dead one's record
        port = _port(directory)
        url = f"http://{LOOPBACK}:{port}/api"
        local_service.start(
            directory, prefect_server.command("--host", LOOPBACK, "--port", str(port), "--analytics-off", "--no-late-runs"),
            url, f"{url}/health", startup_timeout_s,
            "the local Prefect server did not start; set PREFECT_API_URL to a running server instead",
            PREFECT_HOME=str(directory), PREFECT_API_URL=url,
        )
        return url


def stop() -> bool:
    """Stop the server `ensure_api` started; False when none was running."""
    return local_service.stop(home())


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


def healthy(url: str, timeout_s: float = 2.0) -> bool:
    """Whether the Prefect API at `url` answers /health within `timeout_s`."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False
