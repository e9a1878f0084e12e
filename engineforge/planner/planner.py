"""Enumerate parallel layouts, check each against the constraints, rank the feasible ones.

Layouts: tp * pp GPUs per model replica; ep splits each MoE layer's experts within the tp group
(TensorRT-LLM: moe_tp * moe_ep = tp), so ep divides tp and adds no GPUs. Sizes the recipe fixes stay
fixed; "auto" sizes range over 1..GPUs (ep over the divisors of tp).

Ranking among feasible layouts:
- throughput (default): fewest GPUs per replica (more replicas on the pool), then tensor parallel
  inside a node before pipeline stages, then the most KV headroom (room for larger batches), then
  the largest ep (whole experts per rank: bigger expert GEMMs at high batch).
- latency: TP inside a node first, then the lowest decode floor (more TP: each rank reads fewer
  weight bytes per token; for MoE, experts split over all ranks rather than whole experts on a few),
  then fewest GPUs, then the most KV headroom.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel

from engineforge.errors import UserError
from engineforge.gpus import DEFAULT_GPU, GpuSpec, detect_gpus, find_gpu
from engineforge.model.shape import ModelShape, UnsupportedModel
from engineforge.planner import memory, speed
from engineforge.planner.memory import GIB, Precision, ServingLimits
from engineforge.recipe.parallel_layout import ParallelLayout

OBJECTIVES = ("throughput", "latency")

# Constraint names, as the issue states them; every infeasible candidate names the ones it breaks.
HEADS = "attention heads divisible by tp"
KV_HEADS = "KV heads divisible by tp or tp divisible by KV heads"
LAYERS = "layers >= pp"
EXPERTS = "experts divisible by ep"
EP_SPLIT = "ep divides tp"
GPUS = "tp*pp <= GPUs"
POOL = "world size matches the pool"
MEMORY = "memory"


class Candidate(BaseModel):
    tp: int
    pp: int
    ep: int
    gpus: int
    replicas: int  # copies of the model the pool holds with this layout
    weights_gib: float
    kv_cache_gib: float
    activations_gib: float
    memory_per_gpu_gib: float  # weights + KV cache + activations on the most loaded GPU
    headroom_gib: float  # KV budget (serving fraction of what is free) minus the KV cache needed
    short_gib: float  # GPU memory missing for this layout (0 when it fits)
    kv_sequences: int  # max_seq_len sequences the KV budget holds
    decode_read_gib: float  # weight bytes one decode step of one request reads, all stages
    decode_floor_ms: float | None
    prefill_floor_ms: float | None
    feasible: bool
    violations: list[str]
    warnings: list[str]
    reason: str

    @property
    def layout(self) -> ParallelLayout:
        return ParallelLayout(self.tp, self.pp, self.ep)


class PlanResult(BaseModel):
    model: str
    gpu: GpuSpec
    gpus: int  # the pool
    gpus_per_node: int
    objective: str
    precision: Precision | None
    limits: ServingLimits
    candidates: list[Candidate]  # feasible ones first, in rank order
    chosen: Candidate | None
    tp: int | None
    pp: int | None
    ep: int | None
    reason: str
    checked: bool = True  # False: an explicit layout of a model the planner cannot size
    notes: list[str] = []

    def parallel(self) -> dict[str, int]:
        """The resolved sizes as the recipe's `parallel` section spells them."""
        if self.tp is None:
            raise UserError(f"parallel: no layout resolved: {self.reason}")
        return {"tensor": self.tp, "pipeline": self.pp, "expert": self.ep}

    def apply(self, recipe):
        """A copy of the recipe with the resolved sizes in place of "auto"."""
        return recipe.model_copy(update={"parallel": recipe.parallel.model_copy(update=self.parallel())})

    def record(self) -> dict[str, Any]:
        """What the flow records in MLflow params and the lock file."""
        return {
            "tp": self.tp, "pp": self.pp, "ep": self.ep, "gpu": self.gpu.name, "gpus": self.gpus,
            "objective": self.objective, "reason": self.reason, "checked": self.checked,
        }


def is_auto(recipe) -> bool:
    parallel = recipe.parallel
    return "auto" in (parallel.tensor, parallel.pipeline, parallel.expert)


