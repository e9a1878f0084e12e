"""Contract tests: every command and file the TensorRT-LLM runtimes generate for the example recipes,
checked against the flag sets and formats of ../shared/trtllm-facts.md (and, where the facts are
silent, TensorRT-LLM's source; each set below names where it comes from). The sets are written here
from those sources, independently of engineforge's generators.

Real TensorRT-LLM is not run; these check the contract, tests/flows/test_model_to_deployment_trtllm.py runs the flow.
"""

import json
from pathlib import Path

import pytest
import yaml

from engineforge.recipe.file import load_recipe
from engineforge.stages.dry_run import dry_run

REPO = Path(__file__).resolve().parents[3]
RECIPES = sorted((REPO / "recipes").glob("trtllm*.yaml"))

# trtllm-facts.md, "trtllm-serve" (tensorrt_llm/commands/serve.py); --trust_remote_code takes no value.
SERVE_FLAGS = {"--backend", "--tokenizer", "--host", "--port", "--max_batch_size", "--max_num_tokens", "--max_seq_len",
               "--tp_size", "--pp_size", "--ep_size", "--gpus_per_node", "--kv_cache_free_gpu_memory_fraction",
               "--extra_llm_api_options", "--trust_remote_code",
               "--config"}  # facts, "After 1.2.1": the preferred name of --extra_llm_api_options (PR 9104)
# facts, "After 1.2.1": 1.2.1 recipes keep --extra_llm_api_options, the 1.3 release candidate takes --config.
OPTIONS_FLAG = {"1.2.1": "--extra_llm_api_options", "1.3.0rc30": "--config"}
SERVE_SWITCHES = {"--trust_remote_code"}
# trtllm-facts.md, "trtllm-serve": `trtllm-serve disaggregated -c disagg_config.yaml`.
DISAGG_FRONT = ["trtllm-serve", "disaggregated", "-c"]
# trtllm-facts.md, "trtllm-build" (tensorrt_llm/commands/build.py, tensorrt_llm/plugin/plugin.py).
BUILD_FLAGS = {"--checkpoint_dir", "--output_dir", "--max_batch_size", "--max_input_len", "--max_seq_len",
               "--max_num_tokens", "--opt_num_tokens", "--max_beam_width", "--kv_cache_type", "--workers",
               "--gemm_plugin", "--gpt_attention_plugin", "--use_paged_context_fmha", "--multiple_profiles",
               "--context_fmha", "--remove_input_padding", "--use_fused_mlp", "--reduce_fusion", "--tokens_per_block",
               "--weight_streaming", "--strip_plan", "--fast_build", "--dry_run", "--monitor_memory", "--lora_dir"}
# trtllm-facts.md, "trtllm-build": "No parallelism flags: parallelism is fixed by the checkpoint's mapping";
# --auto_parallel was removed (PR #8329).
PARALLEL_FLAGS = {"--tp_size", "--pp_size", "--tp", "--pp", "--world_size", "--auto_parallel"}
# trtllm-facts.md, "trtllm-bench": `trtllm-bench --model NAME [--model_path DIR] [--workspace DIR] throughput|latency`.
BENCH_GROUP_FLAGS = {"--model", "--model_path", "--workspace"}
BENCH_THROUGHPUT_FLAGS = {"--dataset", "--backend", "--engine_dir", "--extra_llm_api_options", "--max_batch_size",
                          "--max_num_tokens", "--max_seq_len", "--kv_cache_free_gpu_mem_fraction", "--tp", "--pp", "--ep",
                          "--concurrency", "--num_requests", "--warmup", "--streaming", "--report_json"}
# tensorrt_llm/bench/benchmark/low_latency.py (not in the facts): latency has no --max_batch_size,
# --max_num_tokens, --streaming or --extra_llm_api_options.
BENCH_LATENCY_FLAGS = BENCH_THROUGHPUT_FLAGS - {"--max_batch_size", "--max_num_tokens", "--streaming",
                                                "--extra_llm_api_options"}
BENCH_SWITCHES = {"--streaming"}
# LLM API options (tensorrt_llm/llmapi/llm_args.py LlmArgs; trtllm-facts.md: free_gpu_memory_fraction lives in
# kv_cache_config, cache_transceiver_config {backend, max_tokens_in_buffer}); disable_overlap_scheduler for
# context servers: examples/disaggregated/README.md.
OPTION_KEYS = {"max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens", "dtype", "kv_cache_config",
               "cache_transceiver_config", "disable_overlap_scheduler"}
KV_CACHE_KEYS = {"free_gpu_memory_fraction", "dtype"}
TRANSCEIVER_BACKENDS = {"UCX", "NIXL", "DEFAULT"}
# trtllm-facts.md, "trtllm-serve": disagg_config.yaml keys.
DISAGG_CONFIG_KEYS = {"hostname", "port", "backend", "context_servers", "generation_servers"}


