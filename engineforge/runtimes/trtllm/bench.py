"""`trtllm-bench` (tensorrt_llm/commands/bench.py, tensorrt_llm/bench/benchmark/throughput.py and
low_latency.py; trtllm-facts.md, "trtllm-bench"): the dataset it reads, its argv, and its
`--report_json` turned into engineforge's metric names.

Group options come before the subcommand: `trtllm-bench --model NAME --model_path DIR --workspace DIR
throughput|latency ...`. `throughput` takes `--max_batch_size`, `--max_num_tokens`, `--streaming` and
`--extra_llm_api_options`; `latency` takes neither (it always streams, batch size 1). With
`--backend tensorrt` the engine's own limits apply and `--max_seq_len` is refused; that backend and
`--engine_dir` exist only up to 1.2.x (removed in PR 18850), as does runtime trtllm-engine (the recipe refuses it later).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.errors import StageFailed
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.trtllm.files import checked_path

BENCH = "trtllm-bench"
DATASET_FILE = "trtllm-bench-dataset.jsonl"
REPORT_FILE = "trtllm-bench-report.json"
LOG_FILE = "trtllm-bench.log"
METRIC_PREFIX = "trtllm_bench_"


def dataset_text(recipe: Recipe) -> str:
    """JSON lines: `task_id`, `prompt`, `output_tokens` per request (the validate prompts, cycled)."""
    from engineforge.loadgen import Sample

    spec = recipe.validate_
    count = spec.trtllm_bench.requests or spec.requests
    lines = []
    for index in range(count):
        sample = Sample(prompt=spec.prompts[index % len(spec.prompts)], output_tokens=spec.max_tokens, task_id=index)
        lines.append(json.dumps({"task_id": sample.task_id, "prompt": sample.prompt, "output_tokens": sample.output_tokens}))
    return "\n".join(lines) + "\n"


def bench_argv(recipe: Recipe, model_path: str, workspace: str, dataset: str, report: str,
               engine_dir: str | None = None, options_file: str | None = None) -> list[str]:
    """argv for the PyTorch backend (`options_file`) or for an engine (`engine_dir`)."""
    spec = recipe.validate_
    bench = spec.trtllm_bench
    argv = [BENCH, "--model", recipe.name, "--model_path", checked_path(model_path, "model path"),
            "--workspace", checked_path(workspace, "bench workspace"), bench.mode]
    if engine_dir is not None:
        argv += ["--backend", "tensorrt", "--engine_dir", checked_path(engine_dir, "engine directory")]
    else:
        layout = ParallelLayout.of(recipe.parallel)
        argv += ["--backend", "pytorch", "--tp", str(layout.tp), "--pp", str(layout.pp), "--ep", str(layout.ep)]
        if bench.mode == "throughput" and options_file is not None:
            argv += ["--extra_llm_api_options", checked_path(options_file, "LLM API options file")]
    argv += ["--dataset", checked_path(dataset, "dataset"),
             "--kv_cache_free_gpu_mem_fraction", str(recipe.serve.kv_cache_free_gpu_memory_fraction),
             "--concurrency", str(bench.concurrency or (1 if bench.mode == "latency" else spec.concurrency)),
             "--num_requests", str(bench.requests or spec.requests),
             "--warmup", str(spec.warmup_requests)]
    if bench.mode == "throughput":
        argv += ["--max_batch_size", str(recipe.build.max_batch_size)]
        if recipe.build.max_num_tokens is not None:
            argv += ["--max_num_tokens", str(recipe.build.max_num_tokens)]
        argv.append("--streaming")
    argv += ["--report_json", checked_path(report, "report file")]
    return argv


# report_json (tensorrt_llm/bench/dataclasses/reporting.py, ReportUtility.get_statistics_dict) -> our names
SCALARS = {
    ("request_info", "num_requests"): "requests",
    ("performance", "request_throughput_req_s"): "request_throughput",
    ("performance", "system_output_throughput_tok_s"): "output_tokens_per_s",
    ("performance", "system_total_throughput_tok_s"): "total_tokens_per_s",
    ("performance", "output_throughput_per_user_tok_s"): "output_tokens_per_s_per_user",
    ("performance", "output_throughput_per_gpu_tok_s"): "output_tokens_per_s_per_gpu",
}
# PercentileStats fields -> our statistic suffixes (loadgen metrics: _ms_mean, _ms_p50, _ms_p90, _ms_p99)
PERCENTILES = {"average": "mean", "p50": "p50", "p90": "p90", "p99": "p99"}
DISTRIBUTIONS = {
    ("performance", "request_latency_percentiles_ms"): "e2e",
    ("streaming_metrics", "ttft_percentiles"): "ttft",
    ("streaming_metrics", "tpot_percentiles"): "tpot",
}


def parse_report(report: dict[str, Any]) -> dict[str, float]:
    """Figures named as the load generator names them, prefixed `trtllm_bench_`; absent ones are left out."""
    figures: dict[str, float] = {}
    for (section, key), name in SCALARS.items():
        value = report.get(section, {}).get(key)
        if _number(value):
            figures[METRIC_PREFIX + name] = float(value)
    total_ms = report.get("performance", {}).get("total_latency_ms")
    if _number(total_ms):
        figures[METRIC_PREFIX + "duration_s"] = float(total_ms) / 1000.0
    for (section, key), name in DISTRIBUTIONS.items():
        stats = (report.get(section) or {}).get(key) or {}
        for field, suffix in PERCENTILES.items():
            if _number(stats.get(field)):
                figures[f"{METRIC_PREFIX}{name}_ms_{suffix}"] = float(stats[field])
    return figures


def read_report(path: Path) -> dict[str, float]:
    try:
        report = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as error:
        raise StageFailed("validate", f"{BENCH} wrote no readable report at {path} ({error.__class__.__name__})") from None
    figures = parse_report(report)
    if METRIC_PREFIX + "output_tokens_per_s" not in figures:
        raise StageFailed("validate", f"{path}: no performance.system_output_throughput_tok_s; is it a trtllm-bench report?")
    return figures


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
