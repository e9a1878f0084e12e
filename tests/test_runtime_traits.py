"""Runtime names declared once (engineforge/runtime_traits.py), answered by each Runtime, and tested
by name nowhere outside engineforge/runtimes/."""

import re
from pathlib import Path

from engineforge.runtime_traits import RUNTIMES, TRAITS
from engineforge.runtimes import RUNTIMES as REGISTERED

ROOT = Path(__file__).resolve().parents[1]
NAME_TEST = re.compile(r"""runtime\s*(==|!=|\bin\b|\bnot in\b)\s*["'(A-Z]|runtime\.startswith\(""")


def test_every_declared_runtime_is_registered_and_answers_its_own_traits():
    assert set(REGISTERED) == set(RUNTIMES)
    for name, runtime in REGISTERED.items():
        assert runtime.traits is TRAITS[name]
        assert runtime.serves_fake_quantized == TRAITS[name].serves_fake_quantized


def test_no_module_outside_runtimes_tests_a_runtime_name():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for folder in ("engineforge", "flows", "tasks") for path in sorted((ROOT / folder).rglob("*.py"))
             if "runtimes" not in path.relative_to(ROOT).parts
             for number, line in enumerate(path.read_text().splitlines(), 1) if NAME_TEST.search(line)]
    assert found == []


def test_the_name_check_catches_what_it_looks_for():
    assert all(NAME_TEST.search(line) for line in ('if recipe.runtime == "trtllm":', 'runtime in TRTLLM_RUNTIMES',
                                                   'not self.runtime.startswith("trtllm")', "runtime != 'x'"))
    assert not NAME_TEST.search("traits = runtime_traits(recipe.runtime)")


def test_a_second_server_starts_beside_a_measuring_one_only_where_the_device_can_hold_both():
    # transformers on the CPU allocates as it goes; on a GPU two copies need not fit, and TensorRT-LLM takes
    # kv_cache_free_gpu_memory_fraction of the free GPU memory as it starts.
    assert TRAITS["transformers"].servers_share("cpu") and not TRAITS["transformers"].servers_share("cuda")
    assert not any(TRAITS[name].servers_share(device) for name in ("trtllm", "trtllm-engine") for device in ("cpu", "cuda"))
