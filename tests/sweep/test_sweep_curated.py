"""`sweep.curated`: NVIDIA's curated and database trtllm-serve configs as variants beside the sweep's own (issue 23).

The fixture is written here in the directory shape of TensorRT-LLM's examples/configs (curated/lookup.yaml and
curated/*.yaml; database/<org>/<model>/<GPU>/<isl><osl>_tp<N>_conc<C>.yaml; read from NVIDIA/TensorRT-LLM
examples/configs/database/database.py at 07500d4a0193e70626442166b156390fbf29d011): invented models and values,
none of NVIDIA's files. Nothing is served: expansion, dry runs and the definitions checks only."""

from pathlib import Path

import pytest
import yaml

from engineforge.errors import UserError
from engineforge.recipe.file import parse_recipe
from engineforge.stages.dry_run import dry_run
from engineforge.sweep.expand import expand
from engineforge.sweep.plan import plan_sweep
from engineforge.trtllm.definitions import problems
from engineforge.trtllm.options import llm_api_options

MODEL = "example-org/Example-8B"


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def configs(tmp_path) -> Path:
    root = tmp_path / "examples" / "configs"
    write(root / "curated" / "lookup.yaml", [
        {"model": MODEL, "arch": "LlamaForCausalLM", "config_path": "examples/configs/curated/example-8b.yaml",
         "scenario": "Max Throughput", "gpu_compatibility": "Any"},
        {"model": MODEL, "arch": "LlamaForCausalLM", "config_path": "examples/configs/curated/example-8b-disagg.yaml",
         "scenario": "Disaggregated Prefill", "gpu_compatibility": "Any", "disagg": True},
        {"model": MODEL, "arch": "LlamaForCausalLM", "config_path": "examples/configs/curated/example-8b-blackwell.yaml",
         "scenario": "Min Latency", "gpu_compatibility": "B200, GB200"},
        {"model": "big-org/Big-1T", "arch": "LlamaForCausalLM", "config_path": "examples/configs/curated/big.yaml",
         "scenario": "Max Throughput", "gpu_compatibility": "B200, GB200"},
    ])
    write(root / "curated" / "example-8b.yaml", {
        "max_batch_size": 64, "max_num_tokens": 2048, "trust_remote_code": True, "enable_chunked_prefill": True,
        "kv_cache_config": {"dtype": "fp8", "enable_block_reuse": False},
        "cuda_graph_config": {"enable_padding": True, "max_batch_size": 64}})
    write(root / "curated" / "example-8b-disagg.yaml", {"max_batch_size": 8})
    write(root / "curated" / "example-8b-blackwell.yaml", {"max_batch_size": 4})
    h200 = root / "database" / MODEL / "H200"
    write(h200 / "1k1k_tp1_conc8.yaml", {"max_batch_size": 8, "stream_interval": 10,
                                         "kv_cache_config": {"free_gpu_memory_fraction": 0.8}})
    write(h200 / "1k1k_tp2_conc32.yaml", {"max_batch_size": 32, "tensor_parallel_size": 2,
                                          "scheduler_config": {"capacity_scheduler_policy": "MAX_UTILIZATION"}})
    write(h200 / "8k1k_tp1_conc4.yaml", {"max_batch_size": 4, "max_seq_len": 512})
    write(root / "database" / MODEL / "B200" / "1k1k_tp1_conc64.yaml", {"max_batch_size": 64})
    write(root / "curated" / "big.yaml", {"max_batch_size": 64})
    write(root / "database" / "big-org" / "Big-1T" / "B200" / "1k1k_tp8_conc64.yaml", {"max_batch_size": 64})
    return root


def recipe(configs: Path, curated: str = "", runtime: str = "trtllm", source: str = "synthetic:tiny-llama",
           version: str = "1.3.0rc30"):
    curated = curated or f"    configs: {configs}\n    gpu: H200\n    model: {MODEL}\n"
    return parse_recipe(f"name: cur\nmodel:\n  source: {source}\nruntime: {runtime}\ntrtllm:\n  version: {version}\n"
                        "sweep:\n  layouts:\n    - {tensor: 1}\n  load:\n    - {concurrency: 4}\n"
                        f"  curated:\n{curated}", "cur.yaml")


def test_each_curated_and_database_config_for_the_model_and_gpu_is_a_variant_beside_the_layouts(configs):
    variants = {v.name: v for v in expand(recipe(configs))}
    assert list(variants) == ["tp1-c4", "curated-example-8b-c4", "db-1k1k-tp1-conc8-c4", "db-1k1k-tp2-conc32-c4",
                              "db-8k1k-tp1-conc4-c4"]  # not the disaggregated, Blackwell-only, other model's or B200 ones
    curated = variants["curated-example-8b-c4"].recipe
    assert curated.build.max_batch_size == 64 and curated.build.max_num_tokens == 2048
    assert curated.build.kv_cache_dtype == "fp8" and curated.model.trust_remote_code is False  # the recipe's, kept
    assert curated.validate_.concurrency == 4
    options = llm_api_options(curated)
    assert options["enable_chunked_prefill"] is True and options["cuda_graph_config"]["enable_padding"] is True
    assert options["kv_cache_config"] == {"free_gpu_memory_fraction": 0.9, "dtype": "fp8", "enable_block_reuse": False}
    assert variants["db-1k1k-tp2-conc32-c4"].recipe.parallel.tensor == 2
    assert variants["db-1k1k-tp1-conc8-c4"].recipe.serve.kv_cache_free_gpu_memory_fraction == 0.8
    assert llm_api_options(variants["db-1k1k-tp1-conc8-c4"].recipe)["stream_interval"] == 10


