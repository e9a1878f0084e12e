"""Units of the TensorRT-LLM runtimes: availability, build argv rules, engine checks, report parsing,
image pinning, recipe rules, and the test doubles' refusal of flags TensorRT-LLM does not have.
Real TensorRT-LLM is not run (it cannot be installed here)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trtllm_helpers import DOUBLE_VERSION, DOUBLES, use_doubles, without_trtllm

from engineforge import versions
from engineforge.errors import StageFailed, UserError
from engineforge.packaging.base_image import TRTLLM_RELEASE_IMAGE
from engineforge.recipe.file import RecipeError, parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.runtimes.trtllm import availability, bench, build
from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.runtimes.trtllm.launch import launched
from engineforge.trtllm.options import kv_cache_config
from engineforge.stage_result import StageResult

REPO = Path(__file__).resolve().parents[3]


def recipe(runtime: str = "trtllm", extra: str = ""):
    return parse_recipe(f"name: unit\nmodel:\n  source: synthetic:unit\nruntime: {runtime}\n{extra}")


# --- availability -------------------------------------------------------------------------------

def test_missing_tensorrt_llm_is_one_line_naming_what_and_where(monkeypatch):
    without_trtllm(monkeypatch)
    monkeypatch.setattr(versions.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError) as error:
        get_runtime("trtllm-engine").check_available(recipe("trtllm-engine"))
    message = str(error.value)
    assert "\n" not in message and message.startswith("runtime trtllm-engine needs TensorRT-LLM")
    assert "Python package tensorrt_llm" in message and "trtllm-build on PATH" in message and "trtllm-serve on PATH" in message
    assert "nvcr.io/nvidia/tensorrt-llm/release:1.2.1" in message and "never falls back" in message


def test_installed_package_is_probed_with_find_spec_not_imported(monkeypatch):
    without_trtllm(monkeypatch)
    probed = []
    monkeypatch.setattr(versions.importlib.util, "find_spec", lambda name: probed.append(name) or object())
    monkeypatch.setattr(versions, "package_version", lambda name: "1.2.1" if name == "tensorrt_llm" else None)
    assert versions.tensorrt_llm_version() == "1.2.1" and probed == ["tensorrt_llm"]
    assert "tensorrt_llm" not in sys.modules


def test_the_test_switch_alone_does_not_make_commands_appear(monkeypatch):
    without_trtllm(monkeypatch)
    monkeypatch.setenv(versions.TRTLLM_TEST_SWITCH, DOUBLE_VERSION)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert availability.missing(["trtllm-serve"]) == ["trtllm-serve on PATH"]
    use_doubles(monkeypatch)
    assert availability.missing(["trtllm-serve", "trtllm-build", "trtllm-bench"]) == []


def test_bench_and_multi_node_launch_add_their_commands_to_what_is_required():
    runtime = get_runtime("trtllm")
    assert runtime.required_commands(recipe()) == ["trtllm-serve"]
    benched = recipe(extra="validate:\n  trtllm_bench: {mode: latency}\n")
    assert runtime.required_commands(benched) == ["trtllm-serve", "trtllm-bench"]


def test_build_stage_fails_at_once_without_tensorrt_llm_and_writes_nothing(monkeypatch, tmp_path):
    from engineforge.stages.build import build as build_stage
    from engineforge.stages.build import build_key
    from engineforge.stages.context import RunContext
    from engineforge.tracking.mlflow_runs import TrackedRun

    without_trtllm(monkeypatch)
    monkeypatch.setattr(versions.importlib.util, "find_spec", lambda name: None)
    shard = StageResult(stage="shard", status="ran", key="k" * 64, path=str(tmp_path / "shard"),
                        outputs={"checkpoint_dir": "checkpoint", "hf_dir": str(tmp_path / "hf")})
    with pytest.raises(UserError, match="stage build \\(runtime trtllm-engine\\) needs TensorRT-LLM"):
        engine = recipe("trtllm-engine")
        runtime = get_runtime(engine.runtime)
        ctx = RunContext(runtime=runtime, store_root=str(tmp_path / "store"), mlflow_run=TrackedRun("", ""))
        build_stage(engine, shard, ctx, build_key(engine, shard, runtime))
    assert not any((tmp_path / "store").rglob("manifest.json"))


# --- launch, build argv, engine check ------------------------------------------------------------

def test_multi_node_layouts_start_under_mpirun_with_trtllm_llmapi_launch():
    argv = ["trtllm-serve", "/m", "--tp_size", "8", "--pp_size", "2"]
    # docs/source/commands/trtllm-serve/trtllm-serve.rst, "Multi-node Serving with Slurm"
    assert launched(argv, ParallelLayout(8, 2, 1), gpus_per_node=8) == ["mpirun", "-n", "16", "trtllm-llmapi-launch", *argv]
    assert launched(argv, ParallelLayout(4, 2, 1), gpus_per_node=8) == argv  # one node: no prefix (llm-api/index.md)


@pytest.mark.parametrize("world, gpus, expected", [(4, 8, 4), (4, 2, 2), (2, 0, 1), (1, 1, 1)])
def test_trtllm_build_workers_are_world_size_capped_by_visible_gpus(world, gpus, expected):
    assert build.workers(world, gpus) == expected


def test_build_argv_refuses_what_trtllm_build_cannot_do():
    spec = recipe("trtllm-engine", "build:\n  kv_cache_dtype: fp8\n").build
    with pytest.raises(UserError, match="kv_cache_quant_algo"):
        build.build_argv(spec, "/c", "/e", 1)
    spec = recipe("trtllm-engine", "build:\n  gemm_plugin: int4\n").build
    with pytest.raises(UserError, match="build.gemm_plugin int4"):
        build.build_argv(spec, "/c", "/e", 1)
    spec = recipe("trtllm-engine", "build:\n  gemm_plugin: null\n").build
    argv = build.build_argv(spec, "/c", "/e", 1)
    assert argv[argv.index("--gemm_plugin") + 1] == "disable"


def test_paths_that_could_read_as_options_are_refused():
    spec = recipe("trtllm-engine").build
    with pytest.raises(UserError, match="checkpoint directory"):
        build.build_argv(spec, "--evil", "/e", 1)
    with pytest.raises(UserError, match="engine directory"):
        build.build_argv(spec, "/c", "/e dir; rm -rf /", 1)


def engine_dir(tmp_path: Path, ranks: list[int], config: dict | None = None) -> Path:
    directory = tmp_path / "engine"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config or {"version": "1", "pretrained_config": {}, "build_config": {}}))
    for rank in ranks:
        (directory / f"rank{rank}.engine").write_bytes(b"x")
    return directory


def test_engine_dir_check_wants_config_and_exactly_one_engine_per_rank(tmp_path):
    assert build.check_engine_dir(engine_dir(tmp_path, [0, 1]), 2)["version"] == "1"
    with pytest.raises(StageFailed, match="missing rank1.engine"):
        build.check_engine_dir(engine_dir(tmp_path / "a", [0]), 2)
    with pytest.raises(StageFailed, match="unexpected rank2.engine"):
        build.check_engine_dir(engine_dir(tmp_path / "b", [0, 1, 2]), 2)
    with pytest.raises(StageFailed, match="lacks build_config"):
        build.check_engine_dir(engine_dir(tmp_path / "c", [0], {"version": "1", "pretrained_config": {}}), 1)


def test_pytorch_kv_cache_dtype_is_auto_or_fp8():
    assert kv_cache_config(recipe(extra="build:\n  kv_cache_dtype: fp8\n"))["dtype"] == "fp8"
    assert "dtype" not in kv_cache_config(recipe())
    with pytest.raises(UserError, match="takes only auto or fp8"):
        kv_cache_config(recipe(extra="build:\n  kv_cache_dtype: int8\n"))


# --- trtllm-bench report ---------------------------------------------------------------------------

def test_report_json_sections_map_onto_the_load_generator_names():
    # Structure of tensorrt_llm/bench/dataclasses/reporting.py ReportUtility.get_statistics_dict.
    stats = {"p50": 11.0, "p90": 12.0, "p95": 12.5, "p99": 13.0, "minimum": 10.0, "maximum": 14.0, "average": 11.5}
    report = {
        "request_info": {"num_requests": 32},
        "performance": {"total_latency_ms": 2500.0, "request_throughput_req_s": 12.8,
                        "system_output_throughput_tok_s": 1638.4, "system_total_throughput_tok_s": 3276.8,
                        "output_throughput_per_user_tok_s": 51.2, "output_throughput_per_gpu_tok_s": 819.2,
                        "request_latency_percentiles_ms": stats},
        "streaming_metrics": {"ttft_percentiles": {k: v / 10 for k, v in stats.items()}, "tpot_percentiles": stats},
    }
    figures = bench.parse_report(report)
    assert figures["trtllm_bench_output_tokens_per_s"] == report["performance"]["system_output_throughput_tok_s"]
    assert figures["trtllm_bench_duration_s"] == report["performance"]["total_latency_ms"] / 1000
    assert figures["trtllm_bench_e2e_ms_p99"] == stats["p99"] and figures["trtllm_bench_tpot_ms_mean"] == stats["average"]
    assert figures["trtllm_bench_ttft_ms_p50"] == stats["p50"] / 10
    assert figures["trtllm_bench_requests"] == 32
    assert not any(name.endswith(("p95", "minimum", "maximum")) for name in figures)


def test_report_without_streaming_or_p90_leaves_those_figures_out(tmp_path):
    report = {"performance": {"system_output_throughput_tok_s": 5.0, "request_latency_percentiles_ms":
                              {"p50": 1.0, "p95": 2.0, "p99": 3.0, "minimum": 0.5, "maximum": 4.0, "average": 1.5}}}
    figures = bench.parse_report(report)
    assert "trtllm_bench_e2e_ms_p90" not in figures and not any("ttft" in name for name in figures)
    (tmp_path / "r.json").write_text(json.dumps({"engine": {}}))
    with pytest.raises(StageFailed, match="is it a trtllm-bench report"):
        bench.read_report(tmp_path / "r.json")


# --- image pinning ---------------------------------------------------------------------------------

def test_serving_image_carries_the_tensorrt_llm_version_that_built():
    runtime = get_runtime("trtllm-engine")
    built = StageResult(stage="build", status="ran", outputs={"tensorrt_llm_version": "1.2.0"})
    assert runtime.image_base(recipe("trtllm-engine"), built) == "nvcr.io/nvidia/tensorrt-llm/release:1.2.0"
    pinned = recipe("trtllm-engine", "package:\n  base: nvcr.io/nvidia/tensorrt-llm/release:1.2.1\n")
    with pytest.raises(UserError, match="carries TensorRT-LLM 1.2.1, but the build used 1.2.0"):
        runtime.image_base(pinned, built)


def test_both_runtimes_build_and_serve_on_gpus_and_only_disaggregated_serving_ships_compose_files():
    for name in ("trtllm", "trtllm-engine"):
        runtime = get_runtime(name)
        assert runtime.builds_on_gpu and runtime.image_gpu
        assert runtime.image_base(recipe(name), None) == TRTLLM_RELEASE_IMAGE  # nothing built yet: the pinned one
        assert runtime.deployment_files(recipe(name), "img") == {}
    disaggregated = recipe("trtllm", "serve:\n  disaggregated: {context: {instances: 1}, generation: {instances: 1}}\n")
    files = get_runtime("trtllm").deployment_files(disaggregated, "registry/img@sha256:" + "a" * 64)
    assert sorted(files) == ["compose/compose.yaml", "compose/context_options.yaml", "compose/disagg_config.yaml",
                             "compose/generation_options.yaml"]
    assert "image: registry/img@sha256:" in files["compose/compose.yaml"]


def test_worker_image_is_from_the_pinned_release_image():
    from engineforge.packaging.base_image import TRTLLM_VERSION

    dockerfile = (REPO / "docker" / "worker.Dockerfile").read_text()
    assert f"ARG TRTLLM_IMAGE={TRTLLM_RELEASE_IMAGE}\n" in dockerfile and "FROM ${TRTLLM_IMAGE}\n" in dockerfile
    assert f"ARG TRTLLM_VERSION={TRTLLM_VERSION}\n" in dockerfile
    assert "ai.engineforge.tensorrt-llm-version=${TRTLLM_VERSION}" in dockerfile


# --- recipe rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("runtime, extra, message", [
    ("transformers", "validate:\n  trtllm_bench: {}\n", "validate.trtllm_bench needs runtime trtllm"),
    ("trtllm-engine", "serve:\n  disaggregated: {}\n", "serve.disaggregated needs runtime trtllm"),
    ("trtllm", "serve:\n  disaggregated: {context: {instances: 4, tp: 2}, generation: {tp: 2}}\n", "needs 10 GPUs"),
])
def test_recipe_refuses_tensorrt_llm_features_where_they_cannot_run(runtime, extra, message):
    with pytest.raises(RecipeError, match=message):
        recipe(runtime, extra)


# --- the doubles refuse flags TensorRT-LLM lacks ---------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["trtllm-serve", "/model", "--tp", "2"],  # trtllm-serve spells it --tp_size
    ["trtllm-serve", "/model", "--kv_cache_free_gpu_mem_fraction", "0.9"],  # trtllm-bench's spelling, not serve's
    ["trtllm-build", "--checkpoint_dir", "/c", "--auto_parallel", "2"],  # removed (PR #8329)
    ["trtllm-build", "--checkpoint_dir", "/c", "--tp_size", "2"],  # parallelism comes from the checkpoint
    ["trtllm-build", "--gemm_plugin", "int4"],
    ["trtllm-bench", "--model", "m", "latency", "--streaming"],  # only throughput has --streaming
    ["trtllm-bench", "--model", "m", "throughput", "--tp_size", "2"],
])
def test_doubles_reject_flags_tensorrt_llm_does_not_have(argv, monkeypatch):
    use_doubles(monkeypatch)
    done = subprocess.run([str(DOUBLES / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and ("unrecognized arguments" in done.stderr or "invalid choice" in done.stderr)


def test_serve_double_refuses_option_files_llmargs_would_refuse(monkeypatch, tmp_path):
    use_doubles(monkeypatch)
    options = tmp_path / "options.yaml"
    options.write_text("max_batch_size: 8\nkv_cache_config:\n  free_gpu_memory_fraction: 0.9\n  fraction: 0.5\n")
    done = subprocess.run([str(DOUBLES / "trtllm-serve"), str(tmp_path), "--extra_llm_api_options", str(options)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "kv_cache_config has no field(s) ['fraction']" in done.stderr
