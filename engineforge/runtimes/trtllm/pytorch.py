"""Runtime `trtllm`: TensorRT-LLM's PyTorch backend (trtllm-facts.md, "Two runtimes in TensorRT-LLM 1.x").

No engine build: the build stage hands the Hugging Face checkpoint on (hard links) with the LLM API
options YAML beside it, and, for disaggregated serving, each role's options, `disagg_config.yaml`
and the launch commands. The served directory is one tree, so an image serves it as built:

    served/                          the Hugging Face files
    served/extra_llm_api_options.yaml   (`--config` / `--extra_llm_api_options` by version)
    served/disaggregated/{context,generation}_options.yaml, disagg_config.yaml, launch.json
"""

from __future__ import annotations

from pathlib import Path

from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.gpus import visible_devices
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.transformers import link_model_tree, servable_model
from engineforge.runtimes.trtllm import compose, disagg
from engineforge.runtimes.trtllm.base import SERVED, TrtllmRuntimeBase, target_notes
from engineforge.runtimes.trtllm.files import json_text, yaml_text
from engineforge.runtimes.trtllm.launch import launched
from engineforge.trtllm.options import OPTIONS_FILE, llm_api_options
from engineforge.runtimes.trtllm.serve import pytorch_serve_argv
from engineforge.stage_plan import StagePlan, write_files
from engineforge.stage_result import StageOutput, StageResult
from engineforge.trtllm.definitions import definitions
from engineforge.recipe.trtllm_section import trtllm_version
from engineforge.versions import tensorrt_llm_version

DISAGG_DIR = "disaggregated"
COMPOSE_DIR = "compose"  # in the package entry, beside the image
LAUNCH_FILE = "launch.json"


class TrtllmRuntime(TrtllmRuntimeBase):
    name = "trtllm"
    stages = frozenset({"download", "build", "validate", "package", "register"})

    def skip_reason(self, stage: str) -> str:
        return f"not used by the {self.name} runtime (TensorRT-LLM's PyTorch backend loads the Hugging Face checkpoint directly)"

    def build_files(self, recipe: Recipe) -> dict[str, str]:
        """{path inside the served directory: text} of everything the build writes."""
        from engineforge.packaging import MODEL_DIR_IN_IMAGE

        files = {OPTIONS_FILE: yaml_text(llm_api_options(recipe))}
        if recipe.serve.disaggregated is not None:
            port, first = recipe.serve.port, recipe.serve.port + 1
            for name, text in disagg.files(recipe, "0.0.0.0", "localhost", port, self._ports(recipe, first)).items():
                files[f"{DISAGG_DIR}/{name}"] = text
            commands = disagg.commands(recipe, MODEL_DIR_IN_IMAGE, f"{MODEL_DIR_IN_IMAGE}/{DISAGG_DIR}", "0.0.0.0", port,
                                       self._ports(recipe, first))
            files[f"{DISAGG_DIR}/{LAUNCH_FILE}"] = json_text([c.model_dump(mode="json") for c in commands])
        return files

    def build_key_inputs(self, recipe: Recipe) -> list:
        # The build writes these files and argv from the recipe (serve included): a changed one is a new build.
        return [*super().build_key_inputs(recipe), self.build_files(recipe), self._image_serve_argv(recipe)]

    def build(self, recipe: Recipe, source: StageResult, workdir: Path) -> StageOutput:
        self.require("build", [])
        model_dir = source.file("model_dir")
        served = workdir / SERVED
        link_model_tree(model_dir, served)
        architecture, _ = servable_model(served, model_dir)
        write_files(served, self.build_files(recipe))
        version = tensorrt_llm_version()
        layout = ParallelLayout.of(recipe.parallel)
        return StageOutput(
            summary=f"{architecture} with LLM API options for TensorRT-LLM {version} (tp{layout.tp} pp{layout.pp} ep{layout.ep})",
            outputs={"served_dir": SERVED, "architecture": architecture, "options_file": f"{SERVED}/{OPTIONS_FILE}",
                     "tensorrt_llm_version": version, **_reference(source),
                     "serve_argv": self._image_serve_argv(recipe)},
        )

    def _image_serve_argv(self, recipe: Recipe) -> list[str]:
        from engineforge.packaging import MODEL_DIR_IN_IMAGE

        return self.serve_argv(recipe, Path(MODEL_DIR_IN_IMAGE), "0.0.0.0", recipe.serve.port, "cuda")

    def serve_argv(self, recipe: Recipe, served_dir: Path, host: str, port: int | str, device: str) -> list[str]:
        argv = pytorch_serve_argv(recipe, str(served_dir), f"{served_dir}/{OPTIONS_FILE}", host, port)
        return launched(argv, ParallelLayout.of(recipe.parallel), recipe.parallel.gpus_per_node)

    def serve_plan(self, recipe: Recipe, served_dir: str, host: str, port: int | str, device: str, workdir: str) -> StagePlan:
        if recipe.serve.disaggregated is None:
            return super().serve_plan(recipe, served_dir, host, port, device, workdir)
        from engineforge.processes.serving import free_port

        count = disagg.worker_count(recipe)
        ports = [free_port(host) for _ in range(count)] if isinstance(port, int) else [f"<port {i + 1}>" for i in range(count)]
        config_dir = f"{workdir}/{DISAGG_DIR}"
        files = {f"{config_dir}/{name}": text for name, text in disagg.files(recipe, host, host, port, ports).items()}
        commands = disagg.commands(recipe, served_dir, config_dir, host, port, ports, visible_devices())
        return StagePlan(stage="validate", commands=commands, files=files)

    def bench_model(self, served_dir: str) -> dict[str, str]:
        return {"model_path": served_dir, "options_file": f"{served_dir}/{OPTIONS_FILE}"}

    def deployment_files(self, recipe: Recipe, image: str) -> dict[str, str]:
        if recipe.serve.disaggregated is None:
            return {}
        return {f"{COMPOSE_DIR}/{name}": text for name, text in compose.compose_files(recipe, image).items()}

    def dry_run(self, recipe: Recipe) -> dict[str, StagePlan]:
        from engineforge.processes.serving import LOOPBACK
        from engineforge.stage_plan import (
            BUILD_DIR,
            DOWNLOAD_DIR,
            PORT,
            VALIDATE_DIR,
            merge,
        )

        served = f"{BUILD_DIR}/{SERVED}"
        build = StagePlan(stage="build", files={f"{served}/{name}": text for name, text in self.build_files(recipe).items()},
                          notes={"served_dir": served, "links": f"{served} -> {DOWNLOAD_DIR}", **target_notes(recipe),
                                 "options_flag": trtllm_version(recipe.trtllm.version).serve_options_flag,
                                 "options_checked_against": definitions(recipe.trtllm.version)["summary"]})
        validate = merge(self.serve_plan(recipe, served, LOOPBACK, PORT, "cuda", VALIDATE_DIR),
                         self.bench_plan(recipe, served, VALIDATE_DIR))
        return {"build": build, "validate": validate}

    @staticmethod
    def _ports(recipe: Recipe, first: int) -> list[int | str]:
        return [first + i for i in range(disagg.worker_count(recipe))]


def _reference(source: StageResult) -> dict[str, str]:
    """A quantized model's served directory is ModelOpt's export, which plain transformers misreads
    (FP8/INT8 codes as numbers): the accuracy check and roofline read the fake-quantized checkpoint."""
    return {"reference_dir": str(source.file("fakequant_dir"))} if "fakequant_dir" in source.outputs else {}
