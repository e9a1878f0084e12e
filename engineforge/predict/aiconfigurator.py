"""AIConfigurator (PyPI aiconfigurator 0.12.0) as a predictor of a recipe's serving figures.

One estimate per layout through its public `aiconfigurator.cli.api.cli_estimate`, aggregated
(in-flight batching) mode, against the TensorRT-LLM database at a pinned version: unpinned, every
estimate looks up the latest version and re-reads its YAML; pinned, the database view is loaded once
per process and later estimates take milliseconds. Where it has no data (the GPU, the model, that
version) the answer is a NoPrediction with one line saying so; a figure is never made up.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

BACKEND = "trtllm"
BACKEND_VERSION = "1.3.0rc20"  # the newest TensorRT-LLM database aiconfigurator 0.12.0 holds for H100/H200/B200/L40S
# engineforge GPU names (engineforge/gpus.py CATALOGUE) -> AIConfigurator system names
SYSTEMS = {"H100-SXM": "h100_sxm", "H100-PCIe": "h100_pcie", "H200": "h200_sxm", "B200": "b200_sxm",
           "A100-40GB": "a100_sxm", "A100-80GB": "a100_sxm", "L40S": "l40s"}
KV_QUANT = {"fp8": "fp8", "int8": "int8"}  # else the model's dtype (AIConfigurator infers it)
PREDICTED = "predicted_"  # MLflow metric prefix of these figures beside the measured ones


@dataclass(frozen=True)
class Prediction:
    ttft_ms: float
    tpot_ms: float
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    tokens_per_s_per_user: float
    e2e_ms: float
    system: str
    backend_version: str  # the TensorRT-LLM version of the database rows it read (AIConfigurator's answer)
    predictor_version: str  # aiconfigurator-core, which ships the databases

    @property
    def database(self) -> str:
        """Which of AIConfigurator's performance databases it read: system/backend/version."""
        return f"{self.system}/{BACKEND}/{self.backend_version}"

    def provenance(self) -> dict[str, str]:
        """What the prediction modelled, recorded beside its figures (the recipe may target another version)."""
        return {"predictor": f"aiconfigurator-core {self.predictor_version}", "backend": BACKEND,
                "backend_version": self.backend_version, "database": self.database}

    def figures(self) -> dict[str, float]:
        """Named like the measured figures they stand beside."""
        return {"ttft_ms_p50": self.ttft_ms, "tpot_ms_p50": self.tpot_ms, "output_tokens_per_s": self.output_tokens_per_s,
                "output_tokens_per_s_per_gpu": self.output_tokens_per_s_per_gpu,
                "tokens_per_s_per_user": self.tokens_per_s_per_user, "e2e_ms_p50": self.e2e_ms}

    def metrics(self) -> dict[str, float]:
        """The figures as MLflow metrics, beside the measured ones of the same run."""
        return {PREDICTED + name: value for name, value in self.figures().items()}


@dataclass(frozen=True)
class NoPrediction:
    reason: str  # one line: what AIConfigurator lacks


def estimate_args(recipe, gpu: str) -> dict[str, Any]:
    """The keyword arguments of `cli_estimate` for a recipe's layout and load (besides the model path).

    The load is the validation's: prompts of up to build.max_input_len tokens, validate.max_tokens out,
    validate.concurrency requests in flight. AIConfigurator's batch is per pipeline stage (it keeps
    batch x pp requests in flight), so the batch is the concurrency divided by the pipeline size."""
    parallel = recipe.parallel
    return {
        "system_name": SYSTEMS[gpu], "backend_name": BACKEND, "backend_version": BACKEND_VERSION,
        "isl": recipe.build.max_input_len, "osl": recipe.validate_.max_tokens,
        "batch_size": max(1, recipe.validate_.concurrency // parallel.pipeline),
        "tp_size": parallel.tensor, "pp_size": parallel.pipeline,
        "kvcache_quant_mode": KV_QUANT.get(recipe.build.kv_cache_dtype),
    }


def predict(recipe, model_config: dict[str, Any], gpu: str | None) -> Prediction | NoPrediction:
    """AIConfigurator's figures for the recipe's (resolved) layout on `gpu`, or why there are none."""
    if gpu is None:
        return NoPrediction("no GPU model given or detected (pass --gpu)")
    if gpu not in SYSTEMS:
        return NoPrediction(f"AIConfigurator has no system for {gpu}")
    if not all(isinstance(size, int) for size in (recipe.parallel.tensor, recipe.parallel.pipeline)):
        return NoPrediction("the layout is not resolved (parallel sizes are auto)")
    try:
        from aiconfigurator.cli.api import cli_estimate
    except ImportError:
        return NoPrediction("AIConfigurator is not installed (pip install 'engineforge[predict]')")
    _quiet()
    args = estimate_args(recipe, gpu)
    try:
        result = cli_estimate(_model_dir(json.dumps(model_config, sort_keys=True)), **args)
    except Exception as error:  # its errors are plain RuntimeError/ValueError with a readable first line
        return NoPrediction(_reason(error, args))
    row = result.summary.get_summary_df().iloc[0]
    return Prediction(
        ttft_ms=float(row["ttft"]), tpot_ms=float(row["tpot"]), output_tokens_per_s=float(row["tokens/s"]),
        output_tokens_per_s_per_gpu=float(row["tokens/s/gpu"]), tokens_per_s_per_user=float(row["tokens/s/user"]),
        e2e_ms=float(row["request_latency"]), system=args["system_name"], backend_version=str(result.backend_version),
        predictor_version=_predictor_version(),
    )


def _predictor_version() -> str:
    from engineforge.versions import package_version

    return package_version("aiconfigurator-core") or package_version("aiconfigurator") or "unknown"


@lru_cache(maxsize=None)
def _model_dir(config_json: str) -> str:
    """AIConfigurator reads a model from a directory with its config.json (synthetic models have no hub id)."""
    directory = Path(tempfile.mkdtemp(prefix="engineforge-aic-"))
    (directory / "config.json").write_text(config_json)
    return str(directory)


def _reason(error: Exception, args: dict[str, Any]) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if text.startswith("OOM"):
        return f"does not fit in GPU memory at tp={args['tp_size']} pp={args['pp_size']} (AIConfigurator: OOM)"
    if "No database" in text or "Failed to load perf database" in text or "resolves versions" in text:
        return f"AIConfigurator has no {BACKEND} {BACKEND_VERSION} data for {args['system_name']}"
    return f"AIConfigurator: {text[:200]}"


def _quiet() -> None:
    # It logs every fallback table it loads at INFO/WARNING; the table's notes say what matters.
    for name in ("aiconfigurator", "aiconfigurator_core"):
        logging.getLogger(name).setLevel(logging.ERROR)
