from pathlib import Path

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes.transformers import TransformersRuntime

RECIPE = """name: t
model: {source: "synthetic:t", dtype: bfloat16}
build: {max_batch_size: 4, max_input_len: 128, max_seq_len: 1000}
serve: {kv_cache_free_gpu_memory_fraction: 0.5}
"""


def argv(device: str, continuous_batching: bool = True) -> list[str]:
    text = RECIPE.replace("serve: {", f"serve: {{continuous_batching: {str(continuous_batching).lower()}, ")
    return TransformersRuntime().serve_argv(parse_recipe(text), Path("/m"), "127.0.0.1", 8123, device)


def test_cpu_kv_cache_is_sized_from_the_build_limits_not_host_memory():
    line = argv("cpu")
    assert line[:9] == ["transformers", "serve", "/m", "--host", "127.0.0.1", "--port", "8123", "--device", "cpu"]
    assert line[line.index("--dtype") + 1] == "bfloat16"
    # 4 sequences x 1000 tokens in pages of 256 tokens -> 16 pages
    assert line[-3:] == ["--continuous-batching", "--cb-num-blocks", "16"]


def test_gpu_kv_cache_takes_the_recipe_memory_fraction():
    assert argv("cuda")[-3:] == ["--continuous-batching", "--cb-max-memory-percent", "0.5"]


def test_without_continuous_batching_no_cache_flags():
    assert argv("cpu", continuous_batching=False)[-1] == "--no-continuous-batching"


def test_image_is_the_engineforge_base_unless_the_recipe_names_one_and_ships_alone():
    from engineforge.packaging.base_image import DEFAULT_BASE

    runtime = TransformersRuntime()
    plain, based = parse_recipe(RECIPE), parse_recipe(RECIPE + "package: {base: debian:12}\n")
    assert (runtime.image_base(plain, None), runtime.image_base(based, None)) == (DEFAULT_BASE.tag, "debian:12")
    assert runtime.deployment_files(plain, "img") == {} and not runtime.image_gpu and not runtime.builds_on_gpu


def test_a_quantized_image_installs_modelopt_and_its_server_needs_no_engineforge(tmp_path):
    import subprocess
    import sys

    from engineforge.quantize.serve import SERVER_FILE, SERVER_SCRIPT, copy_server
    from engineforge.versions import package_version

    runtime = TransformersRuntime()
    plain, quantized = parse_recipe(RECIPE), parse_recipe(RECIPE + "quantize: {format: fp8}\n")
    modelopt = [f"nvidia-modelopt=={package_version('nvidia-modelopt')}", f"requests=={package_version('requests')}"]
    assert not set(modelopt) & set(runtime.image_requirements(plain))
    assert runtime.image_requirements(quantized) == [*runtime.image_requirements(plain), *modelopt]
    assert runtime.serve_argv(quantized, Path("/m"), "0.0.0.0", 8000, "cpu")[:3] == ["python", f"/m/{SERVER_FILE}", "/m"]
    assert runtime.serve_argv(plain, Path("/m"), "0.0.0.0", 8000, "cpu")[:3] == ["transformers", "serve", "/m"]
    assert "engineforge" not in SERVER_SCRIPT.read_text().split('"""')[2]  # the image has transformers and ModelOpt
    copy_server(tmp_path)  # run from a directory of its own, as in the image
    shown = subprocess.run([sys.executable, str(tmp_path / SERVER_FILE), "--help"], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "--continuous-batching" in shown.stdout  # `transformers serve`'s own help
