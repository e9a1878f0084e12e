"""measure(): the load against the loopback mock server, with telemetry (fake NVML: no GPU here),
the decode roofline, accuracy against the tiny synthetic model in-process, and the gates."""

from __future__ import annotations

import sys

import pytest

from engineforge.errors import StageFailed, UserError
from engineforge.loadgen import BenchConfig
from engineforge.measure.measurement import AccuracyCheck, RooflineCheck, measure
from engineforge.recipe.schema import Gates
from tests.doubles.nvml import fake_pynvml
from tests.doubles.openai_server import mock_server


@pytest.fixture(scope="module")
def server():
    with mock_server(2.0, 10.0) as url:  # 10 ms apart: tokens arrive apart on a loaded machine (TPOT > 0)
        yield url


def config(url: str, **overrides) -> BenchConfig:
    return BenchConfig(**({"endpoint": url, "model": "mock", "prompts": ["a"], "requests": 4, "concurrency": 2,
                           "max_tokens": 4} | overrides))


def test_load_with_telemetry_roofline_and_gates_with_fake_nvml(server, tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    measured = measure(config(server), roofline=RooflineCheck(model_dir=tiny_model_dir),
                       gates=Gates(max_error_rate=0, max_ttft_ms_p99=0.001))
    figures = measured.figures
    assert figures["completed"] == 4 and figures["gpu_count"] == 2
    assert measured.result.gpus == ["NVIDIA H100 80GB HBM3"] * 2
    assert figures["roofline_tpot_ms"] > 0 and 0 < figures["roofline_fraction"] < 1
    assert [(r.gate, r.passed) for r in measured.gates.results] == [("max_ttft_ms_p99", False), ("max_error_rate", True)]
    with pytest.raises(StageFailed, match="gates failed: max_ttft_ms_p99$"):
        measured.gates.raise_if_failed("bench", with_table=False)
    with pytest.raises(StageFailed) as failure:
        measured.gates.raise_if_failed("validate")
    assert failure.value.cause.splitlines()[0] == "gates failed" and "FAIL" in failure.value.cause


def test_roofline_without_a_gpu(server, tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML: telemetry samples nothing
    measured = measure(config(server), roofline=RooflineCheck(model_dir=tiny_model_dir))
    assert measured.result.gpus == [] and not any(name.startswith("roofline_") for name in measured.figures)
    assert measured.gates is None
    with pytest.raises(UserError, match="--gpu"):
        measure(config(server), roofline=RooflineCheck(model_dir=tiny_model_dir, required=True))
    named = measure(config(server), roofline=RooflineCheck(model_dir=tiny_model_dir, gpu="H100-SXM", required=True))
    assert named.figures["roofline_output_tokens_per_s"] > 0


def test_sweep_reports_its_last_level(server):
    measured = measure(config(server, gpu_telemetry=False), levels=[1, 2], gates=Gates())
    assert [p.config.concurrency for p in measured.sweep.points] == [1, 2]
    assert measured.result is measured.sweep.points[-1] and measured.figures["sweep_levels"] == 2
    assert measured.gates.results == [] and measured.gates.passed


def test_accuracy_against_the_reference_model(server, tiny_model_dir):
    # The mock server answers " t0 t1 ..." whatever the prompt; the reference model does not.
    measured = measure(config(server, gpu_telemetry=False),
                       accuracy=AccuracyCheck(reference_model=str(tiny_model_dir), prompts=["Once upon", "Hi"]))
    assert len(measured.accuracy.prompts) == 2
    assert measured.figures["token_agreement"] == measured.accuracy.token_agreement < 1.0
    assert measured.figures["exact_match_rate"] == 0.0
