"""The TensorRT-LLM versions a recipe may target (`trtllm.version`) and what each one changes.

Sources (NVIDIA/TensorRT-LLM; ../shared/trtllm-facts.md, "After 1.2.1"):
- 1.2.1 (April 2026) is the latest stable release and the last with the TensorRT engine path
  (`trtllm-build`, `convert_checkpoint.py`, `--backend tensorrt`, trtllm-bench `--engine_dir`).
- The 1.3.0 release candidates have none of it: docs/source/legacy/tensorrt-backend-removal.md
  (PRs 15763, 15918, 16369); trtllm-bench lost `engine_dir` in PR 18850.
- `trtllm-serve --config FILE` is the preferred name of `--extra_llm_api_options` (alias since PR 9104).
  1.2.1 keeps the name its recipes have always used, so the 1.2.x workflow is unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

RELEASE_IMAGES = "nvcr.io/nvidia/tensorrt-llm/release"


class TrtllmVersion(NamedTuple):
    version: str
    engine_path: bool  # trtllm-build, --backend tensorrt and trtllm-bench --engine_dir exist
    serve_options_flag: str  # how trtllm-serve is handed the LLM API options file
    definitions: str  # engineforge/trtllm/definitions/<this>.json: what the options are checked against
    # definitions/<this>.json: what disagg_config.yaml is checked against (None: no NVIDIA definition read for it)
    disagg_definitions: str | None = None

    @property
    def release_image(self) -> str:
        return f"{RELEASE_IMAGES}:{self.version}"


VERSIONS: dict[str, TrtllmVersion] = {v.version: v for v in (
    TrtllmVersion("1.2.1", engine_path=True, serve_options_flag="--extra_llm_api_options", definitions="1.2.1"),
    TrtllmVersion("1.3.0rc30", engine_path=False, serve_options_flag="--config", definitions="1.3.0rc30",
                  disagg_definitions="disagg-1.4.0rc0"),
)}
DEFAULT_VERSION = "1.2.1"
ACCEPTED = tuple(VERSIONS)


def trtllm_version(version: str) -> TrtllmVersion:
    return VERSIONS[version]  # the recipe's Literal admits only these
