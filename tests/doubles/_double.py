"""Shared parts of the TensorRT-LLM test doubles (see README.md): strict parsing, version, engines.

Imported by the double executables in this directory (their own directory is on sys.path).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

VERSION_SWITCH = "ENGINEFORGE_TEST_TRTLLM_VERSION"


def version() -> str:
    return os.environ.get(VERSION_SWITCH, "0.0.0+double")


def log(tool: str, message: str) -> None:
    print(f"[TensorRT-LLM test double {tool}] {message}", flush=True)


def fail(tool: str, message: str, code: int = 1) -> None:
    print(f"[TensorRT-LLM test double {tool}] error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class StrictParser(argparse.ArgumentParser):
    """argparse without prefix matching: a flag TensorRT-LLM's parser lacks is an error (exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("add_help", True)
        super().__init__(*args, **kwargs)


def add_options(parser: argparse.ArgumentParser, names: list[str | tuple[str, ...]], flags: set[str] = frozenset(),
                choices: dict[str, tuple[str, ...]] | None = None) -> None:
    """Options taking one value, except `flags` (no value); aliases given as tuples."""
    for name in names:
        aliases = name if isinstance(name, tuple) else (name,)
        dest = aliases[0].lstrip("-").replace("-", "_")
        if aliases[0] in flags:
            parser.add_argument(*aliases, dest=dest, action="store_true")
        else:
            parser.add_argument(*aliases, dest=dest, choices=(choices or {}).get(aliases[0]))


def read_engine(engine_dir: Path, tool: str) -> dict:
    path = engine_dir / "config.json"
    if not path.is_file():
        fail(tool, f"{engine_dir} is not an engine directory (no config.json)")
    config = json.loads(path.read_text())
    for key in ("version", "pretrained_config", "build_config"):
        if key not in config:
            fail(tool, f"{path} lacks {key}")
    if config["version"] != version():
        fail(tool, f"Version tag does not match: engine built with {config['version']}, runtime is {version()}")
    world = int(config["pretrained_config"]["mapping"]["world_size"])
    for rank in range(world):
        if not (engine_dir / f"rank{rank}.engine").is_file():
            fail(tool, f"{engine_dir}/rank{rank}.engine missing")
    return config


# What the doubles can serve of a quantized engine (config `quantization`, TensorRT-LLM's QuantAlgo names):
# weights whose real values follow from the rank files alone. The double computes in the checkpoint's dtype:
# it does not quantize activations (FP8) or the KV cache (FP8 KV) as TensorRT-LLM's kernels do.
SERVABLE_QUANT_ALGOS = (None, "FP8", "W4A16_AWQ")
SERVABLE_KV_CACHE_ALGOS = (None, "FP8")


def unservable(quantization: dict) -> str | None:
    """Why the doubles cannot serve rank files of this `quantization`, or None."""
    algo, kv = quantization.get("quant_algo"), quantization.get("kv_cache_quant_algo")
    if algo not in SERVABLE_QUANT_ALGOS or quantization.get("has_zero_point"):
        zero = " with zero points" if quantization.get("has_zero_point") else ""
        return (f"the test double cannot dequantize quant_algo {algo}{zero}; it serves FP8 and W4A16_AWQ "
                "(INT4-AWQ) rank files only")
    if kv not in SERVABLE_KV_CACHE_ALGOS:
        return f"the test double cannot serve kv_cache_quant_algo {kv}; it serves FP8 or no KV cache quantization"
    return None


def dequantized(tensors: dict, quantization: dict, dtype) -> dict:
    """One rank's tensors with each quantized `weight` replaced by the real values TensorRT-LLM computes
    with, and the scale tensors (`*_scaling_factor`) gone:
    - FP8 (tensorrt_llm/quantization/layers.py FP8Linear: the GEMM is scaled by weights_scaling_factor):
      float8_e4m3fn weight x its per-tensor `weights_scaling_factor`;
    - W4A16_AWQ (WeightOnlyGroupwiseQuantLinear, `preprocess_perlayer_weights`): int8 (out/2, in) holding
      two signed INT4 codes, row 2i in the low nibble and row 2i+1 in the high one (ModelOpt's
      `pack_int4_in_uint8`), x `weights_scaling_factor` (out, in/group_size) per block of inputs; the
      layer multiplies its input by `prequant_scaling_factor` (in,), folded here into the weight's columns."""
    import torch

    out = {}
    for name, tensor in tensors.items():
        if name.endswith("_scaling_factor"):
            continue
        layer = name.removesuffix(".weight")
        scale = tensors.get(f"{layer}.weights_scaling_factor")
        if scale is None:  # an unquantized tensor (norms, embedding, excluded lm_head)
            out[name] = tensor
        elif quantization["quant_algo"] == "FP8":
            out[name] = (tensor.float() * scale.float()).to(dtype)
        else:
            packed = tensor.view(torch.uint8).to(torch.int16)
            codes = torch.stack([packed & 0x0F, packed >> 4], dim=1).reshape(-1, packed.shape[1])
            codes = torch.where(codes > 7, codes - 16, codes).float()
            blocks = scale.float().repeat_interleave(int(quantization["group_size"]), dim=1)
            out[name] = (codes * blocks * tensors[f"{layer}.prequant_scaling_factor"].float()).to(dtype)
    return out


def hf_model_from_engine(engine_dir: Path, tokenizer_dir: Path, tool: str) -> Path:
    """A Hugging Face model directory with the weights the engine files carry (the double's "engine"
    files are the checkpoint's rank files, quantized ones dequantized per rank), reassembled by
    engineforge's checkpoint reassembler; a quantization the double cannot dequantize exits 2."""
    import torch
    from safetensors.torch import load_file, save_file

    from engineforge.verify.ckpt_reader import TrtllmCheckpoint
    from engineforge.verify.reassemble import reassemblers

    config = json.loads((engine_dir / "config.json").read_text())
    pretrained = config["pretrained_config"]
    quantization = pretrained.get("quantization") or {}
    refusal = unservable(quantization)
    if refusal:
        fail(tool, f"{engine_dir}: {refusal}", code=2)
    out = Path(tempfile.mkdtemp(prefix="trtllm-double-model-"))
    ckpt_dir = out / "checkpoint"
    ckpt_dir.mkdir()
    (ckpt_dir / "config.json").write_text(json.dumps(pretrained))
    for engine in engine_dir.glob("rank*.engine"):
        rank_file = ckpt_dir / f"{engine.stem}.safetensors"
        if quantization.get("quant_algo"):
            save_file(dequantized(load_file(engine), quantization, getattr(torch, pretrained["dtype"])), rank_file)
            log(tool, f"{engine.name}: {quantization['quant_algo']} weights dequantized to {pretrained['dtype']} "
                      "(the double quantizes neither activations nor the KV cache)")
        else:
            os.symlink(engine.resolve(), rank_file)
    weights = {name: rebuild().contiguous() for name, rebuild in reassemblers(TrtllmCheckpoint(ckpt_dir)).items()}
    model_dir = out / "model"
    shutil.copytree(tokenizer_dir, model_dir)
    save_file(weights, model_dir / "model.safetensors")
    shutil.rmtree(ckpt_dir)
    return model_dir