def test_the_curated_sweep_plans_dry_runs_and_its_files_are_defined_by_the_version(configs):
    planned = plan_sweep(recipe(configs), configs.parent)  # the planner checks every variant's layout
    assert len(planned.variants) == 5
    for variant in planned.variants:
        plan = dry_run(variant.recipe)
        files = {name: yaml.safe_load(text) for stage in plan["stages"] for name, text in stage["files"].items()
                 if name.endswith("extra_llm_api_options.yaml")}
        assert files and all(problems(options, "1.3.0rc30") == [] for options in files.values()), variant.name


def test_database_configs_can_be_narrowed_to_the_workload(configs):
    narrowed = f"    configs: {configs}\n    gpu: H200\n    model: {MODEL}\n    isl: 8192\n    osl: 1024\n"
    assert [v.name for v in expand(recipe(configs, narrowed))] == ["tp1-c4", "curated-example-8b-c4", "db-8k1k-tp1-conc4-c4"]


def test_a_relative_path_is_read_from_the_recipe_files_directory(configs):
    relative = f"    configs: examples/configs\n    gpu: H200\n    model: {MODEL}\n"
    assert len(expand(recipe(configs, relative), base_dir=configs.parent.parent)) == 5


@pytest.mark.parametrize(("curated", "message"), [
    ("    configs: {missing}\n    gpu: H200\n    model: " + MODEL + "\n",
     "sweep.curated.configs: {missing}: no such directory; give a checkout of TensorRT-LLM's examples/configs"),
    ("    configs: {empty}\n    gpu: H200\n    model: " + MODEL + "\n",
     "sweep.curated.configs: {empty} has neither curated/ nor database/"),
    ("    configs: {configs}\n    gpu: H200\n    model: big-org/Big-1T\n",
     "sweep.curated: no curated or database config for big-org/Big-1T on H200 in {configs} "
     "(database GPUs for it: B200)"),
    ("    configs: {configs}\n    gpu: H200\n    model: nobody/Nothing\n",
     "sweep.curated: no curated or database config for nobody/Nothing on H200 in {configs} "
     "(the model is in neither list; set sweep.curated.model)"),
    ("    configs: {configs}\n    gpu: H200\n",
     "sweep.curated.model: model.source is synthetic:tiny-llama, not a hub model; name the model as NVIDIA's configs do"),
])
def test_a_missing_path_or_no_config_for_the_model_and_gpu_is_one_line(configs, tmp_path, curated, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "configs": configs}
    with pytest.raises(UserError) as error:
        expand(recipe(configs, curated.format(**paths)))
    assert str(error.value).startswith(message.format(**paths)) and "\n" not in str(error.value)


def test_curated_configs_are_for_the_pytorch_runtime_only(configs):
    with pytest.raises(UserError, match="^sweep.curated: NVIDIA's configs are trtllm-serve options for the PyTorch "
                       "backend; runtime is transformers, use runtime: trtllm$"):
        expand(parse_recipe(f"name: cur\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n"
                            f"sweep:\n  curated:\n    configs: {configs}\n    gpu: H200\n    model: {MODEL}\n", "cur.yaml"))


def test_a_config_key_the_version_does_not_define_names_the_variant(configs):
    write(configs / "database" / MODEL / "H200" / "1k1k_tp1_conc8.yaml", {"no_such_option": 1})
    with pytest.raises(UserError, match="^sweep variant db-1k1k-tp1-conc8-c4: trtllm.llm_api.no_such_option: "
                       "TensorRT-LLM 1.3.0rc30 has no such LLM API option"):
        expand(recipe(configs))


def test_validate_and_run_refuse_a_missing_path_in_one_line_naming_its_line(tmp_path):
    from engineforge.recipe_checks import check_recipe_text
    from engineforge.recipe.file import RecipeError

    text = (f"name: cur\nmodel:\n  source: synthetic:tiny-llama\nruntime: trtllm\nsweep:\n  curated:\n"
            f"    configs: nowhere\n    gpu: H200\n    model: {MODEL}\n")
    with pytest.raises(RecipeError) as error:
        check_recipe_text(text, "cur.yaml", tmp_path)
    assert error.value.problems == [f"cur.yaml:7: sweep.curated.configs: {tmp_path / 'nowhere'}: no such directory; give "
                                    "a checkout of TensorRT-LLM's examples/configs (it holds curated/ and database/)"]
