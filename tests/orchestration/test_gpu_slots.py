"""Which stages take GPU slots, how many, and which devices a stage sees (no Prefect server needed)."""

import os
import threading

import pytest

from engineforge.orchestration import gpu_slots
from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stages.pipeline import named


def recipe(runtime="transformers", device="cpu", tensor=1, pipeline=1, validate=True):
    return parse_recipe(
        f"name: slots\nmodel:\n  source: synthetic:tiny\nruntime: {runtime}\n"
        f"parallel:\n  tensor: {tensor}\n  pipeline: {pipeline}\nserve:\n  device: {device}\n"
        f"validate:\n  enabled: {str(validate).lower()}\n"
    )


def needed(stage, parsed):
    return gpu_slots.gpus_needed(named(stage), parsed, get_runtime(parsed.runtime))


def test_gpu_stages_take_one_slot_per_gpu_they_use(monkeypatch):
    monkeypatch.delenv("ENGINEFORGE_GPU_STAGES", raising=False)
    assert needed("build", recipe("trtllm", tensor=4, pipeline=2)) == 8
    assert needed("build", recipe("trtllm-engine", tensor=2)) == 2
    assert needed("validate", recipe("trtllm", device="cuda", tensor=2)) == 2
    assert needed("build", recipe("transformers", device="cuda")) == 0  # writes a directory
    assert needed("validate", recipe(device="cpu")) == 0
    assert needed("validate", recipe(device="cuda", validate=False)) == 0
    for stage in ("download", "shard", "package", "register"):
        assert needed(stage, recipe("trtllm-engine", device="cuda", tensor=2)) == 0


def test_declared_gpu_stages_take_slots_on_a_cpu_machine(monkeypatch):
    monkeypatch.setenv("ENGINEFORGE_GPU_STAGES", "validate, shard")
    assert needed("validate", recipe(device="cpu")) == 1
    assert needed("shard", recipe(tensor=2)) == 2
    assert needed("build", recipe()) == 0


def test_limit_name_is_per_host_unless_configured(monkeypatch):
    monkeypatch.delenv(gpu_slots.LIMIT_ENV, raising=False)
    monkeypatch.setattr(gpu_slots.socket, "gethostname", lambda: "H100_Node-7.cluster.local")
    assert gpu_slots.limit_name() == "gpu-h100-node-7"
    monkeypatch.setenv(gpu_slots.LIMIT_ENV, "gpu-cluster")
    assert gpu_slots.limit_name() == "gpu-cluster"


def test_holders_on_one_host_get_distinct_devices(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGINEFORGE_GPU_LOCK_DIR", str(tmp_path))
    with gpu_slots._claimed_devices("gpu-test", size=3, count=2) as first:
        with gpu_slots._claimed_devices("gpu-test", size=3, count=1) as second:
            assert sorted(first + second) == [0, 1, 2]
    with gpu_slots._claimed_devices("gpu-test", size=3, count=3) as all_three:  # released on exit
        assert all_three == [0, 1, 2]


def test_a_holder_waits_for_a_device_rather_than_sharing_one(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGINEFORGE_GPU_LOCK_DIR", str(tmp_path))
    claimed = []

    def second_holder():
        with gpu_slots._claimed_devices("gpu-test", size=1, count=1, poll_s=0.01) as devices:
            claimed.append(devices)

    with gpu_slots._claimed_devices("gpu-test", size=1, count=1):
        waiter = threading.Thread(target=second_holder)
        waiter.start()
        waiter.join(timeout=0.2)
        assert claimed == []  # device 0 is held
    waiter.join(timeout=30)
    assert claimed == [[0]]


def test_visible_devices_index_an_existing_mask_and_are_restored(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    with gpu_slots._visible_devices([1, 2]):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "5,6"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5,6"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with gpu_slots._visible_devices([0]):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_cpu_stages_hold_nothing():
    with gpu_slots.holding_gpus("download", 0) as devices:  # no Prefect call at all
        assert devices == []


@pytest.mark.integration
def test_a_local_run_declares_the_hosts_gpus_once_and_never_resizes(prefect_api, monkeypatch, tmp_path):
    from prefect.client.orchestration import get_client

    from engineforge.gpus import gpu_info

    monkeypatch.setenv(gpu_slots.LIMIT_ENV, f"gpu-local-{tmp_path.name}")
    monkeypatch.delenv("ENGINEFORGE_GPU_STAGES", raising=False)

    def slots():
        with get_client(sync_client=True) as client:
            return client.read_global_concurrency_limit_by_name(gpu_slots.limit_name()).limit

    gpu_slots.ensure_declared(recipe(device="cpu"))  # no GPU stage: nothing declared
    from prefect.exceptions import ObjectNotFound

    with pytest.raises(ObjectNotFound):
        slots()
    monkeypatch.setenv("ENGINEFORGE_GPU_STAGES", "validate")
    gpu_slots.ensure_declared(recipe(device="cpu"))
    assert slots() == gpu_info()["gpu_count"]
    gpu_slots.declare_limit(3)  # what `engineforge worker --gpus 3` did
    gpu_slots.ensure_declared(recipe(device="cpu"))
    assert slots() == 3
