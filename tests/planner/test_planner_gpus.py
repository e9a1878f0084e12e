import sys
import types

import pytest

from engineforge.errors import UserError
from engineforge.gpus import CATALOGUE, detect_gpus, find_gpu, known_names


@pytest.mark.parametrize(
    "written, name",
    [("h100", "H100-SXM"), ("H100 SXM5", "H100-SXM"), ("NVIDIA H100 80GB HBM3", "H100-SXM"), ("h100-pcie", "H100-PCIe"),
     ("a100", "A100-80GB"), ("NVIDIA A100-SXM4-40GB", "A100-40GB"), ("l40s", "L40S"), ("b200", "B200"), ("H200", "H200")],
)
def test_names_as_users_and_nvml_write_them(written, name):
    assert find_gpu(written).name == name


def test_unknown_gpu_lists_the_known_ones():
    with pytest.raises(UserError) as error:
        find_gpu("X100")
    assert "--gpu X100" in str(error.value)
    assert all(name in str(error.value) for name in known_names())


def test_catalogue_covers_the_issue_cards_with_cited_figures():
    assert set(known_names()) == {"H100-SXM", "H100-PCIe", "H200", "A100-40GB", "A100-80GB", "L40S", "B200"}
    for spec in CATALOGUE:
        assert spec.source.startswith("https://"), spec.name
        assert spec.hbm_tb_s and spec.bf16_tflops, spec.name
        # NVML's total and the datasheet's nominal size (binary GB in practice) are independent sources;
        # they agree within 7% (the driver's reservation, and ECC on the L40S's GDDR6).
        assert 0.93 < spec.memory_gib / spec.memory_gb <= 1.0, spec.name
        # FP8 tensor cores double the dense BF16 rate where the card has them (not on Ampere).
        assert spec.fp8_tflops is None or spec.fp8_tflops == pytest.approx(2 * spec.bf16_tflops, rel=0.02), spec.name


def fake_pynvml(monkeypatch, name, total, count=8, fail_init=False):
    """Stand-in for nvidia-ml-py: there is no GPU or NVML driver library on the test machines."""
    module = types.ModuleType("pynvml")

    def init():
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetCount = lambda: count
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetName = lambda handle: name
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(total=total)
    monkeypatch.setitem(sys.modules, "pynvml", module)


def test_fake_nvml_detection_uses_the_card_total_and_catalogue_figures(monkeypatch):
    fake_pynvml(monkeypatch, b"NVIDIA H100 80GB HBM3", total=85_000_000_000, count=4)
    found = detect_gpus()
    assert (found.spec.name, found.count, found.spec.memory_bytes) == ("H100-SXM", 4, 85_000_000_000)
    assert found.spec.hbm_tb_s == find_gpu("H100-SXM").hbm_tb_s


def test_fake_nvml_unknown_card_keeps_its_name_and_memory(monkeypatch):
    fake_pynvml(monkeypatch, "NVIDIA RTX 6000 Ada Generation", total=51_000_000_000, count=2)
    found = detect_gpus()
    assert (found.spec.name, found.spec.memory_bytes, found.spec.hbm_tb_s) == ("NVIDIA RTX 6000 Ada Generation", 51_000_000_000, None)


def test_fake_nvml_without_a_driver_means_no_gpu(monkeypatch):
    fake_pynvml(monkeypatch, "", total=0, fail_init=True)
    assert detect_gpus() is None


def test_no_nvml_package_means_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    assert detect_gpus() is None
