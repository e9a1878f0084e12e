"""Check LLM API options against the target TensorRT-LLM version's own definitions, before any work.

Each accepted version has a table in definitions/<version>.json: a JSON Schema (draft 2020-12) of
TorchLlmArgs as NVIDIA defines it for that version, with its source and how it was made (NVIDIA's
generated schema, tensorrt_llm/schemas/trtllm-serve-config.schema.json, where the version line ships
one; the pydantic classes of tensorrt_llm/llmapi/llm_args.py at the release tag for 1.2.x). Like
NVIDIA's schema, the root admits any key, so unknown root keys are checked here; nested configs are
closed (KvCacheConfig etc. forbid extras upstream).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from engineforge.recipe.trtllm_section import trtllm_version


@lru_cache(maxsize=None)
def definitions(version: str) -> dict[str, Any]:
    name = f"{trtllm_version(version).definitions}.json"
    return json.loads(resources.files("engineforge.trtllm").joinpath("definitions", name).read_text())


@lru_cache(maxsize=None)
def disagg_definitions(version: str) -> dict[str, Any] | None:
    """The definition `trtllm-serve disaggregated -c` files are checked against for `version`, if one was read:
    NVIDIA's trtllm-serve-disagg-config.schema.json (root and server blocks closed)."""
    name = trtllm_version(version).disagg_definitions
    if name is None:
        return None
    return json.loads(resources.files("engineforge.trtllm").joinpath("definitions", f"{name}.json").read_text())


def disagg_problems(config: dict[str, Any], version: str) -> list[str]:
    """One line per key or value of a disagg_config.yaml that the definition for `version` refuses; [] without one."""
    from jsonschema import Draft202012Validator

    table = disagg_definitions(version)
    if table is None:
        return []
    found = []
    for error in Draft202012Validator(table["schema"]).iter_errors(config):
        found.extend(f"{where}: {message} (TensorRT-LLM {version} disaggregated config)"
                     for where, message in _described(_deepest(error)))
    return found


def problems(options: dict[str, Any], version: str) -> list[str]:
    """One line per key or value TensorRT-LLM `version` does not define: `path: message`."""
    from jsonschema import Draft202012Validator

    schema = definitions(version)["schema"]
    known = schema["properties"]
    found = [f"{key}: TensorRT-LLM {version} has no such LLM API option" for key in options if key not in known]
    validator = Draft202012Validator(schema)
    for error in validator.iter_errors({k: v for k, v in options.items() if k in known}):
        found.extend(f"{where}: {message} (TensorRT-LLM {version})" for where, message in _described(_deepest(error)))
    return found


def _deepest(error):
    """`X | None` fails as a whole (anyOf): the member that got furthest says what is wrong."""
    while error.validator == "anyOf" and error.context:
        error = max(error.context, key=lambda sub: len(sub.absolute_path))
    return error


def _described(error) -> list[tuple[str, str]]:
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return [(f"{where}.{key}" if where else key, "no such option") for key in extra]
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return [(where, f"{error.instance!r} is not one of {', '.join(map(str, allowed))}")]
    return [(where or "(options)", error.message)]
