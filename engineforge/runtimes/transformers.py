"""The reference runtime: `transformers serve` over the Hugging Face checkpoint, CPU or CUDA."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from engineforge.errors import UserError
from engineforge.recipe import Recipe
from engineforge.stage import StageOutput
from engineforge.versions import package_version

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
SERVED_MODEL = "model"


class TransformersRuntime:
    name = "transformers"
    stages = frozenset({"download", "build", "validate", "package", "register"})

    def skip_reason(self, stage: str) -> str:
        return f"not used by the {self.name} runtime (it serves the Hugging Face checkpoint as is)"

    def check_available(self) -> None:
        if package_version("transformers") is None:
            raise UserError("runtime transformers: the transformers package is missing; pip install 'transformers[serving]'")

    def build(self, recipe: Recipe, model_dir: Path, workdir: Path) -> StageOutput:
        served = workdir / SERVED_MODEL
        _link_tree(model_dir, served)
        config = _read_config(served)
        architecture = (config.get("architectures") or [None])[0]
        if architecture is None:
            raise UserError(f"{model_dir}/config.json has no `architectures`; transformers serve cannot pick a model class")
        if not any((served / name).exists() for name in TOKENIZER_FILES):
            raise UserError(f"{model_dir}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); the server needs one")
        has_chat_template = (served / "chat_template.jinja").exists() or "chat_template" in _read_json(
            served / "tokenizer_config.json"
        )
        return StageOutput(
            summary=f"{architecture} servable directory",
            outputs={"served_dir": SERVED_MODEL, "architecture": architecture, "chat_template": has_chat_template},
        )

    def serve_argv(self, recipe: Recipe, served_dir: Path, host: str, port: int, device: str) -> list[str]:
        argv = ["transformers", "serve", str(served_dir), "--host", host, "--port", str(port), "--device", device]
        if recipe.model.dtype != "auto":
            argv += ["--dtype", recipe.model.dtype]
        if recipe.model.trust_remote_code:
            argv.append("--trust-remote-code")
        # Without continuous batching the server answers one request at a time (DESIGN.md, measured on H100).
        argv.append("--continuous-batching" if recipe.serve.continuous_batching else "--no-continuous-batching")
        return argv

    def image_requirements(self) -> list[str]:
        torch_version = (package_version("torch") or "").split("+")[0]
        return [f"transformers[serving]=={package_version('transformers')}", f"torch=={torch_version}"]

    def key_versions(self) -> dict[str, str | None]:
        return {"transformers": package_version("transformers")}


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link files where the filesystem allows (no gigabyte copies), copy otherwise."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(os.path.realpath(src), dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy, ignore=shutil.ignore_patterns(".cache", ".git*"))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _read_config(model_dir: Path) -> dict:
    config = _read_json(model_dir / "config.json")
    if not config:
        raise UserError(f"{model_dir}: no config.json; is it a Hugging Face model directory?")
    return config
