"""`sweep.curated`: NVIDIA's tuned trtllm-serve configs for the model and GPU as starting points, each a
variant measured beside the planner's layouts (issue 23).

Read from a checkout of TensorRT-LLM's `examples/configs` the user names, in its own directory shape
(NVIDIA/TensorRT-LLM, examples/configs/database/database.py at 07500d4a0193e70626442166b156390fbf29d011;
nothing of it is copied here):

    curated/lookup.yaml     a list of {model, arch, config_path, scenario, gpu_compatibility ("Any" or
                            "B200, GB200"), disagg (optional)}; config_path from the repository root,
                            e.g. examples/configs/curated/llama-3.3-70b.yaml
    curated/*.yaml          the configs
    database/<org>/<model>/<GPU>/<isl><osl>_tp<N>_conc<C>.yaml   e.g. 1k1k_tp8_conc16.yaml

Each config is a trtllm-serve `--config` file (TorchLlmArgs names). Keys engineforge sets from its own
recipe fields become those fields (max_batch_size -> build.max_batch_size, tensor_parallel_size ->
parallel.tensor, kv_cache_config.dtype -> build.kv_cache_dtype ...: recipe/trtllm_section.py OWNED); what
says which model to load and how (model, tokenizer, backend, dtype, trust_remote_code) stays the recipe's;
every other key is a `trtllm.llm_api` option, checked like any other against the recipe's TensorRT-LLM version.
Disaggregated curated configs are left out (a variant is one aggregated server).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from engineforge.errors import UserError
from engineforge.recipe.schema import Recipe
from engineforge.recipe.trtllm_section import OWNED
from engineforge.runtime_traits import runtime_traits

DATABASE_FILE = re.compile(r"^(?P<isl>\d+k)(?P<osl>\d+k)_tp(?P<tp>\d+)_conc(?P<conc>\d+)\.ya?ml$")
REPOSITORY_PREFIX = Path("examples/configs")
# The recipe says what model is loaded and how; a curated config does not change it.
KEPT = {"model", "tokenizer", "backend", "dtype", "trust_remote_code", "cache_transceiver_config"}
FIELD = "sweep.curated"


def starting_points(recipe: Recipe, base_dir: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(variant name, dotted overrides) per curated or database config for the recipe's model and GPU."""
    spec = recipe.sweep.curated if recipe.sweep else None
    if spec is None:
        return []
    if not runtime_traits(recipe.runtime).llm_api:
        raise UserError(f"{FIELD}: NVIDIA's configs are trtllm-serve options for the PyTorch backend; "
                        f"runtime is {recipe.runtime}, use runtime: trtllm")
    root = Path(spec.configs).expanduser()
    if not root.is_absolute() and base_dir is not None:
        root = base_dir / root
    if not root.is_dir():
        raise UserError(f"{FIELD}.configs: {root}: no such directory; give a checkout of TensorRT-LLM's "
                        "examples/configs (it holds curated/ and database/)")
    if not (root / "curated").is_dir() and not (root / "database").is_dir():
        raise UserError(f"{FIELD}.configs: {root} has neither curated/ nor database/; give TensorRT-LLM's "
                        "examples/configs directory itself")
    model = spec.model or _hub_id(recipe)
    found = [*_curated(root, model, spec.gpu), *_database(root, model, spec.gpu, spec.isl, spec.osl)]
    if not found:
        raise UserError(f"{FIELD}: no curated or database config for {model} on {spec.gpu} in {root} "
                        f"({_available(root, model)})")
    return [(name, overrides(config, f"{name} ({path})")) for name, path, config in found]


def overrides(config: dict[str, Any], where: str) -> dict[str, Any]:
    """A trtllm-serve config as dotted recipe overrides."""
    if not isinstance(config, dict):
        raise UserError(f"{FIELD}: {where}: not a mapping of LLM API options")
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in KEPT:
            continue
        if key in OWNED:
            out[OWNED[key]] = value
        elif isinstance(value, dict) and any(f"{key}.{sub}" in OWNED for sub in value):
            for sub, item in value.items():
                out[OWNED.get(f"{key}.{sub}", f"trtllm.llm_api.{key}.{sub}")] = item
        else:
            out[f"trtllm.llm_api.{key}"] = value
    return out


def _hub_id(recipe: Recipe) -> str:
    source = recipe.model.source
    if source.startswith("hf://"):
        return source[len("hf://"):].split("@", 1)[0]
    raise UserError(f"{FIELD}.model: model.source is {source}, not a hub model; name the model as NVIDIA's "
                    "configs do (e.g. nvidia/Llama-3.3-70B-Instruct-FP8)")


def _curated(root: Path, model: str, gpu: str) -> list[tuple[str, Path, dict]]:
    lookup = root / "curated" / "lookup.yaml"
    if not lookup.is_file():
        return []
    out = []
    for entry in _yaml(lookup) or []:
        if not isinstance(entry, dict) or entry.get("model") != model or entry.get("disagg"):
            continue
        gpus = [g.strip() for g in str(entry.get("gpu_compatibility", "Any")).split(",")]
        if "Any" not in gpus and gpu not in gpus:
            continue
        path = Path(str(entry.get("config_path", "")))
        path = root / (path.relative_to(REPOSITORY_PREFIX) if path.is_relative_to(REPOSITORY_PREFIX) else path)
        if ".." in path.parts or not path.is_file():
            raise UserError(f"{FIELD}: {lookup} names {entry.get('config_path')} for {model}, which is not in {root}")
        out.append((f"curated-{_slug(path.stem)}", path, _yaml(path)))
    return out


def _database(root: Path, model: str, gpu: str, isl: int | None, osl: int | None) -> list[tuple[str, Path, dict]]:
    directory = root / "database" / model / gpu
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.iterdir(), key=_database_order):
        match = DATABASE_FILE.match(path.name)
        if not match or (isl and _tokens(match["isl"]) != isl) or (osl and _tokens(match["osl"]) != osl):
            continue
        config = _yaml(path)
        if isinstance(config, dict):  # the file name's TP where the file leaves it out
            config.setdefault("tensor_parallel_size", int(match["tp"]))
        out.append((f"db-{match['isl']}{match['osl']}-tp{match['tp']}-conc{match['conc']}", path, config))
    return out


def _available(root: Path, model: str) -> str:
    gpus = sorted(p.name for p in (root / "database" / model).iterdir() if p.is_dir()) if (root / "database" / model).is_dir() else []
    return f"database GPUs for it: {', '.join(gpus)}" if gpus else "the model is in neither list; set sweep.curated.model"


def _database_order(path: Path):
    match = DATABASE_FILE.match(path.name)
    return (0, _tokens(match["isl"]), _tokens(match["osl"]), int(match["tp"]), int(match["conc"])) if match else (1, 0, 0, 0, 0)


def _tokens(size: str) -> int:
    return int(size[:-1]) * 1024


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{FIELD}: {path}: cannot read it ({type(error).__name__})") from None
