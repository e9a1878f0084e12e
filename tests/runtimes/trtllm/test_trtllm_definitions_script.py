"""scripts/trtllm_definitions.py on small checkouts written here in TensorRT-LLM's layout (the real
source cannot be brought onto these machines: the committed tables were transcribed, see their `method`)."""

import importlib.util
import json
from pathlib import Path

from jsonschema import Draft202012Validator

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "trtllm_definitions.py"
spec = importlib.util.spec_from_file_location("trtllm_definitions", SCRIPT)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

LLM_ARGS = '''
class StrictBaseModel: pass
class KvCacheConfig(StrictBaseModel):
    enable_block_reuse: bool = True
    dtype: str = "auto"
    free_gpu_memory_fraction: Optional[float] = 0.9
class BaseLlmArgs(StrictBaseModel):
    max_batch_size: Optional[int] = None
    kv_cache_config: KvCacheConfig = None
    _private: int = 0
class TorchLlmArgs(BaseLlmArgs):
    sampler_type: Literal["auto", "TorchSampler", "TRTLLMSampler"] = "auto"
    enable_chunked_prefill: bool = False
'''


def test_llm_args_classes_become_a_schema_of_the_root_options_and_closed_nested_configs(tmp_path):
    (tmp_path / "tensorrt_llm/llmapi").mkdir(parents=True)
    (tmp_path / "tensorrt_llm/llmapi/llm_args.py").write_text(LLM_ARGS)
    table = script.definitions(tmp_path, "1.2.1", "a" * 40)
    schema = table["schema"]
    Draft202012Validator.check_schema(schema)
    assert list(schema["properties"]) == ["max_batch_size", "kv_cache_config", "sampler_type", "enable_chunked_prefill"]
    assert schema["properties"]["sampler_type"] == {"enum": ["auto", "TorchSampler", "TRTLLMSampler"]}
    validator = Draft202012Validator(schema)
    assert not list(validator.iter_errors({"kv_cache_config": {"enable_block_reuse": False}, "max_batch_size": None}))
    assert [e.validator for e in validator.iter_errors({"kv_cache_config": {"reuse": 1}})] == ["anyOf"]
    assert "tensorrt_llm/llmapi/llm_args.py at commit aaaa" in table["source"]


def test_a_shipped_schema_is_kept_without_its_prose(tmp_path):
    (tmp_path / "tensorrt_llm/schemas").mkdir(parents=True)
    shipped = {"$comment": "generated", "title": "TensorRT-LLM x", "type": "object", "properties": {
        "title": {"type": "string", "description": "an option named title"},
        "max_batch_size": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 2048, "description": "d", "status": "beta"}}}
    (tmp_path / script.SCHEMA).write_text(json.dumps(shipped))
    schema = script.definitions(tmp_path, "1.3.0rc30", "b" * 40)["schema"]
    assert schema == {"type": "object", "properties": {
        "title": {"type": "string"}, "max_batch_size": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}
