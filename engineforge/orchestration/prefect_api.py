"""The Prefect API shows a run; the stages and the MLflow run are its record. When the API goes away
mid-run, what only shows the run (artifacts) is skipped, the run goes on, and `engineforge run`
reports the outcome the record holds, in one line about the API instead of a traceback."""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any, Callable

# A SQLite-backed server started with plain `prefect server start` answers 503 ("database is locked")
# to a read-then-write request whenever another write is under way (engineforge's own waits instead:
# prefect_server.py); Prefect's client gives up after 5 retries (about a minute), and a worker then
# marks the flow run it was starting CRASHED. 7 retries back off 2, 4, ... 128 s: about 4 minutes.
BUSY_SERVER_RETRIES = "7"


def patient_client() -> dict[str, str]:
    """Settings for long-lived Prefect clients (a worker and its flow runs); an operator's own win."""
    return {"PREFECT_CLIENT_MAX_RETRIES": os.environ.get("PREFECT_CLIENT_MAX_RETRIES", BUSY_SERVER_RETRIES)}


def is_unreachable(error: BaseException | None) -> bool:
    """True when `error`, or what it was raised from, says the Prefect API did not answer."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, httpx.TransportError):
            return True
        if isinstance(error, PrefectHTTPStatusError) and error.response.status_code >= 500:
            return True
        error = error.__cause__ or error.__context__
    return False


_gone = False  # one run per process (`engineforge run`, a worker's flow-run process)
_no_retries = ExitStack()  # holds the settings below open for the rest of the process


def show(what: str, call: Callable[..., Any], *args: Any, probe: bool = False, **kwargs: Any) -> Any:
    """`call(...)`, which shows `what` in Prefect; None without calling once the API went away (each
    call would spend the client's retries on it, a minute); the first time it does, say so and carry
    on. With `probe`, one /health request (2 s) first finds an API that died since its last call."""
    from engineforge.orchestration.local_prefect import healthy
    from prefect.settings import PREFECT_API_URL

    if not _gone and probe and PREFECT_API_URL.value() and not healthy(PREFECT_API_URL.value()):
        _went_away(what)
    if _gone:
        return None
    try:
        return call(*args, **kwargs)
    except Exception as error:
        if not is_unreachable(error):
            raise
        _went_away(what)
        return None


def _went_away(what: str) -> None:
    global _gone
    from engineforge.stages import progress
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    _gone = True
    # What Prefect itself still sends (the flow run's final state) would back off 2, 4, ... 32 s first:
    # a finished run held over a minute by an API that is gone. The client reads this at each try.
    _no_retries.enter_context(temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}))
    progress.noticed(f"the Prefect API went away; {what} not shown there")


def went_away_line() -> str:
    from prefect.settings import PREFECT_API_URL

    return (f"warning: the Prefect API ({PREFECT_API_URL.value()}) went away during the run: its flow run "
            "was not updated; the stages and the MLflow run above are the run's record")
