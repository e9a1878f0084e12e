"""Is TensorRT-LLM on this worker? Probed with `importlib.util.find_spec` and `shutil.which`, never by
importing `tensorrt_llm` (that needs the CUDA driver; trtllm-facts.md, "Packaging").

A stage that needs TensorRT-LLM calls `require(...)` first: it fails at once with one line naming
what is missing and where to run instead. No stage ever falls back to another runtime.

Test-only switch: `ENGINEFORGE_TEST_TRTLLM_VERSION=<version>` makes the find_spec probe succeed and
reports that version. Tests set it together with test doubles of the TensorRT-LLM commands on PATH
(tests/doubles/); it is never set by engineforge itself, and nothing else reads it.
"""

from __future__ import annotations

import shutil

from engineforge.errors import UserError
from engineforge.recipe.trtllm_section import DEFAULT_VERSION, trtllm_version
from engineforge.versions import TRTLLM_PACKAGE, tensorrt_llm_present, tensorrt_llm_version

HOW_TO_GET = (
    "run this stage on a GPU work pool whose workers use the engineforge worker image "
    "(docker/worker.Dockerfile, FROM {image}), or install TensorRT-LLM {version} on this worker"
)

def missing(commands: list[str]) -> list[str]:
    """What of TensorRT-LLM (its Python package, the given commands) this worker lacks."""
    gaps = [] if tensorrt_llm_present() else [f"Python package {TRTLLM_PACKAGE}"]
    return gaps + [f"{command} on PATH" for command in commands if shutil.which(command) is None]


def require(what: str, commands: list[str]) -> None:
    """Raise a one-line UserError when TensorRT-LLM or one of `commands` is missing."""
    gaps = missing(commands)
    if gaps:
        release = trtllm_version(DEFAULT_VERSION)
        hint = HOW_TO_GET.format(image=release.release_image, version=release.version)
        raise UserError(f"{what} needs TensorRT-LLM, missing on this worker: {', '.join(gaps)}; {hint}; "
                        "engineforge never falls back to another runtime")


def require_version(version: str) -> None:
    """The worker's TensorRT-LLM is the version the recipe targets: its files and flags are that version's."""
    found = tensorrt_llm_version()
    if found != version:
        raise UserError(f"trtllm.version is {version}, but this worker has TensorRT-LLM {found}; run on a worker of "
                        f"{trtllm_version(version).release_image}, or set trtllm.version: {found} if engineforge "
                        "accepts it (see `engineforge schema`)")
