"""The reference runtime: `transformers serve` over the Hugging Face checkpoint, CPU or CUDA."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engineforge.errors import UserError
from engineforge.model.shape import read_config
from engineforge.quantize import serve as fakequant
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import DeclaredTraits
from engineforge.runtimes.single_server import SingleServer
from engineforge.stage_plan import StagePlan
from engineforge.stage_result import StageOutput, StageResult
from engineforge.artifacts.store import clone_tree
from engineforge.versions import package_version

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
SERVED_MODEL = "model"
CB_PAGE_TOKENS = 256  # transformers' ContinuousBatchingConfig.page_size default (5.17+)


class TransformersRuntime(DeclaredTraits, SingleServer):
    name = "transformers"
    ignore_eos_style = "generation_config"  # transformers serve rejects an ignore_eos field (HTTP 422)
    builds_on_gpu = False  # the build links files
    image_gpu = False  # the image serves on whatever it finds (serve.device auto), CPU included
    stages = frozenset({"download", "build", "validate", "package", "register"})

    def skip_reason(self, stage: str) -> str:
        return f"not used by the {self.name} runtime (it serves the Hugging Face checkpoint as is)"

    def check_available(self, recipe: Recipe) -> None:
        if package_version("transformers") is None:
            raise UserError("runtime transformers: the transformers package is missing; pip install 'transformers[serving]'")

    def build(self, recipe: Recipe, source: StageResult, workdir: Path) -> StageOutput:
        model_dir = source.file("model_dir")
        if (model_dir / "hf_quant_config.json").is_file():
            # transformers does not know quant_method modelopt: it would read FP8/INT8 codes as numbers.
            raise UserError(f"{model_dir} is a ModelOpt export, which plain transformers serves as garbage; give the "
                            "unquantized model with a quantize: section (served fake-quantized), or use runtime trtllm")
        served = workdir / SERVED_MODEL
        link_model_tree(model_dir, served)
        if recipe.quantize is not None:
            fakequant.copy_server(served)
        architecture, has_chat_template = servable_model(served, model_dir)
        return StageOutput(
            summary=f"{architecture} servable directory",
            outputs={"served_dir": SERVED_MODEL, "architecture": architecture, "chat_template": has_chat_template},
        )

    def serve_argv(self, recipe: Recipe, served_dir: Path, host: str, port: int, device: str) -> list[str]:
        argv = [*_server(recipe, served_dir), "--host", host, "--port", str(port), "--device", device]
        if recipe.model.dtype != "auto":
            argv += ["--dtype", recipe.model.dtype]
        if recipe.model.trust_remote_code:
            argv.append("--trust-remote-code")
        # Without continuous batching the server answers one request at a time (DESIGN.md, measured on H100).
        if not recipe.serve.continuous_batching:
            return argv + ["--no-continuous-batching"]
        return argv + ["--continuous-batching", *_kv_cache_flags(recipe, device)]

    def bench(self, recipe: Recipe, served_dir: Path, workdir: Path) -> dict[str, float]:
        return {}

    def image_base(self, recipe: Recipe, built: StageResult | None) -> str:
        from engineforge.packaging.base_image import DEFAULT_BASE

        return recipe.package.base or DEFAULT_BASE.tag

    def deployment_files(self, recipe: Recipe, image: str) -> dict[str, str]:
        return {}

    def dry_run(self, recipe: Recipe) -> dict[str, StagePlan]:
        from engineforge.gpus import serving_device
        from engineforge.processes.serving import LOOPBACK
        from engineforge.stage_plan import BUILD_DIR, DOWNLOAD_DIR, PORT, VALIDATE_DIR

        served = f"{BUILD_DIR}/{SERVED_MODEL}"
        build = StagePlan(stage="build", notes={"served_dir": served, "links": f"{served} -> {DOWNLOAD_DIR}"})
        validate = self.serve_plan(recipe, served, LOOPBACK, PORT, serving_device(recipe.serve.device), VALIDATE_DIR)
        return {"build": build, "validate": validate}

    def image_requirements(self, recipe: Recipe) -> list[str]:
        torch_version = (package_version("torch") or "").split("+")[0]
        serving = [f"transformers[serving]=={package_version('transformers')}", f"torch=={torch_version}"]
        # A quantized recipe's server restores ModelOpt's quantizers (_server): the image needs ModelOpt, and
        # requests, which ModelOpt 0.47 imports (modelopt/torch/utils/dataset_utils.py) without declaring it.
        modelopt = [f"nvidia-modelopt=={package_version('nvidia-modelopt')}", f"requests=={package_version('requests')}"]
        return serving + modelopt if recipe.quantize else serving

    def key_versions(self) -> dict[str, str | None]:
        return {"transformers": package_version("transformers"),
                "fakequant_server": fakequant.server_script_sha256()[:16]}

    def build_key_inputs(self, recipe: Recipe) -> list:
        return []  # the build links the checkpoint; serve settings are read only when the server starts


def link_model_tree(source: Path, target: Path) -> None:
    """Clone the model files (copy-on-write where the filesystem can, else a copy): a hard link would
    share one inode between the download and build entries, so damage to one would reach the other."""
    clone_tree(source, target, ignore=shutil.ignore_patterns(".cache", ".git*"))


def servable_model(model_dir: Path, origin: Path) -> tuple[str, bool]:
    """(architecture, has chat template) of a Hugging Face model directory a server can load."""
    config = read_config(model_dir)
    architecture = (config.get("architectures") or [None])[0]
    if architecture is None:
        raise UserError(f"{origin}/config.json has no `architectures`; the server cannot pick a model class")
    if not any((model_dir / name).exists() for name in TOKENIZER_FILES):
        raise UserError(f"{origin}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); the server needs one")
    has_chat_template = (model_dir / "chat_template.jinja").exists() or "chat_template" in _read_json(
        model_dir / "tokenizer_config.json"
    )
    return architecture, has_chat_template


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _server(recipe: Recipe, served_dir: Path) -> list[str]:
    """A quantized recipe serves ModelOpt's fake-quantized checkpoint through a script that restores its
    quantizers: plain `transformers serve` would load the unquantized weights stored beside them."""
    if recipe.quantize is not None:
        return fakequant.server_argv(served_dir)
    return ["transformers", "serve", str(served_dir)]


def _kv_cache_flags(recipe: Recipe, device: str) -> list[str]:
    """Size the continuous-batching KV cache from the recipe, as TensorRT-LLM builds do.

    Left alone, transformers sizes it from free device memory, which on a CPU means most of the
    host's RAM (seen here: 14 GB for a 2-layer model, and servers stopped by the OOM killer).
    """
    if device == "cuda":
        return ["--cb-max-memory-percent", str(recipe.serve.kv_cache_free_gpu_memory_fraction)]
    # CPU, or "auto" in an image that may land on either: enough for the build limits, no more.
    build = recipe.build
    pages = -(-build.max_batch_size * build.max_seq_len // CB_PAGE_TOKENS)
    return ["--cb-num-blocks", str(pages)]
