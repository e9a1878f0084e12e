"""What the trtllm-engine build records (issue 23): no serve argv. Serve settings stay out of an engine's
build key, so an argv recorded at build time would go stale after a port or KV-fraction change; the
package stage and the dry run take the entrypoint from the recipe instead. The build runs through the
trtllm-build TEST DOUBLE (TensorRT-LLM cannot be installed here)."""

import re
from pathlib import Path

from trtllm_helpers import use_doubles

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stage_result import StageResult
from engineforge.stages.build import build_key
from engineforge.stages.context import RunContext
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.stages.dry_run import dry_run
from engineforge.stages.shard import shard, shard_key

REPO = Path(__file__).resolve().parents[3]


def engine_recipe(extra: str = ""):
    return parse_recipe(f"name: e\nmodel: {{source: synthetic:e, dtype: float32}}\nruntime: trtllm-engine\n{extra}", "e.yaml")


def test_the_engine_build_through_the_trtllm_build_double_records_no_serve_argv(tiny_model_dir, tmp_path, monkeypatch):
    use_doubles(monkeypatch)
    recipe = engine_recipe()
    runtime = get_runtime("trtllm-engine")
    ctx = RunContext(runtime=runtime, store_root=str(tmp_path / "store"), mlflow_run=TrackedRun("", ""))
    model = StageResult(stage="download", status="ran", key="m" * 64, path=str(tiny_model_dir.parent),
                        outputs={"model_dir": tiny_model_dir.name})
    sharded = shard(recipe, model, ctx, shard_key(recipe, model))
    built = runtime.build(recipe, sharded, tmp_path / "build")
    assert "serve_argv" not in built.outputs
    assert {"served_dir", "engine_dir", "tokenizer_dir", "trtllm_build_argv", "tensorrt_llm_version"} <= set(built.outputs)


def test_no_code_reads_a_serve_argv_build_output():
    reads = re.compile(r"""(outputs\s*(\[|\.get\()|\.file\()\s*["']serve_argv["']""")
    found = [f"{path.relative_to(REPO)}:{number}" for path in sorted((REPO / "engineforge").rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if reads.search(line)]
    assert found == []


def test_an_engine_entrypoint_follows_the_recipe_while_its_build_is_reused():
    model = StageResult(stage="shard", status="ran", key="s" * 64, outputs={})
    runtime = get_runtime("trtllm-engine")
    moved = engine_recipe("serve:\n  port: 9100\n")
    assert build_key(moved, model, runtime) == build_key(engine_recipe(), model, runtime)
    package = next(stage for stage in dry_run(moved)["stages"] if stage["stage"] == "package")
    entrypoint = package["commands"][0]["argv"]
    assert entrypoint[entrypoint.index("--port") + 1] == "9100"
