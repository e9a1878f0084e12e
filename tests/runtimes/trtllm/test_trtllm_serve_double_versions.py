"""The trtllm-serve TEST DOUBLE follows the TensorRT-LLM version it is told (issue 23): it checks an options
file against engineforge/trtllm/definitions/<version>.json, so 1.3 options pass at 1.3 and an unknown key is
refused at either version. TensorRT-LLM itself is not run (it cannot be installed here). The model directory
given is empty: a file the double accepts gets as far as "not a Hugging Face checkpoint directory"."""

import subprocess

import pytest
from trtllm_helpers import DOUBLES, use_doubles

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes.trtllm.files import yaml_text
from engineforge.runtimes.trtllm.serve import pytorch_serve_argv
from engineforge.trtllm.definitions import definitions
from engineforge.trtllm.options import llm_api_options
from engineforge.recipe.trtllm_section import VERSIONS

ONLY_AT_13 = sorted(set(definitions("1.3.0rc30")["schema"]["properties"]) - set(definitions("1.2.1")["schema"]["properties"]))


def serve(monkeypatch, tmp_path, version: str, options: str, flag: str = "--config", *extra: str):
    use_doubles(monkeypatch, version)
    path = tmp_path / "options.yaml"
    path.write_text(options)
    (tmp_path / "model").mkdir(exist_ok=True)
    return subprocess.run([str(DOUBLES / "trtllm-serve"), str(tmp_path / "model"), flag, str(path), *extra],
                          capture_output=True, text=True, timeout=60)


def accepted(done) -> bool:
    return done.returncode == 1 and "not a Hugging Face checkpoint directory" in done.stderr


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_the_double_accepts_the_flag_and_knobs_engineforge_emits_at_each_version(version, monkeypatch, tmp_path):
    knobs = parse_recipe("name: k\nmodel: {source: synthetic:k}\nruntime: trtllm\ntrtllm:\n"
                         f"  version: {version}\n  llm_api:\n    enable_chunked_prefill: true\n"
                         "    cuda_graph_config: {enable_padding: true, max_batch_size: 8}\n"
                         "    scheduler_config: {capacity_scheduler_policy: MAX_UTILIZATION}\n")
    flag = pytorch_serve_argv(knobs, "/m", "/m/options.yaml", "127.0.0.1", 8000)
    flag = next(word for word in flag if word in ("--config", "--extra_llm_api_options"))
    assert flag == VERSIONS[version].serve_options_flag
    assert accepted(serve(monkeypatch, tmp_path, version, yaml_text(llm_api_options(knobs)), flag))


def test_a_key_defined_only_at_13_passes_at_13_and_is_refused_at_121(monkeypatch, tmp_path):
    key = "hf_revision" if "hf_revision" in ONLY_AT_13 else ONLY_AT_13[0]
    assert accepted(serve(monkeypatch, tmp_path, "1.3.0rc30", f"{key}: main\n"))
    refused = serve(monkeypatch, tmp_path, "1.2.1", f"{key}: main\n", "--extra_llm_api_options")
    assert refused.returncode == 1 and f"TensorRT-LLM 1.2.1 has no field(s) ['{key}']" in refused.stderr


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_an_unknown_key_or_nested_field_is_still_refused(version, monkeypatch, tmp_path):
    done = serve(monkeypatch, tmp_path, version, "max_batch_size: 8\nno_such_option: 1\n")
    assert done.returncode == 1 and "has no field(s) ['no_such_option']" in done.stderr
    done = serve(monkeypatch, tmp_path, version, "cuda_graph_config:\n  padding: true\n")
    assert done.returncode == 1 and "cuda_graph_config has no field(s) ['padding']" in done.stderr
    done = serve(monkeypatch, tmp_path, version, "cache_transceiver_config:\n  backend: TCP\n")
    assert done.returncode == 1 and "cache_transceiver_config.backend" in done.stderr


def test_the_engine_backend_exists_only_where_the_engine_path_does(monkeypatch, tmp_path):
    done = serve(monkeypatch, tmp_path, "1.3.0rc30", "{}\n", "--config", "--backend", "tensorrt")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = serve(monkeypatch, tmp_path, "1.2.1", "{}\n", "--config", "--backend", "tensorrt")
    assert done.returncode == 1 and "not an engine directory" in done.stderr


def test_a_version_the_double_has_no_definitions_of_is_refused(monkeypatch, tmp_path):
    done = serve(monkeypatch, tmp_path, "9.9.9", "{}\n")
    assert done.returncode == 2 and "no definitions of TensorRT-LLM 9.9.9" in done.stderr
