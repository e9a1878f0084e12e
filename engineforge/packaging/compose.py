"""compose.yaml for a disaggregated TensorRT-LLM deployment of a built image.

Layout (trtllm-facts.md, "trtllm-serve", from examples/disaggregated/README.md): every context and
generation server is a `trtllm-serve MODEL` whose extra LLM API options carry a
`cache_transceiver_config`; the front is `trtllm-serve disaggregated -c disagg_config.yaml` listing
the servers' URLs. Each server gets its own GPUs through a device reservation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engineforge.packaging.spec import MODEL_DIR_IN_IMAGE

CONFIG_DIR_IN_CONTAINER = "/etc/engineforge"
WORKER_PORT = 8001


class ServerGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: int = Field(1, ge=1)
    tensor_parallel: int = Field(1, ge=1)
    pipeline_parallel: int = Field(1, ge=1)

    @property
    def gpus_each(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel


class DisaggregatedLayout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(..., description="The built image, ideally pinned: registry/repo@sha256:...")
    context: ServerGroup = Field(default_factory=ServerGroup)
    generation: ServerGroup = Field(default_factory=ServerGroup)
    port: int = Field(8000, ge=1, le=65535, description="Published port of the disaggregated front.")
    cache_transceiver_backend: Literal["DEFAULT", "UCX", "NIXL"] = "DEFAULT"
    max_tokens_in_buffer: int = Field(4096, ge=1)
    gpus_available: int | None = Field(None, ge=1, description="Refuse layouts that need more GPUs than this.")

    @model_validator(mode="after")
    def _fits(self) -> "DisaggregatedLayout":
        needed = self.context.instances * self.context.gpus_each + self.generation.instances * self.generation.gpus_each
        if self.gpus_available is not None and needed > self.gpus_available:
            raise ValueError(f"the layout needs {needed} GPUs but gpus_available is {self.gpus_available}")
        return self


def _server_names(role: str, group: ServerGroup) -> list[str]:
    return [f"{role}-{i}" for i in range(group.instances)]


def _extra_options(layout: DisaggregatedLayout) -> dict:
    return {
        "cache_transceiver_config": {
            "backend": layout.cache_transceiver_backend,
            "max_tokens_in_buffer": layout.max_tokens_in_buffer,
        }
    }


def _worker(layout: DisaggregatedLayout, group: ServerGroup, gpu_ids: list[int], options_file: str) -> dict:
    command = [
        "trtllm-serve", MODEL_DIR_IN_IMAGE, "--host", "0.0.0.0", "--port", str(WORKER_PORT),
        "--tp_size", str(group.tensor_parallel), "--pp_size", str(group.pipeline_parallel),
        "--extra_llm_api_options", f"{CONFIG_DIR_IN_CONTAINER}/{options_file}",
    ]
    return {
        "image": layout.image,
        "entrypoint": command,
        "ipc": "host",
        "volumes": [f"./{options_file}:{CONFIG_DIR_IN_CONTAINER}/{options_file}:ro"],
        "deploy": {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "device_ids": [str(i) for i in gpu_ids], "capabilities": ["gpu"]}
        ]}}},
        "healthcheck": {
            "test": ["CMD", "python3", "-c", f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{WORKER_PORT}/health', timeout=4)"],
            "interval": "15s", "timeout": "5s", "retries": 3, "start_period": "600s",
        },
    }


def render_compose(layout: DisaggregatedLayout) -> dict[str, dict]:
    """{file name: YAML data}: compose.yaml, the workers' option files and the front's config."""
    services: dict[str, dict] = {}
    next_gpu = 0
    urls: dict[str, list[str]] = {}
    for role, group in (("context", layout.context), ("generation", layout.generation)):
        urls[role] = []
        for name in _server_names(role, group):
            gpu_ids = list(range(next_gpu, next_gpu + group.gpus_each))
            next_gpu += group.gpus_each
            services[name] = _worker(layout, group, gpu_ids, f"{role}_options.yaml")
            urls[role].append(f"{name}:{WORKER_PORT}")
    front_config = {
        "hostname": "0.0.0.0",
        "port": layout.port,
        "backend": "pytorch",
        "context_servers": {"num_instances": layout.context.instances, "urls": urls["context"]},
        "generation_servers": {"num_instances": layout.generation.instances, "urls": urls["generation"]},
    }
    services["front"] = {
        "image": layout.image,
        "entrypoint": ["trtllm-serve", "disaggregated", "-c", f"{CONFIG_DIR_IN_CONTAINER}/disagg_config.yaml"],
        "ports": [f"{layout.port}:{layout.port}"],
        "volumes": [f"./disagg_config.yaml:{CONFIG_DIR_IN_CONTAINER}/disagg_config.yaml:ro"],
        "depends_on": {name: {"condition": "service_healthy"} for name in services},
    }
    return {
        "compose.yaml": {"name": "engineforge", "services": services},
        "context_options.yaml": _extra_options(layout),
        "generation_options.yaml": _extra_options(layout),
        "disagg_config.yaml": front_config,
    }


def write_compose(layout: DisaggregatedLayout, out_dir: Path) -> Path:
    """Write compose.yaml and its config files into out_dir; return compose.yaml's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in render_compose(layout).items():
        (out_dir / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return out_dir / "compose.yaml"
