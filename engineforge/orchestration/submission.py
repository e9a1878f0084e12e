"""Submitting recipes to a Prefect server's `model-to-deployment` deployment, and following the runs.

Used by `engineforge submit` and by the revision watcher flow. The recipe travels as its YAML
content, so the worker that runs it needs no copy of the file.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable

from engineforge.errors import UserError
from engineforge.orchestration.retries import BUSY_SERVER_HTTP

FLOW_NAME = "model-to-deployment"
DEFAULT_DEPLOYMENT = f"{FLOW_NAME}/model-to-deployment"
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
# A busy server refuses for a while: on SQLite, one started with plain `prefect server start` answers
# "database is locked" (a 503) at once to a transaction that read before it writes, as creating a flow
# run does, whenever another write is under way (engineforge's own waits: prefect_server.py); any
# server's request can time out. Prefect's client gives up after 5 retries (about a minute).
RETRY_FOR_S = 600.0
RETRY_PAUSE_S = 3.0


# Flow parameters a submitter may not set: `submit` writes the recipe's own, and where a worker reads
# and writes is the worker's to decide (ENGINEFORGE_STORE, ENGINEFORGE_MODEL_ROOTS). A submitted
# store_root let the worker write, and on a failed stage delete (`failed/` is removed), anywhere.
WORKER_CHOSEN = ("store_root", "base_dir", "recipe_yaml", "recipe_origin")


def check_extra_parameters(extra: dict[str, Any]) -> None:
    """Refuse `--param` values that choose paths on the worker, before the server is contacted."""
    refused = [name for name in WORKER_CHOSEN if name in extra]
    if refused:
        raise UserError(f"--param {refused[0]}: not open to a submitter; the worker's own settings choose its "
                        "paths (ENGINEFORGE_STORE, ENGINEFORGE_MODEL_ROOTS) and submit sends the recipe itself")


def store_root_for_run(store_root: str | None) -> str:
    """The store a flow run uses. A run created from a deployment (a worker runs what someone
    submitted) uses the worker's own store, whatever its parameters say; `engineforge run`'s in-process
    flow takes `--store`. (`base_dir` needs no such check: every path it resolves must still lie under
    ENGINEFORGE_MODEL_ROOTS, model/roots.py check_model_path.)"""
    from prefect.runtime import deployment

    from engineforge.artifacts.store import default_root

    own = default_root()
    if store_root is None:
        return str(own)
    if deployment.id and Path(store_root).resolve() != own:
        raise UserError(f"store_root {store_root}: a submitted run uses this worker's store ({own}, ENGINEFORGE_STORE), "
                        "not one its submitter names; submit without store_root")
    return store_root


def deployment_name(name: str) -> str:
    """`FLOW/DEPLOYMENT`; a bare deployment name belongs to the model-to-deployment flow."""
    return name if "/" in name else f"{FLOW_NAME}/{name}"


def recipe_parameters(text: str, origin: str, base_dir: Path | None = None) -> dict[str, Any]:
    parameters: dict[str, Any] = {"recipe_yaml": text, "recipe_origin": origin}
    if base_dir is not None:  # relative model paths, for a worker that shares this file system
        parameters["base_dir"] = str(base_dir)
    return parameters


def require_server() -> str:
    """The Prefect API URL; submitting to the ephemeral API would reach no worker."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise UserError(
            "PREFECT_API_URL is not set: submit sends recipes to a Prefect server's workers; start one "
            "(`prefect server start`) and set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api"
        )
    return url


def submit(
    deployment: str,
    parameters: dict[str, Any],
    tags: list[str] | None = None,
    idempotency_key: str | None = None,
    retry_for_s: float = RETRY_FOR_S,
    on_retry: Callable[[str], None] | None = None,
):
    """Create a flow run of `deployment` now and return it (without waiting for it).

    A refusal that can pass (BUSY_SERVER_HTTP, a request that timed out or was cut) is retried for
    `retry_for_s` under one idempotency key, so that a request the server did commit is never made
    twice; `on_retry(why)` hears of the first retry."""
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    name = deployment_name(deployment)
    key = idempotency_key or f"submit:{uuid.uuid4()}"
    deadline = time.monotonic() + retry_for_s
    told = False
    while True:
        try:
            return run_deployment(name, parameters=parameters, timeout=0, tags=tags, idempotency_key=key)
        except ObjectNotFound:
            raise UserError(
                f"--deployment {name}: no such deployment on {require_server()}; "
                "create it from the repository root with `prefect deploy --all`"
            ) from None
        except PrefectHTTPStatusError as error:
            if error.response.status_code not in BUSY_SERVER_HTTP or time.monotonic() > deadline:
                raise UserError(f"--deployment {name}: the server refused the run: {_error_detail(error)}") from None
            refused = f"the server is busy (HTTP {error.response.status_code}: {_error_detail(error)})"
        except httpx.ConnectError as error:  # nothing listens: no point waiting
            raise UserError(f"PREFECT_API_URL {require_server()} does not answer ({error}); start the server or fix the URL") from None
        except httpx.TransportError as error:
            if time.monotonic() > deadline:
                raise UserError(f"--deployment {name}: the Prefect API stopped answering ({type(error).__name__}) "
                                f"for {retry_for_s:.0f} s; check the server at {require_server()}") from None
            refused = f"the server did not answer ({type(error).__name__})"
        if on_retry is not None and not told:
            on_retry(f"{refused}; retrying for up to {retry_for_s:.0f} s")
            told = True
        time.sleep(RETRY_PAUSE_S)


def flow_run_url(flow_run_id) -> str | None:
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=flow_run_id)


def follow(
    flow_run_ids: list,
    on_state: Callable[[Any], None],
    poll_s: float = 2.0,
) -> dict[str, Any]:
    """Poll the runs until each reaches a final state; call `on_state(flow_run)` at every new state."""
    from prefect.client.orchestration import get_client

    seen: dict[str, str | None] = {str(run_id): None for run_id in flow_run_ids}
    final: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(seen):
            for run_id in seen:
                if run_id in final:
                    continue
                run = client.read_flow_run(run_id)
                state = run.state.name if run.state else None
                if state != seen[run_id]:
                    seen[run_id] = state
                    on_state(run)
                if run.state and run.state.type.value in FINAL_STATES:
                    final[run_id] = run
            if len(final) < len(seen):
                time.sleep(poll_s)
    return final


def summary_artifact(flow_run_id) -> str | None:
    """The run's markdown summary (what the flow published as it ended), if it got that far."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )

    from engineforge.orchestration.run_artifacts import SUMMARY

    artifact_filter = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
        type=ArtifactFilterType(any_=["markdown"]),
    )
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=artifact_filter)
    summaries = [a for a in artifacts if a.key and a.key.endswith(f"-{SUMMARY}")]
    return summaries[-1].data if summaries else None


def _error_detail(error) -> str:
    try:
        body = error.response.json()
    except Exception:
        return str(error).splitlines()[0]
    detail = (body.get("detail") or body.get("exception_message")) if isinstance(body, dict) else body
    return " ".join(str(detail).split())[:500]
