"""prefect.yaml's `docker` job variables, through the real prefect-docker worker and Docker SDK code
that turn them into a container (no daemon, no GPU needed: the request is checked, not run)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]


def docker_job_variables() -> dict:
    from prefect.utilities.templating import apply_values

    definitions = yaml.safe_load((REPO / "prefect.yaml").read_text())["definitions"]
    return apply_values(definitions["job_variables"]["docker"], {}, remove_notset=False)  # `{{ $VAR }}` as `prefect deploy` does


def test_the_docker_job_variables_give_every_flow_run_container_all_gpus_the_store_and_the_tracking_server(monkeypatch):
    from docker.models.containers import _create_container_args
    from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration

    for name, value in {"ENGINEFORGE_IMAGE": "registry.internal/engineforge/worker:trtllm-1.2.1",
                        "ENGINEFORGE_GPU_LIMIT": "gpu-host-a", "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000"}.items():
        monkeypatch.setenv(name, value)
    variables = docker_job_variables()
    jsonschema.validate(variables, DockerWorker.get_default_base_job_template()["variables"])  # the server's check

    config = DockerWorkerJobConfiguration(**variables)
    config.env["PREFECT_API_URL"] = "http://prefect.internal:4200/api"  # what the worker adds for each flow run
    settings = DockerWorker(work_pool_name="gpu")._build_container_settings(None, config)
    create = _create_container_args({**settings, "version": "1.47"})
    host = create["host_config"]

    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]
    assert host["ShmSize"] == 16 * 1024**3
    assert host["Binds"] == ["/var/lib/engineforge:/var/lib/engineforge"]
    assert create["image"] == "registry.internal/engineforge/worker:trtllm-1.2.1"
    environment = create["environment"]
    assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow.internal:5000"
    assert environment["ENGINEFORGE_GPU_LIMIT"] == "gpu-host-a"
    assert environment["ENGINEFORGE_STORE"].startswith("/var/lib/engineforge/")
    assert environment["ENGINEFORGE_CHECKOUT"] == "/opt/engineforge"
    assert not any("{{" in value for value in environment.values())
