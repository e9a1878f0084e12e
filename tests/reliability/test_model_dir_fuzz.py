"""Generated hostile model directories (config.json values, safetensors headers) through the checks
`validate` and `run --dry-run` make (`recipe_checks.check_recipe_text`): accepted, or refused in
lines of `file:line: ...`; never a traceback, never more than 2 s, and the process's peak memory
stays that of a sound model's check."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engineforge.recipe_checks import check_recipe_text
from engineforge.recipe.file import RecipeError

ORIGIN = "fuzz.yaml"
FIELDS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
          "intermediate_size", "vocab_size", "num_local_experts", "num_experts_per_tok", "max_position_embeddings",
          "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "architectures", "tie_word_embeddings",
          "torch_dtype", "quantization_config", "text_config", "hidden_act"]
numbers = st.one_of(st.integers(-3, 5000), st.integers(10**9, 10**400), st.booleans(), st.floats(),
                    st.sampled_from([0, 1, 2, 64, 1024, 10**39]))
scalars = st.one_of(numbers, st.text(max_size=6), st.none())
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(FIELDS + ["rope_type", "quant_method"]),
                                                                          scalars, max_size=3))
HEADERS = [b"", b"{", b"[]", b"null", b"[" * 5000, b'{"a": ' + b"9" * 5000 + b"}", b'{"__metadata__": 5}',
           b'{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}',
           b'{"w": {"dtype": "F32", "shape": [99999999999999999999], "data_offsets": [0, 4]}}',
           b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', b"\xff\xfe\x00"]


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_model_dir) -> Path:
    return tiny_model_dir


@settings(max_examples=500, deadline=timedelta(seconds=2), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), values, max_size=4))
def test_no_generated_config_json_gives_a_traceback(tmp_path_factory, base, changes):
    model = _copy(tmp_path_factory, base)
    config = json.loads((model / "config.json").read_text()) | changes
    (model / "config.json").write_text(json.dumps(config))
    _check(model)


@settings(max_examples=500, deadline=timedelta(seconds=2), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.sampled_from(HEADERS), st.binary(max_size=64)),
       declared=st.one_of(st.none(), st.integers(0, 2**64 - 1)), tail=st.binary(max_size=16))
def test_no_generated_safetensors_header_gives_a_traceback(tmp_path_factory, base, raw, declared, tail):
    model = _copy(tmp_path_factory, base)
    length = len(raw) if declared is None else declared
    (model / "model.safetensors").write_bytes(struct.pack("<Q", length) + raw + tail)
    _check(model)


# The values that once took gigabytes (issue 26): checked in a fresh process, whose peak is its own.
WORST = [{"num_hidden_layers": 10**9}, {"intermediate_size": 10**400}, {"vocab_size": 10**39, "hidden_size": 10**39}]
PEAK_OF_CHECKS = """
import json, resource, shutil, struct, sys
from pathlib import Path
from engineforge.recipe_checks import check_recipe_text
from engineforge.recipe.file import RecipeError
base, work, changes = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
refused = 0
for n, change in enumerate(changes):
    model = work / str(n)
    shutil.copytree(base, model)
    if "header_length" in change:
        (model / "model.safetensors").write_bytes(struct.pack("<Q", change["header_length"]) + b"{}")
    else:
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps(config | change))
    try:
        check_recipe_text(f"name: m\\nmodel:\\n  source: '{model}'\\nruntime: transformers\\n", "m.yaml", None)
    except RecipeError:
        refused += 1
print(refused, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _refused_and_peak_kib(base: Path, work: Path, changes: list[dict]) -> tuple[int, int]:
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", PEAK_OF_CHECKS, str(base), str(work), json.dumps(changes)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    refused, peak_kib = done.stdout.split()[-2:]
    return int(refused), int(peak_kib)


def test_the_worst_values_cost_no_more_memory_than_a_sound_model(base, tmp_path):
    """A process checking the values that once took gigabytes (and a header claiming 1 TB) peaks within
    128 MiB of one checking the unchanged model: the size of the imports, not of the claims."""
    worst_cases = WORST + [{"header_length": 1 << 40}]
    sound_refused, sound = _refused_and_peak_kib(base, tmp_path / "sound", [{}])
    worst_refused, worst = _refused_and_peak_kib(base, tmp_path / "worst", worst_cases)
    print(f"peak RSS: sound model {sound / 1024:.0f} MiB, worst values {worst / 1024:.0f} MiB")
    assert (sound_refused, worst_refused) == (0, len(worst_cases))
    assert worst < sound + (128 << 10)


def _copy(tmp_path_factory, base: Path) -> Path:
    model = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(base, model)
    return model


def _check(model: Path) -> None:
    text = f"name: fuzz\nmodel:\n  source: '{model}'\n  dtype: float32\nruntime: transformers\n"
    try:
        check_recipe_text(text, ORIGIN, None)
    except RecipeError as error:
        assert error.problems and all(line.startswith(f"{ORIGIN}:3: model.source: ") or line.startswith(f"{ORIGIN}:1: parallel")
                                      for line in error.problems), error.problems
        assert all("\n" not in line for line in error.problems)
    finally:
        shutil.rmtree(model.parent, ignore_errors=True)
