"""The TensorRT-LLM checkpoint of a quantized model (config.json + rank{N}.safetensors with its scales),
written by ModelOpt's own TensorRT-LLM export for the `trtllm-engine` runtime's shard stage.

Why ModelOpt's export and not engineforge's streamed sharder: every quantized layer needs its scales
split and merged the way TensorRT-LLM's quantized layers expect them, and TensorRT-LLM itself produces
its engine-path checkpoints this way (`tensorrt_llm/quantization/quantize_by_modelopt.py`
`quantize_and_export` calls `export_tensorrt_llm_checkpoint(model, model_type, dtype, export_dir,
inference_tensor_parallel=tp_size, inference_pipeline_parallel=pp_size)`). ModelOpt 0.47 still has it;
its default `inference_tensor_parallel=0` crashes, so the layout is always given. It reads the
fake-quantized model (restored with its calibrated quantizers through ModelOpt's Hugging Face
checkpointing), so the whole model is loaded in host memory, unlike the streamed sharder.

What TensorRT-LLM reads from it (NVIDIA/TensorRT-LLM; checked by tests/quantize/test_quantize_rank_files.py):
`config.json` `quantization` = `QuantConfig(**dict)` (`tensorrt_llm/models/modeling_utils.py`), its
`quant_algo` / `kv_cache_quant_algo` named as `QuantAlgo` (`tensorrt_llm/quantization/mode.py`); per
layer the parameters of `tensorrt_llm/quantization/layers.py` (`weights_scaling_factor`,
`activation_scaling_factor`, `prequant_scaling_factor`, `alpha`) and `kv_cache_scaling_factor` of
`tensorrt_llm/layers/attention.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from engineforge.checkpoint import ShardReport
from engineforge.checkpoint.rank_writer import ShardFile
from engineforge.checkpoint.rss import PeakRss
from engineforge.errors import UserError
from engineforge.model.shape import ModelShape, read_model_shape
from engineforge.quantize import host_memory
from engineforge.quantize.fakequant import MODELOPT_STATE, restore_quantizers_on_load

# ModelOpt's TensorRT-LLM export writes unquantized layers only as float16 or bfloat16 (it warns and
# takes float16 for anything else): float32 recipes get float16 rank files, said in the report.
EXPORT_DTYPES = ("float16", "bfloat16")


def export_dtype(dtype: str, model_dtype: str) -> str:
    """The rank files' dtype for unquantized layers: the recipe's, else the model's, float16 when neither fits."""
    wanted = model_dtype if dtype == "auto" else dtype
    return wanted if wanted in EXPORT_DTYPES else "float16"


def _with_rope(config: dict, shape: ModelShape) -> dict:
    """ModelOpt 0.47 looks for `rope_theta` at the top of the Hugging Face config, where transformers 5
    no longer keeps it (`rope_parameters`), and then writes no `rotary_base`: TensorRT-LLM would take
    its default 10000, wrong for Llama 3 (500000). Filled in as engineforge's sharder writes it."""
    return {**config, "rotary_base": config.get("rotary_base") or shape.rope_theta,
            "rotary_scaling": config.get("rotary_scaling") or shape.rope_scaling}


def export_rank_files(fakequant_dir: Path, out_dir: Path, tp: int, pp: int, dtype: str = "auto",
                      available: Callable[[], int] = host_memory.available_bytes) -> ShardReport:
    """Write `out_dir/config.json` and one `rank{N}.safetensors` per rank of tp x pp from the
    fake-quantized checkpoint the quantize stage saved; refused first when the host cannot hold the model."""
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint
    from modelopt.torch.export.model_utils import get_model_type
    from transformers import AutoModelForCausalLM

    host_memory.check(fakequant_dir, "ModelOpt's TensorRT-LLM export", available=available)

    started = time.perf_counter()
    with PeakRss() as rss:
        if not restore_quantizers_on_load(fakequant_dir):
            raise UserError(f"{fakequant_dir}: no {MODELOPT_STATE}, so not a checkpoint the quantize stage saved; "
                            "rerun with --refresh quantize")
        model = AutoModelForCausalLM.from_pretrained(fakequant_dir).eval()
        decoder_type = get_model_type(model)
        if decoder_type is None:
            raise UserError(f"{fakequant_dir}: ModelOpt's TensorRT-LLM export does not know {type(model).__name__}; "
                            "use runtime trtllm, which loads the unified Hugging Face export")
        name = export_dtype(dtype, str(model.dtype).removeprefix("torch."))
        with torch.inference_mode():
            export_tensorrt_llm_checkpoint(model, decoder_type, getattr(torch, name), export_dir=out_dir,
                                           inference_tensor_parallel=tp, inference_pipeline_parallel=pp)
    config = _with_rope(json.loads((out_dir / "config.json").read_text()), read_model_shape(fakequant_dir))
    (out_dir / "config.json").write_text(json.dumps(config, indent=4))
    files = [ShardFile(name=path.name, size_bytes=path.stat().st_size) for path in sorted(out_dir.glob("rank*.safetensors"))]
    return ShardReport(
        out_dir=out_dir, architecture=config["architecture"], tp=tp, pp=pp, ep=1, dtype=name, files=files,
        config=config, source_bytes=host_memory.safetensors_bytes(fakequant_dir),
        output_bytes=sum(f.size_bytes for f in files) + (out_dir / "config.json").stat().st_size,
        workers=1, wall_s=time.perf_counter() - started, peak_rss_bytes=rss.peak,
    )
