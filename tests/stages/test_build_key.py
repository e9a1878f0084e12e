"""stages.build.build_key: what a runtime's build depends on, and nothing it does not."""

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stage_result import StageResult
from engineforge.stages.build import build_key

MODEL = StageResult(stage="download", status="ran", key="m" * 64, outputs={})


def recipe(serve=""):
    return parse_recipe(f"name: pinned\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n{serve}", "r.yaml")


def transformers_key(monkeypatch, parsed):
    runtime = get_runtime("transformers")
    monkeypatch.setattr(runtime, "key_versions", lambda: {"transformers": "4.0.0", "fakequant_server": "0" * 16})
    return build_key(parsed, MODEL, runtime)


def test_a_transformers_key_is_the_one_computed_before_runtimes_named_their_build_inputs(monkeypatch):
    # Computed at 052aeb2, before build_key_inputs: existing store entries stay hits.
    pinned = "3a1e93bf0b669fe8aa50583a5af8420d2843638ee45ad81f1f633fd5818be505"
    assert transformers_key(monkeypatch, recipe("serve:\n  port: 8123\n")) == pinned


def test_serve_settings_do_not_enter_a_transformers_key(monkeypatch):
    keys = {transformers_key(monkeypatch, recipe(serve)) for serve in
            ("", "serve:\n  kv_cache_free_gpu_memory_fraction: 0.5\n", "serve:\n  port: 9000\n")}
    assert len(keys) == 1
