import json
from pathlib import Path

import typer
from rich.console import Console

from engineforge.errors import UserError

MAX_POOL = 1024  # every layout of the pool is evaluated: ~N log N of them
GPU_SPEC_FIELDS = {"memory_gib": (1, 4096), "hbm_tb_s": (0.01, 100), "bf16_tflops": (1, 100_000), "fp8_tflops": (1, 200_000)}


def command(
    recipe: Path = typer.Argument(..., metavar="RECIPE", help="Recipe YAML file."),
    gpu: str | None = typer.Option(None, "--gpu", help="GPU model (H100-SXM, H100-PCIe, H200, A100-40GB, A100-80GB, L40S, B200); default: detected through NVML, else H100-SXM."),
    gpu_spec: str | None = typer.Option(None, "--gpu-spec", metavar="SPEC", help="A card not in the catalogue: memory_gib=N,hbm_tb_s=N,bf16_tflops=N[,fp8_tflops=N][,name=NAME], or a YAML file of those keys."),
    gpus: int | None = typer.Option(None, "--gpus", min=1, max=MAX_POOL, help=f"GPUs in the pool (1 to {MAX_POOL}); default: detected, else one node."),
    gpus_per_node: int | None = typer.Option(None, "--gpus-per-node", min=1, max=128, help="Default: the recipe's parallel.gpus_per_node."),
    # A plain string checked by the planner: a bad value is then a one-line UserError (exit 2).
    objective: str = typer.Option("throughput", "--objective", help="throughput: fewest GPUs per replica first; latency: lowest decode floor (most tensor parallelism inside a node) first."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    predict: bool = typer.Option(False, "--predict", help="Also AIConfigurator's predicted TTFT, TPOT and tok/s per GPU for each layout (a sweep recipe: each variant), best first (needs engineforge[predict])."),
) -> int:
    """Plan tensor/pipeline/expert parallel sizes for a recipe: every layout, its memory per GPU, and the choice."""
    from engineforge.planner import load_model_config, plan, resolve_parallel
    from engineforge.planner.report import render, to_json
    from engineforge.recipe.file import load_recipe

    if gpu and gpu_spec:
        raise UserError("--gpu and --gpu-spec: give one of them")
    loaded = load_recipe(recipe)
    predicted = None
    if loaded.serves_on_cpu:  # what the run records: no GPU layout, never 8 x H100; the model plays no part
        result = resolve_parallel(loaded, {})
    else:
        card = custom_gpu(gpu_spec) if gpu_spec else gpu
        config = load_model_config(loaded, recipe.resolve().parent)
        result = plan(loaded, config, gpu=card, gpus=gpus, gpus_per_node=gpus_per_node, objective=objective)
        if predict:
            from engineforge.cli.predict_output import predictions

            predicted = predictions(loaded, config, result)
    target = {"tensorrt_llm_version": loaded.trtllm.version} if loaded.trtllm else {}
    if as_json:
        from engineforge.predict.ranking import to_json as predictions_json

        print(json.dumps(to_json(result) | target | ({"predictions": predictions_json(*predicted)} if predicted else {}), indent=2))
    else:
        if target:
            print(f"TensorRT-LLM {loaded.trtllm.version} (trtllm.version), runtime {loaded.runtime}")
        render(result, Console(highlight=False, soft_wrap=True))
        if predicted:
            from engineforge.predict.ranking import render as render_predictions

            render_predictions(*predicted, Console(highlight=False, soft_wrap=True))
    if result.chosen is None and result.checked:
        raise UserError(result.reason)
    _check_quantization(loaded, result.gpu)
    return 0


def _check_quantization(recipe, gpu) -> None:
    """A layout that fits is no use if the GPU cannot run the recipe's quantization (NVFP4 on Hopper)."""
    from engineforge.trtllm.support import quantization_problem

    problem = quantization_problem(recipe, gpu)
    if problem:
        raise UserError(f"{problem[0]}: {problem[1]}")


def custom_gpu(spec: str):
    """A GpuSpec from `--gpu-spec KEY=VALUE,...` or a YAML file of the same keys."""
    from engineforge.gpus import GpuSpec

    fields = _spec_fields(spec)
    unknown = sorted(set(fields) - set(GPU_SPEC_FIELDS) - {"name"})
    if unknown:
        raise UserError(f"--gpu-spec: unknown key {', '.join(unknown)}; use {', '.join(GPU_SPEC_FIELDS)} and name")
    missing = [key for key in ("memory_gib", "hbm_tb_s", "bf16_tflops") if key not in fields]
    if missing:
        raise UserError(f"--gpu-spec: missing {', '.join(missing)}; e.g. memory_gib=80,hbm_tb_s=3.35,bf16_tflops=989")
    numbers = {key: _number(key, fields[key]) for key in GPU_SPEC_FIELDS if key in fields}
    return GpuSpec(
        name=str(fields.get("name", "custom")), memory_bytes=int(numbers.pop("memory_gib") * 2**30),
        source=f"--gpu-spec {spec}", **numbers,
    )


def _spec_fields(spec: str) -> dict:
    if "=" not in spec:
        from engineforge.recipe.safe_yaml import YamlProblem, load

        try:
            data, _ = load(Path(spec).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--gpu-spec {spec}: not KEY=VALUE,... and not a readable YAML file ({error.__class__.__name__})") from None
        except YamlProblem as problem:
            raise UserError(f"--gpu-spec {spec}:{problem.line}: {problem.message}") from None
        if not isinstance(data, dict):
            raise UserError(f"--gpu-spec {spec}: the file must be a mapping of memory_gib, hbm_tb_s, bf16_tflops")
        return data
    pairs = [item.partition("=") for item in spec.split(",") if item.strip()]
    if any(not sep for _, sep, _ in pairs):
        raise UserError(f"--gpu-spec {spec}: expected KEY=VALUE pairs separated by commas")
    return {key.strip(): value.strip() for key, _, value in pairs}


def _number(key: str, value) -> float:
    low, high = GPU_SPEC_FIELDS[key]
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise UserError(f"--gpu-spec {key}={value}: must be a number from {low:g} to {high:g}")
    return number
