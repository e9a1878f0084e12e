"""Refusals before any work: what a runtime or GPU cannot serve (TensorRT-LLM's support matrix)."""

from __future__ import annotations

import pytest

from engineforge.cli.app import main
from engineforge.quantize.support import refusal

H200 = ("NVIDIA H200", (9, 0))
B200 = ("NVIDIA B200", (10, 0))
A100 = ("NVIDIA A100-SXM4-80GB", (8, 0))


@pytest.mark.parametrize("runtime,format,kv,device,gpu,expected", [
    ("trtllm", "int8_sq", "none", "cuda", H200, "PyTorch backend does not serve INT8 SmoothQuant"),
    ("trtllm-engine", "nvfp4", "none", "cuda", H200, "quantize.format nvfp4: NVFP4 needs a Blackwell GPU"),
    ("trtllm-engine", "fp8", "fp8", "cuda", A100, "FP8 needs Ada or Hopper tensor cores"),
    ("trtllm", "nvfp4", "none", "cuda", H200, "quantize.format nvfp4: NVFP4 needs a Blackwell GPU (SM 10.0+), this worker has NVIDIA H200 (SM 9.0)"),
    ("trtllm", "fp8", "nvfp4", "cuda", H200, "quantize.kv_cache nvfp4: NVFP4 needs a Blackwell GPU"),
    ("trtllm", "fp8", "fp8", "cuda", A100, "FP8 needs Ada or Hopper tensor cores (SM 8.9+), this worker has NVIDIA A100-SXM4-80GB (SM 8.0)"),
    ("transformers", "nvfp4", "none", "cpu", None, "ModelOpt's NVFP4 forward pass needs CUDA"),
])
def test_refused_with_the_reason(runtime, format, kv, device, gpu, expected):
    assert expected in refusal(runtime, format, kv, device, gpu)


@pytest.mark.parametrize("runtime,format,kv,device,gpu", [
    ("trtllm", "nvfp4", "nvfp4", "cuda", B200),
    ("trtllm", "fp8", "fp8", "cuda", H200),
    ("trtllm", "int4_awq", "none", "cuda", A100),
    ("trtllm", "nvfp4", "none", "cuda", None),  # no GPU on the machine that checks: the worker decides
    ("transformers", "int8_sq", "none", "cpu", None),
    ("trtllm-engine", "int8_sq", "none", "cuda", A100),  # the engine path serves W8A8 SmoothQuant
    ("trtllm-engine", "fp8", "fp8", "cuda", H200),
])
def test_servable_combinations_pass(runtime, format, kv, device, gpu):
    assert refusal(runtime, format, kv, device, gpu) is None


def test_trtllm_engine_refuses_expert_parallelism_for_quantized_rank_files():
    assert "parallel.expert 2" in refusal("trtllm-engine", "fp8", "none", "cuda", H200, expert=2)
    assert refusal("trtllm", "fp8", "none", "cuda", H200, expert=2) is None  # the LLM API splits the export itself


def test_cli_refuses_nvfp4_on_the_cpu_in_one_line(tiny_model_dir, tmp_path, capsys):
    assert main(["quantize", str(tiny_model_dir), "--format", "nvfp4", "--device", "cpu", "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: quantize.format nvfp4:") and "\n" not in err
    assert not (tmp_path / "q").exists()


def test_flow_refuses_int8_sq_for_trtllm_before_any_work(tmp_path):
    from engineforge.errors import UserError
    from engineforge.recipe.file import parse_recipe
    from engineforge.quantize.support import check_servable

    recipe = parse_recipe("name: q\nmodel: {source: synthetic:q}\nruntime: trtllm\nquantize: {format: int8_sq}\n", "q.yaml")
    with pytest.raises(UserError, match="does not serve INT8 SmoothQuant"):
        check_servable(recipe)
