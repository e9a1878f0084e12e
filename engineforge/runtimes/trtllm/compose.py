"""compose.yaml for a disaggregated deployment of a built image (examples/disaggregated/README.md;
trtllm-facts.md, "trtllm-serve").

Each context and generation server is a compose service running the same `trtllm-serve` command
line the worker runs (`disagg.commands`: the role's tp/pp/ep, its options file), on its own GPUs
through a device reservation; the front is `trtllm-serve disaggregated -c disagg_config.yaml`
naming the services. Compose runs on one host, so no multi-node launcher is added.
"""

from __future__ import annotations

from engineforge.packaging.spec import MODEL_DIR_IN_IMAGE
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.trtllm.disagg import (
    CONFIG_FILE,
    ROLES,
    Worker,
    disagg_config,
    options_file,
    role_options,
    worker_count,
    workers,
)
from engineforge.runtimes.trtllm.files import yaml_text
from engineforge.runtimes.trtllm.serve import SERVE, pytorch_serve_argv

CONFIG_DIR_IN_CONTAINER = "/etc/engineforge"
WORKER_PORT = 8001
BIND_HOST = "0.0.0.0"


def _mounted(name: str) -> str:
    return f"./{name}:{CONFIG_DIR_IN_CONTAINER}/{name}:ro"


def _worker_service(recipe: Recipe, image: str, worker: Worker) -> dict:
    options = options_file(worker.role)
    argv = pytorch_serve_argv(recipe, MODEL_DIR_IN_IMAGE, f"{CONFIG_DIR_IN_CONTAINER}/{options}", BIND_HOST,
                              WORKER_PORT, worker.layout)
    health = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{WORKER_PORT}/health', timeout=4)"
    return {
        "image": image,
        "entrypoint": argv,
        "ipc": "host",
        "volumes": [_mounted(options)],
        "deploy": {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "device_ids": [str(g) for g in worker.gpus], "capabilities": ["gpu"]}
        ]}}},
        # start_period: a large model's first load (weights, CUDA graphs) takes minutes
        "healthcheck": {"test": ["CMD", "python3", "-c", health],
                        "interval": "15s", "timeout": "5s", "retries": 3, "start_period": "600s"},
    }


def compose_files(recipe: Recipe, image: str) -> dict[str, str]:
    """{file name: text}: compose.yaml, each role's options and the front's `disagg_config.yaml`."""
    servers = workers(recipe, [WORKER_PORT] * worker_count(recipe))
    services = {w.name: _worker_service(recipe, image, w) for w in servers}
    services["front"] = {
        "image": image,
        "entrypoint": [SERVE, "disaggregated", "-c", f"{CONFIG_DIR_IN_CONTAINER}/{CONFIG_FILE}"],
        "ports": [f"{recipe.serve.port}:{recipe.serve.port}"],
        "volumes": [_mounted(CONFIG_FILE)],
        "depends_on": {w.name: {"condition": "service_healthy"} for w in servers},
    }
    texts = {"compose.yaml": yaml_text({"name": "engineforge", "services": services})}
    texts.update({options_file(role): yaml_text(role_options(recipe, role)) for role in ROLES})
    texts[CONFIG_FILE] = yaml_text(disagg_config(recipe, BIND_HOST, recipe.serve.port, servers,
                                                 url_host=lambda w: w.name))
    return texts
