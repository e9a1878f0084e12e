"""The lock file: what a run actually used, enough to reproduce it.

`core` (model revision and file hashes, recipe hash, stage keys, tool versions, GPU, and where the
tracking server holds the run's logged entries with their MANIFEST.json digests) is known before
packaging and its hash is stamped on the image; the image section is added after.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from engineforge.recipe.schema import Recipe
from engineforge.recipe.file import recipe_hash
from engineforge.stage_result import StageResult
from engineforge.versions import installed_packages, tool_versions

LOCK_FILE = "engineforge.lock.json"
AFTER_IMAGE = ("package", "register")  # stages whose keys the lock records but the image label cannot hash


def lock_core(recipe: Recipe, results: dict[str, StageResult], parallel_plan: dict[str, Any],
              logged: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """`logged`: stage -> {"uri": runs:/..., "manifest_sha256": ...} of the entries the remote tier holds
    (artifacts/remote_tier.py `logged_manifests`), which `engineforge pull` checks a download against."""
    download = results.get("download")
    model = download.outputs if download else {}
    return {
        "recipe": {"name": recipe.name, "sha256": recipe_hash(recipe), "resolved": recipe.to_data()},
        "model": {
            "source": recipe.model.source,
            "revision": model.get("revision"),
            "files": model.get("files", {}),
        },
        "runtime": recipe.runtime,
        **({"tensorrt_llm_target": recipe.trtllm.version} if recipe.trtllm else {}),  # what the files were written for
        "parallel": parallel_plan,
        "stages": {name: result.key for name, result in results.items() if result.key},
        "tools": tool_versions(),
        "installed": installed_packages(),  # what this process ran with (the host's requirements.lock install)
        **({"quantization": quantization_record(results["quantize"])} if "quantize" in results else {}),
        **({"logged": logged} if logged else {}),
    }


def quantization_record(quantized: StageResult) -> dict[str, Any]:
    """What made a quantized checkpoint: its format, ModelOpt's version and the calibration data's hash
    (the lock file's `quantization`, the image's `ai.engineforge.quantize.*` labels)."""
    keep = ("format", "kv_cache", "modelopt_version", "calibration_sha256")
    return {name: quantized.outputs.get(name) for name in keep}


def digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def core_digest(core: dict[str, Any]) -> str:
    """`core_sha256`, the image's `ai.engineforge.lock-sha256` label: the core as it stood when the
    package stage started, i.e. without the keys of the stages that stamp it or follow it."""
    stamped = {name: key for name, key in core["stages"].items() if name not in AFTER_IMAGE}
    return digest({**core, "stages": stamped})


def core_of(lock: dict[str, Any]) -> dict[str, Any]:
    """The core a lock file (`complete_lock`) was made of, read back, for `core_digest`."""
    return {name: value for name, value in lock.items() if name not in ("version", "core_sha256", "image")}


def complete_lock(core: dict[str, Any], package: StageResult | None) -> dict[str, Any]:
    image = {}
    if package is not None and package.status != "skipped":
        image = {key: package.outputs.get(key) for key in ("image_tag", "image_id", "digest", "pushed_ref", "base_image")}
    return {"version": 1, **core, "core_sha256": core_digest(core), "image": image}


def dumps(lock: dict[str, Any]) -> str:
    return json.dumps(lock, indent=2, sort_keys=True, default=str) + "\n"
