"""NVFP4 needs Blackwell (TensorRT-LLM docs/source/features/quantization.md): `plan` for a Hopper card and
a run on a Hopper worker refuse an NVFP4 TensorRT-LLM recipe before any work. TensorRT-LLM is not run;
the worker's GPU is given to the check (no GPU here)."""

import pytest

from engineforge.errors import UserError
from engineforge.gpus import find_gpu
from engineforge.recipe.file import parse_recipe
from engineforge.runtimes.trtllm.base import TrtllmRuntimeBase
from engineforge.trtllm.support import quantization_problem


def recipe(fmt="nvfp4", kv="none", runtime="trtllm"):
    return parse_recipe(f"name: q\nmodel:\n  source: synthetic:tiny-llama\nruntime: {runtime}\n"
                        f"quantize:\n  format: {fmt}\n  kv_cache: {kv}\n")


@pytest.mark.parametrize("gpu", ["H200", "H100-SXM", "A100-80GB"])
def test_nvfp4_is_refused_on_a_card_before_blackwell(gpu):
    field, message = quantization_problem(recipe(), find_gpu(gpu))
    assert field == "quantize.format" and message.startswith("NVFP4 needs a Blackwell GPU")
    assert quantization_problem(recipe("fp8", "nvfp4"), find_gpu(gpu))[0] == "quantize.kv_cache"


def test_nvfp4_on_blackwell_fp8_on_hopper_and_the_reference_runtime_pass():
    assert quantization_problem(recipe(), find_gpu("B200")) is None
    assert quantization_problem(recipe("fp8", "fp8"), find_gpu("H200")) is None
    assert quantization_problem(recipe(runtime="transformers"), find_gpu("H200")) is None  # fake-quantized serving


def test_a_run_on_a_hopper_worker_is_refused_and_an_unknown_card_is_not_judged(monkeypatch):
    import engineforge.gpus as gpus

    monkeypatch.setattr(gpus, "gpu_info", lambda: {"gpu_name": "NVIDIA H200", "gpu_count": 8})
    with pytest.raises(UserError, match="^quantize.format: NVFP4 needs a Blackwell GPU.*H200 is hopper"):
        TrtllmRuntimeBase._check_gpu(recipe())
    monkeypatch.setattr(gpus, "gpu_info", lambda: {"gpu_name": "NVIDIA Future GPU", "gpu_count": 1})
    TrtllmRuntimeBase._check_gpu(recipe())


def test_validate_flags_an_nvfp4_recipe_that_it_cannot_judge_without_a_gpu(tmp_path, capsys):
    from engineforge.cli.app import main

    nvfp4, fp8 = tmp_path / "nvfp4.yaml", tmp_path / "fp8.yaml"
    nvfp4.write_text("name: q\nmodel:\n  source: synthetic:tiny-llama\nruntime: trtllm\nquantize:\n  format: nvfp4\n")
    fp8.write_text("name: q\nmodel:\n  source: synthetic:tiny-llama\nruntime: trtllm\nquantize:\n  format: fp8\n")
    assert main(["validate", str(nvfp4), str(fp8)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "note:" in line] == [
        f"{nvfp4}: note: quantize.format nvfp4 needs a Blackwell GPU (B200, GB200); a Hopper or older worker "
        "refuses it before any work (engineforge plan --gpu NAME checks a card)"]
