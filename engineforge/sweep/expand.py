"""A recipe's `sweep:` section as variants: one plain recipe per combination of matrix values and load point.

Every variant is validated as a whole recipe before anything runs, so a combination that makes
no sense (max_input_len above a swept max_seq_len, a layout the model cannot be split into) is
refused up front with the variant's name and the field. `quantize.format` varies the quantization:
a format keeps the rest of the recipe's quantize section (calibration, gates; defaults when it has
none), `none` is the unquantized model.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engineforge.errors import UserError
from engineforge.recipe.schema import Recipe

# Fields a sweep may vary: what changes how a model is built or served, never what it is or where it goes.
SWEEPABLE_PREFIXES = ("parallel.tensor", "parallel.pipeline", "parallel.expert", "build.", "serve.", "model.dtype",
                      "quantize.format", "trtllm.version", "trtllm.llm_api.")
# TensorRT-LLM's LLM API options, by their dotted path: a key the recipe leaves unset is created (the
# version's definitions check it, as they check the recipe itself).
OPEN_MAP = "trtllm.llm_api."
QUANTIZE_FORMAT = "quantize.format"
UNQUANTIZED = "none"  # quantize.format none: the variant without a quantize section (the source as downloaded)
NOT_SWEEPABLE = ("build.timeout_s", "serve.port", "serve.startup_timeout_s", "serve.device")
# Short names for variant ids: tp4-pp2-c32 reads better than parallel.tensor=4,...
SHORT = {"tensor": "tp", "pipeline": "pp", "expert": "ep", "max_batch_size": "mbs", "max_num_tokens": "mnt",
         "kv_cache_dtype": "kv", "max_seq_len": "msl", "max_input_len": "mil", "concurrency": "c", "request_rate": "r", "requests": "n",
         "dtype": "", "continuous_batching": "cb", "enable_chunked_prefill": "chunked", "enable_attention_dp": "adp",
         "enable_block_reuse": "reuse", "enable_padding": "pad", "capacity_scheduler_policy": "", "version": "trtllm"}
VALUES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", True: "", False: "no"}  # bf16, cb / no-cb


@dataclass(frozen=True)
class Variant:
    name: str  # e.g. mbs4-c1: what the table, the MLflow child run and the Prefect subflow are called
    overrides: dict[str, Any]  # dotted field -> value, load point included
    recipe: Recipe  # the whole recipe with the overrides applied and no sweep section

    def yaml_text(self, tracking_uri: str | None = None, package: bool = True) -> str:
        """The variant as a recipe file (what a child flow run receives): recorded at `tracking_uri`
        (the parent's), and packaged only when `package` (the champion) and the recipe packages."""
        data = self.recipe.to_data() | {"sweep": None}
        data["package"]["enabled"] = package and self.recipe.package.enabled
        if tracking_uri:
            data["tracking"]["uri"] = tracking_uri
        return yaml.safe_dump(data, sort_keys=False)


def expand(recipe: Recipe, layouts: list[dict[str, int]] | None = None, base_dir: Path | None = None) -> list[Variant]:
    """The sweep's variants in matrix order, then layouts, load points innermost; then sweep.curated's
    configs (engineforge/trtllm/curated.py), each with every load point. `layouts` are the planner's
    choices for `layouts: auto` (tensor/pipeline/expert per layout); `base_dir` the recipe file's directory."""
    from engineforge.trtllm.curated import starting_points

    sweep = recipe.sweep
    if sweep is None:
        raise UserError(f"recipe {recipe.name} has no sweep section")
    for field in sweep.matrix:
        _check_sweepable(field)
    axes: list[list[dict[str, Any]]] = [[{field: value} for value in values] for field, values in sweep.matrix.items()]
    if sweep.layouts is not None:
        if any(field.startswith("parallel.") for field in sweep.matrix):
            raise UserError("sweep.layouts and parallel.* in sweep.matrix both set the layout; keep one of them")
        if sweep.layouts != "auto":
            layouts = [layout.model_dump() for layout in sweep.layouts]
        if not layouts:
            raise UserError("sweep.layouts: auto found no feasible layout; list the layouts in sweep.layouts instead")
        axes.append([{f"parallel.{k}": v for k, v in layout.items()} for layout in layouts])
    axes.append([point.overrides() for point in sweep.load] or [{}])
    base = recipe.to_data() | {"sweep": None}
    base["validate"] |= repeat_settings(sweep)
    variants, seen = [], set()
    candidates = [(variant_name(overrides), overrides) for overrides in map(_joined, itertools.product(*axes))]
    for start, fields in starting_points(recipe, base_dir):  # beside the rest, at every load point
        candidates += [("-".join(filter(None, (start, variant_name(point)))), fields | point) for point in axes[-1]]
    for name, overrides in candidates:
        name = name or recipe.name
        if name in seen:
            raise UserError(f"sweep: two variants are both named {name}; give each matrix value once")
        seen.add(name)
        variants.append(Variant(name=name, overrides=overrides, recipe=_validated(base, overrides, name)))
    return variants


def _joined(combination) -> dict[str, Any]:
    return {field: value for part in combination for field, value in part.items()}


def repeat_settings(sweep) -> dict[str, Any]:
    """How each variant's validate stage repeats its measurement, from the sweep's repeats, order and cooldown."""
    return {"repeats": sweep.repeats, "restart_server": sweep.order == "interleaved", "cooldown_s": sweep.cooldown_s}


def variant_name(overrides: dict[str, Any]) -> str:
    parts = []
    for field, value in overrides.items():
        if field in ("parallel.pipeline", "parallel.expert") and value == 1:  # tp4, tp4-pp2: the usual names
            continue
        if field == QUANTIZE_FORMAT:  # fp8-c8, int4-awq-c8, unquantized-c8
            parts.append("unquantized" if value == UNQUANTIZED else str(value).replace("_", "-"))
            continue
        leaf = field.rsplit(".", 1)[-1]
        shown = VALUES.get(value, value) if isinstance(value, (str, bool)) else f"{value:g}" if isinstance(value, float) else value
        short = SHORT.get(leaf, leaf)
        part = f"{shown}-{short}" if isinstance(value, bool) else f"{short}{shown}"
        parts.append(part.strip("-").replace("_", "-").lower())
    return "-".join(parts)


def _check_sweepable(field: str) -> None:
    if field in NOT_SWEEPABLE or not field.startswith(SWEEPABLE_PREFIXES):
        raise UserError(
            f"sweep.matrix.{field}: not a field a sweep varies; vary parallel.tensor/pipeline/expert, "
            "build.*, serve.* (not port, device or timeouts), model.dtype, quantize.format, trtllm.version or "
            "trtllm.llm_api.*, and put load points in sweep.load"
        )


def _validated(base: dict[str, Any], overrides: dict[str, Any], name: str) -> Recipe:
    data = copy.deepcopy(base)
    for field, value in overrides.items():
        if field == QUANTIZE_FORMAT:  # the recipe's quantize section with this format, or none at all
            data["quantize"] = None if value == UNQUANTIZED else {**(data.get("quantize") or {}), "format": value}
            continue
        *parents, leaf = field.split(".")
        section = data
        opens = field.startswith(OPEN_MAP)
        for part in parents:
            if opens and section.get(part) is None:
                section[part] = {}
            if not isinstance(section.get(part), dict):
                raise UserError(f"sweep variant {name}: {field}: no such recipe field")
            section = section[part]
        if leaf not in section and not opens:
            raise UserError(f"sweep variant {name}: {field}: no such recipe field")
        section[leaf] = value
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "recipe"
        message = first["msg"].removeprefix("Value error, ")
        value = first.get("input")
        shown = f" (got {value!r})" if isinstance(value, (str, int, float)) else ""
        given = ", ".join(f"{field}={value}" for field, value in overrides.items())
        raise UserError(f"sweep variant {name} ({given}): {where}: {message}{shown}; "
                        "change the values in sweep.matrix or sweep.load") from None
    return _options_defined(recipe, name)


def _options_defined(recipe: Recipe, name: str) -> Recipe:
    """A variant's TensorRT-LLM options file holds only what its version defines (recipe_checks)."""
    from engineforge.recipe_checks import trtllm_problems

    problems = trtllm_problems(recipe)
    if problems:
        field, message = problems[0]
        raise UserError(f"sweep variant {name}: {field}: {message}; change the values in sweep.matrix")
    return recipe