def plan(
    recipe,
    model_config: dict[str, Any],
    gpu: str | GpuSpec | None = None,
    gpus: int | None = None,
    gpus_per_node: int | None = None,
    objective: str = "throughput",
) -> PlanResult:
    """Every layout the recipe allows, checked and ranked; `chosen` is None when none is feasible."""
    if objective not in OBJECTIVES:
        raise UserError(f"--objective {objective}: must be one of {', '.join(OBJECTIVES)}")
    if gpus is not None and gpus < 1:
        raise UserError(f"--gpus {gpus}: must be at least 1")
    if gpus_per_node is not None and gpus_per_node < 1:
        raise UserError(f"--gpus-per-node {gpus_per_node}: must be at least 1")
    try:
        shape = ModelShape.from_config(model_config, name=recipe.model.source)
    except UnsupportedModel as error:
        raise UnsupportedModel(f"{error}; set parallel sizes explicitly") from None
    spec, detected, notes = _resolve_gpu(gpu)
    per_node = gpus_per_node or recipe.parallel.gpus_per_node
    pool = gpus or detected or per_node
    if not (gpus or detected):
        notes.append(f"--gpus not given and no GPU detected: planning for one node of {pool} GPUs")
    precision = Precision.resolve(shape, recipe.model.dtype, recipe.build.kv_cache_dtype, recipe.quantize)
    limits = ServingLimits.from_recipe(recipe)
    context = _Context(shape, spec, precision, limits, pool, per_node)
    candidates = [_evaluate(context, layout) for layout in _layouts(recipe.parallel, shape, pool)]
    feasible = sorted((c for c in candidates if c.feasible), key=lambda c: _rank_key(c, objective, per_node))
    infeasible = sorted((c for c in candidates if not c.feasible), key=lambda c: (c.gpus, c.tp, c.pp, c.ep))
    chosen = feasible[0] if feasible else None
    if chosen is None:
        reason = _no_layout_reason(context, infeasible)
    elif not is_auto(recipe):
        reason = f"the recipe's layout, checked: {_fit_summary(context, chosen)}"
    else:
        reason = _choice_reason(context, chosen, feasible, infeasible, objective)
    return PlanResult(
        model=recipe.model.source, gpu=spec, gpus=pool, gpus_per_node=per_node, objective=objective,
        precision=precision, limits=limits, candidates=feasible + infeasible, chosen=chosen,
        tp=chosen.tp if chosen else None, pp=chosen.pp if chosen else None, ep=chosen.ep if chosen else None,
        reason=reason, notes=notes + precision.notes,
    )


def resolve_parallel(
    recipe,
    model_config: dict[str, Any],
    gpu: str | GpuSpec | None = None,
    gpus: int | None = None,
    gpus_per_node: int | None = None,
    objective: str = "throughput",
) -> PlanResult:
    """The layout to run: the planner's choice for "auto" sizes, or the recipe's explicit sizes
    checked. Raises UserError when no layout is feasible or the explicit one breaks a constraint."""
    if recipe.serves_on_cpu:
        return _on_cpu(recipe, objective)
    try:
        result = plan(recipe, model_config, gpu=gpu, gpus=gpus, gpus_per_node=gpus_per_node, objective=objective)
    except UnsupportedModel as error:
        if is_auto(recipe):
            raise
        return _unchecked(recipe, gpu, gpus, gpus_per_node, objective, str(error))
    if result.chosen is not None:
        return result
    if not is_auto(recipe):
        explicit = result.candidates[0]
        raise UserError(
            f"parallel: tensor={explicit.tp} pipeline={explicit.pp} expert={explicit.ep} does not work for "
            f"{result.model} on {result.gpus} x {result.gpu.name}: {explicit.reason}; "
            "fix the sizes or set them to auto"
        )
    raise UserError(result.reason)


class _Context(NamedTuple):
    shape: ModelShape
    gpu: GpuSpec
    precision: Precision
    limits: ServingLimits
    pool: int
    per_node: int


def _resolve_gpu(gpu: str | GpuSpec | None) -> tuple[GpuSpec, int | None, list[str]]:
    if isinstance(gpu, GpuSpec):
        return gpu, None, []
    if gpu:
        return find_gpu(gpu), None, []
    found = detect_gpus()
    if found is not None:
        return found.spec, found.count, [f"detected {found.count} x {found.spec.name} through NVML"]
    note = f"no GPU detected and --gpu not given: planning for {DEFAULT_GPU}; pass --gpu NAME for another card"
    return find_gpu(DEFAULT_GPU), None, [note]


def _sizes(value: int | str, upto: int) -> list[int]:
    return list(range(1, upto + 1)) if value == "auto" else [value]


