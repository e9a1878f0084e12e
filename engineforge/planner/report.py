"""A plan as a table (every candidate, the chosen one marked) or as JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from engineforge.planner.planner import MEMORY, Candidate, PlanResult

CANDIDATE_KEYS = (
    "tp", "pp", "ep", "gpus", "replicas", "memory_per_gpu_gib", "weights_gib", "kv_cache_gib", "activations_gib",
    "headroom_gib", "short_gib", "kv_sequences", "decode_floor_ms", "prefill_floor_ms", "feasible", "violations", "reason",
)


def to_json(result: PlanResult) -> dict[str, Any]:
    """`{"candidates": [...], "chosen": {...} | null, ...}` with the plan's context alongside."""
    return {
        "model": result.model,
        "gpu": result.gpu.model_dump(mode="json", exclude={"nvml_names", "aliases"}),
        "gpus": result.gpus,
        "gpus_per_node": result.gpus_per_node,
        "objective": result.objective,
        "precision": result.precision.model_dump(mode="json", exclude={"notes"}) if result.precision else None,
        "limits": result.limits.model_dump(mode="json"),
        "candidates": [_candidate(c) for c in result.candidates],
        "chosen": _candidate(result.chosen) if result.chosen else None,
        "reason": result.reason,
        "notes": result.notes,
    }


def _candidate(candidate: Candidate) -> dict[str, Any]:
    data = candidate.model_dump(mode="json")
    return {key: data[key] for key in CANDIDATE_KEYS}


def render(result: PlanResult, console: Console) -> None:
    if result.gpus == 0:  # a CPU recipe: nothing to lay out
        console.print(f"{result.model}: {result.reason}", markup=False)
        return
    gpu = result.gpu
    precision = result.precision
    console.print(
        f"{result.model}: {result.gpus} x {gpu.name} ({gpu.memory_gib:.1f} GiB each, {result.gpus_per_node} per node), "
        f"objective {result.objective}",
        markup=False,
    )
    if precision is not None:
        limits = result.limits
        console.print(
            f"weights {precision.dtype}, KV cache {precision.kv_dtype}; limits: batch {limits.max_batch_size} x "
            f"{limits.max_seq_len} tokens, serving fraction {limits.kv_cache_fraction:g}",
            markup=False,
        )
    table = Table(show_lines=False, highlight=False)
    # Sizes per GPU; the activation allowance and the full reasons are in --json.
    for title in ("", "tp", "pp", "ep", "GPUs", "weights GiB", "KV GiB", "mem/GPU GiB", "headroom GiB",
                  "decode ms/token", "status"):
        table.add_column(title, justify="left" if title in ("", "status") else "right", overflow="fold")
    rows = [_row(candidate, result.chosen is not None and candidate.layout == result.chosen.layout)
            for candidate in result.candidates]
    if not console.is_terminal:  # logs and pipes: keep one candidate per line, its whole status readable
        console.width = max([console.width, 140] + [110 + len(row[-1]) for row in rows])
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    label = "chosen" if result.chosen else "no layout"
    console.print(f"{label}: {result.reason}", markup=False)


def _rejections(candidate: Candidate) -> list[str]:
    """Why a layout is out, as the planner worded each broken constraint ("needs 8 GPUs (tp*pp), pool has 4")."""
    details = [part.removeprefix("violates ") for part in candidate.reason.split("; ") if part.startswith("violates ")]
    return [f"memory (short {candidate.short_gib:.1f} GiB)" if detail.startswith(f"{MEMORY}:") else detail.partition(": ")[2]
            for detail in details]


def _row(candidate: Candidate, chosen: bool) -> list[str]:
    decode = f"{candidate.decode_floor_ms:.3g}" if candidate.decode_floor_ms is not None else "-"
    status = "fits" if candidate.feasible else "rejected: " + "; ".join(_rejections(candidate))
    if candidate.feasible and candidate.warnings:
        status += " (tp crosses nodes)"
    return [
        "*" if chosen else "",
        str(candidate.tp), str(candidate.pp), str(candidate.ep), str(candidate.gpus),
        f"{candidate.weights_gib:.1f}", f"{candidate.kv_cache_gib:.1f}",
        f"{candidate.memory_per_gpu_gib:.1f}", f"{candidate.headroom_gib:.1f}", decode, status,
    ]
