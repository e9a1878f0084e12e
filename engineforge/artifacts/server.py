"""One machine's tracking server: `mlflow server` on loopback, SQLite backend, proxied artifacts.

Clients then reach artifacts only through the server (`mlflow-artifacts:` URIs), as hosts without
a shared disk must; for many hosts the same flags take a PostgreSQL backend and an object store
(README, "Several hosts"). State (database, artifacts, log, record) lives in `.engineforge/tracking/`
or $ENGINEFORGE_TRACKING_HOME; `local_service` starts it with an environment scrubbed of secrets
(it needs no hub token or registry password) and stops only the process it started.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engineforge.processes import local_service
from engineforge.errors import UserError
from engineforge.processes.serving import LOOPBACK, Unhealthy, wait_healthy
from engineforge.settings import settings

DEFAULT_PORT = 5000


def home() -> Path:
    return settings().TRACKING_HOME.resolve()


def argv(directory: Path, port: int, host: str = LOOPBACK) -> list[str]:
    return [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
            "--artifacts-destination", str(directory / "artifacts"), "--serve-artifacts"]


def running_url(directory: Path | None = None) -> str | None:
    """The URL of the live server started here before, or None."""
    record = local_service.running_record(directory or home(), lambda url: _answers(url, 2.0))
    return record["url"] if record else None


def start(port: int = DEFAULT_PORT, startup_timeout_s: float = 300.0, directory: Path | None = None) -> str:
    """The tracking URI of the server, started unless it already runs (a loaded 2-core machine took 100 s)."""
    directory = directory or home()
    record = local_service.running_record(directory, lambda url: _answers(url, 2.0))
    if record and not local_service.holds_secrets(record):
        return record["url"]
    local_service.stop(directory)  # one started before its environment was scrubbed, or a dead one's record
    url = f"http://{LOOPBACK}:{port}"
    if _answers(url, 2.0):
        raise UserError(f"something else answers at {url}; pass another --port")
    # No MLflow server jobs (GenAI evaluation, trace rollups): engineforge runs none, and without them the
    # server is one uvicorn process instead of five (a job runner and two huey consumers of 15 threads).
    local_service.start(directory, argv(directory, port), url, f"{url}/health", startup_timeout_s,
                        f"mlflow server did not start at {url}", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    return url


def stop(directory: Path | None = None) -> bool:
    """Stop the server `start` started; False when none was running."""
    return local_service.stop(directory or home())


def _answers(url: str, timeout_s: float) -> bool:
    try:
        wait_healthy(f"{url}/health", timeout_s)
    except Unhealthy:
        return False
    return True