def _layouts(parallel, shape: ModelShape, pool: int) -> list[ParallelLayout]:
    layouts = []
    for tp in _sizes(parallel.tensor, pool):
        for pp in _sizes(parallel.pipeline, max(1, pool // tp)):  # auto pp past the pool is never kept below
            # Past the pool, keep only the recipe's own sizes (to say why they fail), not every auto size.
            if tp * pp > pool and not ((parallel.tensor != "auto" or tp == 1) and (parallel.pipeline != "auto" or pp == 1)):
                continue
            if parallel.expert != "auto":
                eps = [parallel.expert]
            elif shape.is_moe:
                eps = [ep for ep in range(1, tp + 1) if tp % ep == 0]
            else:
                eps = [1]
            layouts.extend(ParallelLayout(tp, pp, ep) for ep in eps)
    return layouts


def _violations(context: _Context, layout: ParallelLayout) -> list[tuple[str, str]]:
    shape, (tp, pp, ep) = context.shape, layout
    found = []
    if shape.num_heads % tp:
        found.append((HEADS, f"{shape.num_heads} attention heads do not split over tp {tp}"))
    if shape.num_kv_heads % tp and tp % shape.num_kv_heads:
        found.append((KV_HEADS, f"{shape.num_kv_heads} KV heads and tp {tp}: neither divides the other"))
    if pp > shape.num_layers:
        found.append((LAYERS, f"pp {pp} exceeds the {shape.num_layers} layers"))
    if ep > 1 and not shape.is_moe:
        found.append((EXPERTS, f"ep {ep} needs a mixture-of-experts model; this one is dense"))
    elif shape.is_moe and shape.num_experts % ep:
        found.append((EXPERTS, f"{shape.num_experts} experts do not split over ep {ep}"))
    if tp % ep:
        found.append((EP_SPLIT, f"ep {ep} does not divide tp {tp} (TensorRT-LLM splits tp into moe_tp x ep)"))
    if layout.world_size > context.pool:
        found.append((GPUS, f"needs {layout.world_size} GPUs (tp*pp), pool has {context.pool}"))
    elif context.pool % layout.world_size:
        found.append((POOL, f"{context.pool} GPUs do not split into whole replicas of {layout.world_size}"))
    return found


def _evaluate(context: _Context, layout: ParallelLayout) -> Candidate:
    estimate = memory.estimate(context.shape, layout, context.limits, context.precision, context.gpu.memory_bytes)
    found = _violations(context, layout)
    if not estimate.fits:
        found.append((MEMORY, _shortfall_text(estimate)))
    warnings = []
    if layout.tp > context.per_node:
        warnings.append(f"tp {layout.tp} crosses nodes of {context.per_node} GPUs: all-reduce over the network")
    feasible = not found
    reason = "; ".join(f"violates {name}: {detail}" for name, detail in found) if found else _fit_summary(context, estimate)
    return Candidate(
        tp=layout.tp, pp=layout.pp, ep=layout.ep, gpus=layout.world_size,
        replicas=context.pool // layout.world_size if feasible else 0,
        weights_gib=_gib(estimate.weights), kv_cache_gib=_gib(estimate.kv_cache),
        activations_gib=_gib(estimate.activations), memory_per_gpu_gib=_gib(estimate.total),
        headroom_gib=_gib(estimate.headroom), short_gib=_gib(estimate.shortfall), kv_sequences=estimate.kv_sequences,
        decode_read_gib=_gib(speed.decode_bytes(context.shape, layout, context.precision)),
        decode_floor_ms=_round(speed.decode_floor_ms(context.shape, layout, context.precision, context.gpu)),
        prefill_floor_ms=_round(speed.prefill_floor_ms(context.shape, layout, context.precision, context.limits, context.gpu)),
        feasible=feasible, violations=[name for name, _ in found], warnings=warnings,
        reason="; ".join([reason, *warnings]),
    )


def _rank_key(candidate: Candidate, objective: str, per_node: int) -> tuple:
    crosses = candidate.tp > per_node
    if objective == "latency":
        return (crosses, candidate.decode_read_gib, candidate.gpus, candidate.ep, -candidate.headroom_gib)
    return (candidate.gpus, crosses, candidate.pp, -candidate.headroom_gib, -candidate.ep)


def _shortfall_text(estimate: memory.MemoryEstimate) -> str:
    return (
        f"needs {_gib(estimate.needed):.1f} GiB per GPU (weights {_gib(estimate.weights):.1f} + activations "
        f"{_gib(estimate.activations):.1f} + KV cache {_gib(estimate.kv_cache):.1f} / serving fraction "
        f"{estimate.kv_fraction:g}), has {_gib(estimate.capacity):.1f} GiB: short {_gib(estimate.shortfall):.1f} GiB"
    )


def _fit_summary(context: _Context, fit: memory.MemoryEstimate | Candidate) -> str:
    if isinstance(fit, Candidate):
        weights, kv, headroom, sequences = fit.weights_gib, fit.kv_cache_gib, fit.headroom_gib, fit.kv_sequences
    else:
        weights, kv, headroom, sequences = _gib(fit.weights), _gib(fit.kv_cache), _gib(fit.headroom), fit.kv_sequences
    limits = context.limits
    return (
        f"fits: weights {weights:.1f} GiB + KV cache {kv:.1f} GiB for {limits.max_batch_size} x "
        f"{limits.max_seq_len} tokens per GPU, {headroom:.1f} GiB KV headroom "
        f"(room for {sequences} sequences of {limits.max_seq_len} tokens)"
    )


def _choice_reason(
    context: _Context, chosen: Candidate, feasible: list[Candidate], infeasible: list[Candidate], objective: str
) -> str:
    where = f"tp={chosen.tp} pp={chosen.pp} ep={chosen.ep} on {chosen.gpus} x {context.gpu.name}"
    if objective == "latency":
        floor = f"{chosen.decode_floor_ms:.3g} ms" if chosen.decode_floor_ms is not None else f"{chosen.decode_read_gib:.1f} GiB read"
        head = f"latency: {where} has the lowest decode floor ({floor} per token for one request)"
    else:
        head = f"throughput: {where} is the fewest GPUs per replica that fit ({chosen.replicas} replicas on {context.pool} GPUs)"
        same_size = [c for c in feasible if c.gpus == chosen.gpus and c.pp > chosen.pp]
        if same_size:
            head += "; tensor parallel inside a node is preferred to pipeline stages"
    smaller = [c for c in infeasible if c.gpus < chosen.gpus and c.violations == [MEMORY]]
    if smaller:
        closest = min(smaller, key=lambda c: c.short_gib)
        head += (
            f"; fewer GPUs are short of memory (tp={closest.tp} pp={closest.pp} ep={closest.ep} "
            f"is short {closest.short_gib:.1f} GiB)"
        )
    return f"{head}; {_fit_summary(context, chosen)}"


def _no_layout_reason(context: _Context, infeasible: list[Candidate]) -> str:
    where = f"{context.shape.name} on {context.pool} x {context.gpu.name} ({context.gpu.memory_gib:.1f} GiB each)"
    memory_only = [c for c in infeasible if c.violations == [MEMORY]]
    if memory_only:
        closest = min(memory_only, key=lambda c: c.short_gib)
        detail = next(part for part in closest.reason.split("; ") if part.startswith(f"violates {MEMORY}"))
        return (
            f"no feasible layout for {where}: the closest, tp={closest.tp} pp={closest.pp} ep={closest.ep}, "
            f"{detail.removeprefix(f'violates {MEMORY}: ')}; add GPUs (--gpus), lower build.max_batch_size or "
            "build.max_seq_len, or set build.kv_cache_dtype: fp8"
        )
    broken = sorted({name for c in infeasible for name in c.violations})
    return f"no layout for {where} passes the constraints ({'; '.join(broken)}); see `engineforge plan` for each layout"


CPU = GpuSpec(name="cpu", memory_bytes=0, source="serve.device: cpu")


def _on_cpu(recipe, objective: str) -> PlanResult:
    """One process on the CPU: no GPU layout, and the record says so (gpu cpu, 0 GPUs)."""
    parallel = recipe.parallel
    sizes = {"tensor": parallel.tensor, "pipeline": parallel.pipeline, "expert": parallel.expert}
    fixed = {name: size for name, size in sizes.items() if size not in (1, "auto")}
    if fixed:
        raise UserError(f"parallel: {' '.join(f'{name}={size}' for name, size in fixed.items())} needs GPUs; "
                        "serve.device cpu runs one process: set the sizes to 1 (or auto), or serve.device to cuda")
    return PlanResult(
        model=recipe.model.source, gpu=CPU, gpus=0, gpus_per_node=0, objective=objective, precision=None,
        limits=ServingLimits.from_recipe(recipe), candidates=[], chosen=None, tp=1, pp=1, ep=1, checked=False,
        reason="serves on the CPU (serve.device: cpu): one process, no GPU layout to plan",
    )


def _unchecked(recipe, gpu, gpus, gpus_per_node, objective, why: str) -> PlanResult:
    spec, detected, notes = _resolve_gpu(gpu)
    parallel = recipe.parallel
    return PlanResult(
        model=recipe.model.source, gpu=spec, gpus=gpus or detected or parallel.gpus_per_node,
        gpus_per_node=gpus_per_node or parallel.gpus_per_node, objective=objective, precision=None,
        limits=ServingLimits.from_recipe(recipe), candidates=[], chosen=None,
        tp=parallel.tensor, pp=parallel.pipeline, ep=parallel.expert, checked=False,
        reason=f"the recipe's layout, not checked: {why}", notes=notes,
    )


def _gib(value: float) -> float:
    return round(value / GIB, 3)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
