"""The host-memory preflight of the whole-model loads (CPU calibration, ModelOpt's rank export): the
available memory is injected, so the refusal is checked without a model too big for this host."""

from __future__ import annotations

import pytest

from engineforge.errors import UserError
from engineforge.quantize import host_memory
from engineforge.quantize.ptq import quantize_model
from engineforge.quantize.rank_files import export_rank_files
from engineforge.recipe.schema import QuantizeSpec


def test_weight_bytes_are_the_safetensors_bytes_rescaled_to_the_loaded_dtype(tiny_model_dir):
    stored = sum(p.stat().st_size for p in tiny_model_dir.glob("*.safetensors"))  # float32 synthetic weights
    assert host_memory.weight_bytes(tiny_model_dir) == host_memory.weight_bytes(tiny_model_dir, "float32") == stored
    assert host_memory.weight_bytes(tiny_model_dir, "bfloat16") == stored // 2


def test_a_tiny_model_fits_the_hosts_real_available_memory(tiny_model_dir):
    for load in host_memory.LOADS:
        host_memory.check(tiny_model_dir, load)  # psutil's MemAvailable, not injected
    assert 0 < host_memory.weight_bytes(tiny_model_dir) * 3 < host_memory.available_bytes()


def test_calibration_on_the_cpu_is_refused_in_one_line_before_loading(tiny_model_dir, tmp_path):
    weights = host_memory.weight_bytes(tiny_model_dir)
    out = tmp_path / "quantized"
    with pytest.raises(UserError) as error:
        quantize_model(tiny_model_dir, QuantizeSpec(format="fp8"), out, available=lambda: 2 * weights)
    message = str(error.value)
    assert "\n" not in message and not out.exists()
    assert message.startswith(f"{tiny_model_dir}: calibration loads the whole model in host memory")
    assert f"({3.0}x its {weights / 1e9:.3g} GB of weights), but {2 * weights / 1e9:.3g} GB is available" in message
    assert "calibrate on a GPU" in message


def test_rank_export_is_refused_with_runtime_trtllm_as_the_way_out(tiny_model_dir, tmp_path):
    weights = host_memory.weight_bytes(tiny_model_dir)
    with pytest.raises(UserError) as error:
        export_rank_files(tiny_model_dir, tmp_path / "checkpoint", 1, 1, available=lambda: 2 * weights)
    message = str(error.value)
    assert "\n" not in message and not (tmp_path / "checkpoint").exists()
    assert "ModelOpt's TensorRT-LLM export loads the whole model" in message and "runtime trtllm" in message
    host_memory.check(tiny_model_dir, "ModelOpt's TensorRT-LLM export", available=lambda: 3 * weights)  # 2.5x fits