@pytest.fixture(scope="module")
def plans():
    """Each example recipe's dry run, as a run of this engineforge produces it (no golden involved)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("engineforge.planner.planner.detect_gpus", lambda: None)
        patch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        return {recipe.stem: (load_recipe(recipe), dry_run(load_recipe(recipe), recipe.parent)) for recipe in RECIPES}


def commands(planned: dict) -> list[list[str]]:
    return [c["argv"] for stage in planned["stages"] for c in stage["commands"]]


def files(planned: dict) -> dict[str, str]:
    return {name: text for stage in planned["stages"] for name, text in stage["files"].items()}


def flags_and_values(argv: list[str], switches: set[str]) -> dict[str, str | None]:
    """--flag value pairs after the positional words; a switch takes no value."""
    out, index = {}, next(i for i, word in enumerate(argv) if word.startswith("--"))
    while index < len(argv):
        flag = argv[index]
        assert flag.startswith("--"), f"{flag!r} where a flag was expected in {argv}"
        if flag in switches:
            out[flag], index = None, index + 1
        else:
            out[flag], index = argv[index + 1], index + 2
    return out


def serve_argv(argv: list[str]) -> list[str]:
    return argv[argv.index("trtllm-serve"):]


@pytest.mark.parametrize("name", [r.stem for r in RECIPES])
def test_trtllm_serve_command_lines_use_only_its_flags(plans, name):
    recipe, planned = plans[name]
    serves = [a for a in commands(planned) if "trtllm-serve" in a and a[1:2] != ["disaggregated"]]
    assert serves
    for argv in serves:
        args = flags_and_values(serve_argv(argv), SERVE_SWITCHES)
        assert set(args) <= SERVE_FLAGS, set(args) - SERVE_FLAGS
        assert args["--backend"] in {"pytorch", "tensorrt"}
        if recipe.runtime == "trtllm-engine":  # facts: engines are served with --backend tensorrt --tokenizer
            assert args["--backend"] == "tensorrt" and args["--tokenizer"].endswith("/tokenizer")
        else:
            assert args["--backend"] == "pytorch" and args[OPTIONS_FLAG[recipe.trtllm.version]].endswith(".yaml")
            assert len({"--config", "--extra_llm_api_options"} & set(args)) == 1
        assert int(args["--tp_size"]) * int(args["--pp_size"]) <= recipe.parallel.gpus_per_node
        # One node: no mpirun prefix (docs/source/llm-api/index.md, single-node multi-GPU).
        assert argv[0] == "trtllm-serve"


@pytest.mark.parametrize("name", [r.stem for r in RECIPES if "engine" in r.stem])
def test_trtllm_build_command_line_uses_only_its_flags_and_no_parallelism(plans, name):
    recipe, planned = plans[name]
    (argv,) = [a for a in commands(planned) if a[0] == "trtllm-build"]
    args = flags_and_values(argv, set())
    assert set(args) <= BUILD_FLAGS and not set(args) & PARALLEL_FLAGS
    assert args["--use_paged_context_fmha"] in {"enable", "disable"} and args["--multiple_profiles"] in {"enable", "disable"}
    assert int(args["--max_input_len"]) <= int(args["--max_seq_len"])
    world = recipe.parallel.tensor * recipe.parallel.pipeline
    assert 1 <= int(args["--workers"]) <= world
    build = next(s for s in planned["stages"] if s["stage"] == "build")
    # facts: the engine directory holds config.json plus one rank{N}.engine per rank
    assert build["notes"]["checks"] == [f"{args['--output_dir']}/config.json",
                                        *(f"{args['--output_dir']}/rank{n}.engine" for n in range(world))]


@pytest.mark.parametrize("name", [r.stem for r in RECIPES if "engine" in r.stem])
def test_checkpoint_the_engine_build_reads_has_one_rank_file_per_rank(plans, name):
    recipe, planned = plans[name]
    shard = next(s for s in planned["stages"] if s["stage"] == "shard")
    world = recipe.parallel.tensor * recipe.parallel.pipeline
    # facts, "TensorRT-LLM checkpoint": one config.json and one rank{N}.safetensors per global rank
    assert [Path(p).name for p in shard["notes"]["writes"]] == ["config.json", *(f"rank{n}.safetensors" for n in range(world))]


@pytest.mark.parametrize("name", [r.stem for r in RECIPES])
def test_llm_api_option_files_hold_only_llmargs_fields(plans, name):
    recipe, planned = plans[name]
    options = {n: yaml.safe_load(t) for n, t in files(planned).items() if n.endswith("options.yaml")}
    if recipe.runtime == "trtllm-engine":
        assert options == {}  # engines carry their limits; no options file
        return
    assert options
    chosen = recipe.trtllm.options()  # trtllm.llm_api: the recipe's own LLM API options, added as given
    for name_, data in options.items():
        assert set(data) <= OPTION_KEYS | set(chosen), (name_, set(data) - OPTION_KEYS)
        assert all(data[key] == value or isinstance(value, dict) for key, value in chosen.items())
        assert set(data["kv_cache_config"]) <= KV_CACHE_KEYS | set(chosen.get("kv_cache_config", {}))
        assert 0 < data["kv_cache_config"]["free_gpu_memory_fraction"] <= 1
        assert data["max_input_len"] <= data["max_seq_len"]
        assert data["kv_cache_config"].get("dtype", "auto") in {"auto", "fp8"}  # model_engine.py _VALID_KV_CACHE_DTYPES


def test_disaggregated_files_and_commands_follow_the_disaggregated_example(plans):
    recipe, planned = plans["trtllm-llama-disagg"]
    texts = files(planned)
    for name in [n for n in texts if n.endswith("disagg_config.yaml")]:
        config = yaml.safe_load(texts[name])
        assert set(config) == DISAGG_CONFIG_KEYS and config["backend"] == "pytorch"
        for role in ("context_servers", "generation_servers"):
            assert config[role]["num_instances"] == len(config[role]["urls"]) == 1
            assert all(len(url.rsplit(":", 1)) == 2 for url in config[role]["urls"])
    for name in [n for n in texts if n.endswith(("context_options.yaml", "generation_options.yaml"))]:
        data = yaml.safe_load(texts[name])
        transceiver = data["cache_transceiver_config"]
        assert set(transceiver) == {"backend", "max_tokens_in_buffer"} and transceiver["backend"] in TRANSCEIVER_BACKENDS
        assert data.get("disable_overlap_scheduler", False) is name.endswith("context_options.yaml")
    validate = next(s for s in planned["stages"] if s["stage"] == "validate")
    roles = [c["role"] for c in validate["commands"]]
    assert roles == ["context-0", "generation-0", "front"]  # workers first, the front last
    assert validate["commands"][-1]["argv"][:3] == DISAGG_FRONT
    gpus = [c["env"]["CUDA_VISIBLE_DEVICES"] for c in validate["commands"][:2]]
    assert gpus == ["0", "1"]  # each worker its own GPU (examples/disaggregated/README.md)
    launch = json.loads(next(t for n, t in texts.items() if n.endswith("launch.json")))
    assert [c["role"] for c in launch] == roles
    compose = yaml.safe_load(next(t for n, t in texts.items() if n.endswith("compose/compose.yaml")))
    assert set(compose["services"]) == {"context-0", "generation-0", "front"}


@pytest.mark.parametrize("name", [r.stem for r in RECIPES if "trtllm_bench" in r.read_text()])
def test_trtllm_bench_command_line_and_dataset(plans, name):
    recipe, planned = plans[name]
    (argv,) = [a for a in commands(planned) if a[0] == "trtllm-bench"]
    mode = recipe.validate_.trtllm_bench.mode
    position = argv.index(mode)
    group, sub = flags_and_values(argv[:position], set()), flags_and_values(argv[position + 1:], BENCH_SWITCHES)
    assert set(group) <= BENCH_GROUP_FLAGS and "--model" in group
    allowed = BENCH_THROUGHPUT_FLAGS if mode == "throughput" else BENCH_LATENCY_FLAGS
    assert set(sub) <= allowed, set(sub) - allowed
    if sub["--backend"] == "tensorrt":
        assert "--max_seq_len" not in sub  # throughput.py: "max_seq_len is not a runtime parameter for C++ backend"
    dataset = files(planned)[sub["--dataset"]]
    lines = [json.loads(line) for line in dataset.splitlines()]
    assert len(lines) == int(sub["--num_requests"])
    for line in lines:  # facts: task_id, prompt or input_ids (not both), output_tokens
        assert {"task_id", "output_tokens"} <= set(line) and ("prompt" in line) != ("input_ids" in line)


@pytest.mark.parametrize("name", [r.stem for r in RECIPES])
def test_serving_image_is_the_release_of_the_recipe_tensorrt_llm_version(plans, name):
    recipe, planned = plans[name]
    package = next(s for s in planned["stages"] if s["stage"] == "package")
    # facts, "Packaging": nvcr.io/nvidia/tensorrt-llm/release:<version>
    assert package["notes"]["base_image"] == f"nvcr.io/nvidia/tensorrt-llm/release:{recipe.trtllm.version}"
