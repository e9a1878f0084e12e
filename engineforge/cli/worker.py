import importlib.util
import os
import sys
from pathlib import Path

import typer

from engineforge.errors import UserError
from engineforge.settings import settings, variable


def command(
    pool: str = typer.Option("gpu", "--pool", help="Work pool to take flow runs from."),
    gpus: int = typer.Option(None, "--gpus", min=0, help="GPU slots this host offers (default: the GPUs torch/NVML sees)."),
    limit_name: str = typer.Option(None, "--limit-name", help="Global concurrency limit of this host's GPUs (default $ENGINEFORGE_GPU_LIMIT or gpu-<hostname>)."),
    worker_type: str = typer.Option("process", "--type", help="Worker type (process, docker: flow runs in containers), used when the pool does not exist yet."),
    name: str = typer.Option(None, "--name", help="Worker name shown in the Prefect UI."),
    flow_runs: int = typer.Option(None, "--flow-runs", min=1, help="Run at most this many flow runs at once (prefect worker --limit)."),
    checkout: Path = typer.Option(Path("."), "--checkout", help="The clone flow runs execute in (ENGINEFORGE_CHECKOUT, the pull step's directory)."),
) -> int:
    """Declare this host's GPU slots on the Prefect server, then run `prefect worker start` on the pool; on
    SIGTERM or Ctrl-C stop it and its running flow runs (recorded CRASHED) within seconds."""
    from engineforge.orchestration import gpu_slots, local_prefect, prefect_api
    from engineforge.orchestration.submission import require_server

    if worker_type == "docker" and importlib.util.find_spec("prefect_docker") is None:
        raise UserError("--type docker: Prefect's Docker worker is not installed; pip install 'engineforge[docker-worker]'")
    require_server()
    if not (checkout / "prefect.yaml").is_file():
        raise UserError(f"--checkout {checkout}: no prefect.yaml there; run the worker from a clone of this repository")
    if gpus is None:
        from engineforge.gpus import gpu_info

        gpus = int(gpu_info()["gpu_count"] or 0)
    limit = gpu_slots.declare_limit(gpus, limit_name)
    print(f"GPU slots: {gpus} on global concurrency limit {limit}" + ("" if gpus else " (GPU stages will fail here; pass --gpus N)"),
          file=sys.stderr, flush=True)
    local_prefect.keep_results_local()  # flow runs persist results under the state dir, not ~/.prefect
    env = {**os.environ, gpu_slots.LIMIT_ENV: limit, variable("CHECKOUT"): str(checkout.resolve()),
           **_operator_settings(), **prefect_api.patient_client()}
    argv = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", worker_type]
    if name:
        argv += ["--name", name]
    if flow_runs:
        argv += ["--limit", str(flow_runs)]
    from engineforge.orchestration import worker_shutdown

    # Prefect's worker runs as our child: a stop signal stops it and the flow runs it started (worker_shutdown).
    return worker_shutdown.supervise(argv, env, env["MLFLOW_TRACKING_URI"])


def _operator_settings() -> dict[str, str]:
    """Submitted recipes are untrusted: this host, not the recipe, says where runs are recorded
    (MLflow's variable wins over tracking.uri) and which local model directories they may read
    (none unless ENGINEFORGE_MODEL_ROOTS says so)."""
    from engineforge.model.roots import ROOTS_ENV
    from engineforge.tracking.mlflow_runs import DEFAULT_URI

    chosen = {"MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI,
              ROOTS_ENV: settings().MODEL_ROOTS or ""}
    if not chosen[ROOTS_ENV]:
        print(f"local model directories: none allowed (set {ROOTS_ENV}=DIR{os.pathsep}DIR to allow some)",
              file=sys.stderr, flush=True)
    return chosen
