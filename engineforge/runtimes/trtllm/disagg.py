"""Disaggregated serving (examples/disaggregated/README.md; trtllm-facts.md, "trtllm-serve").

Every context and generation server is a `trtllm-serve MODEL` with its own GPUs
(CUDA_VISIBLE_DEVICES) and its role's options file (engineforge.trtllm.options.role_options).
The front is `trtllm-serve disaggregated -c disagg_config.yaml` with `hostname`, `port`, `backend`,
`context_servers` {`num_instances`, `urls`} and `generation_servers` {`num_instances`, `urls`}.
compose.py turns the same workers into compose.yaml for a built image.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.recipe.schema import DisaggregatedRole, Recipe
from engineforge.runtimes.trtllm.files import checked_path, yaml_text
from engineforge.runtimes.trtllm.launch import launched
from engineforge.runtimes.trtllm.serve import SERVE, pytorch_serve_argv
from engineforge.stage_plan import Command
from engineforge.trtllm.options import ROLES, options_file, role_options

CONFIG_FILE = "disagg_config.yaml"


class Worker(NamedTuple):
    role: str
    index: int
    layout: ParallelLayout
    gpus: tuple[int, ...]
    port: int

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"


def _group(recipe: Recipe, role: str) -> DisaggregatedRole:
    return getattr(recipe.serve.disaggregated, role)


def worker_count(recipe: Recipe) -> int:
    return sum(_group(recipe, role).instances for role in ROLES)


def workers(recipe: Recipe, ports: list[int | str]) -> list[Worker]:
    """Context servers then generation servers; GPUs handed out in that order, one port each."""
    out: list[Worker] = []
    next_gpu = 0
    for role in ROLES:
        group = _group(recipe, role)
        layout = ParallelLayout(group.tp, group.pp, group.ep)
        for index in range(group.instances):
            gpus = tuple(range(next_gpu, next_gpu + layout.world_size))
            next_gpu += layout.world_size
            out.append(Worker(role, index, layout, gpus, ports[len(out)]))
    return out


def disagg_config(recipe: Recipe, bind_host: str, port: int | str, servers: list[Worker],
                  url_host: Callable[[Worker], str]) -> dict[str, Any]:
    config: dict[str, Any] = {"hostname": bind_host, "port": port, "backend": "pytorch"}
    for role in ROLES:
        urls = [f"{url_host(w)}:{w.port}" for w in servers if w.role == role]
        config[f"{role}_servers"] = {"num_instances": len(urls), "urls": urls}
    return config


def files(recipe: Recipe, bind_host: str, url_host: str, port: int | str, ports: list[int | str]) -> dict[str, str]:
    """{file name: text}: each role's options and the front's config."""
    texts = {options_file(role): yaml_text(role_options(recipe, role)) for role in ROLES}
    texts[CONFIG_FILE] = yaml_text(disagg_config(recipe, bind_host, port, workers(recipe, ports),
                                                 url_host=lambda _: url_host))
    return texts


def commands(recipe: Recipe, model_dir: str, config_dir: str, bind_host: str, port: int | str,
             ports: list[int | str], visible_devices: list[str] | None = None) -> list[Command]:
    """Workers first (each must answer /health before the next starts), then the front. GPU indices
    are taken within `visible_devices` (the worker's own CUDA_VISIBLE_DEVICES) when given."""
    out = []
    for worker in workers(recipe, ports):
        argv = pytorch_serve_argv(recipe, model_dir, f"{config_dir}/{options_file(worker.role)}", bind_host,
                                  worker.port, worker.layout)
        gpus = [visible_devices[g] if visible_devices else str(g) for g in worker.gpus]
        out.append(Command(role=worker.name, argv=launched(argv, worker.layout, recipe.parallel.gpus_per_node),
                           env={"CUDA_VISIBLE_DEVICES": ",".join(gpus)}, port=worker.port))
    config = checked_path(f"{config_dir}/{CONFIG_FILE}", "disaggregated config")
    out.append(Command(role="front", argv=[SERVE, "disaggregated", "-c", config], port=port))
    return out
