"""What both TensorRT-LLM runtimes share: availability, version pinning, the image base, trtllm-bench."""

from __future__ import annotations

from pathlib import Path

from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.errors import UserError
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import DeclaredTraits
from engineforge.runtimes.single_server import SingleServer
from engineforge.runtimes.trtllm import availability, bench
from engineforge.runtimes.trtllm.launch import launcher_commands
from engineforge.runtimes.trtllm.process import run_logged
from engineforge.runtimes.trtllm.serve import SERVE
from engineforge.stage_plan import Command, StagePlan, write_files
from engineforge.stage_result import StageResult
from engineforge.recipe.trtllm_section import trtllm_version
from engineforge.versions import tensorrt_llm_version

SERVED = "served"


def target_notes(recipe: Recipe) -> dict[str, str]:
    """What the recipe's TensorRT-LLM version chose, for the dry run: the version and its image."""
    target = trtllm_version(recipe.trtllm.version)
    return {"tensorrt_llm_version": target.version, "tensorrt_llm_image": target.release_image}


class TrtllmRuntimeBase(DeclaredTraits, SingleServer):
    ignore_eos_style = "field"  # trtllm-serve's OpenAI API takes ignore_eos
    builds_on_gpu = True
    image_gpu = True
    name: str
    stages: frozenset[str]
    # Commands every stage of the runtime may need besides trtllm-serve (trtllm-build for engines).
    build_commands: tuple[str, ...] = ()

    def required_commands(self, recipe: Recipe) -> list[str]:
        commands = [*self.build_commands, SERVE, *launcher_commands(ParallelLayout.of(recipe.parallel), recipe.parallel.gpus_per_node)]
        if recipe.validate_.enabled and recipe.validate_.trtllm_bench is not None:
            commands.append(bench.BENCH)
        return commands

    def check_available(self, recipe: Recipe) -> None:
        """TensorRT-LLM and its commands on this worker, of the version the recipe targets."""
        availability.require(f"runtime {self.name}", self.required_commands(recipe))
        availability.require_version(recipe.trtllm.version)
        self._check_gpu(recipe)

    @staticmethod
    def _check_gpu(recipe: Recipe) -> None:
        """The worker's GPU runs the recipe's quantization (NVFP4 needs Blackwell); an unknown GPU is not judged."""
        from engineforge.gpus import gpu_info, known_gpu
        from engineforge.trtllm.support import quantization_problem

        name = gpu_info()["gpu_name"]
        gpu = known_gpu(name) if name else None
        problem = quantization_problem(recipe, gpu) if gpu else None
        if problem:
            raise UserError(f"{problem[0]}: {problem[1]}")

    def require(self, stage: str, commands: list[str]) -> None:
        availability.require(f"stage {stage} (runtime {self.name})", commands)

    def bench_plan(self, recipe: Recipe, served_dir: str, workdir: str) -> StagePlan | None:
        """trtllm-bench's command and dataset, when validate.trtllm_bench asks for it."""
        if recipe.validate_.trtllm_bench is None:
            return None
        dataset = f"{workdir}/{bench.DATASET_FILE}"
        argv = bench.bench_argv(recipe, workspace=f"{workdir}/trtllm-bench-workspace", dataset=dataset,
                                report=f"{workdir}/{bench.REPORT_FILE}", **self.bench_model(served_dir))
        return StagePlan(stage="validate", commands=[Command(role="bench", argv=argv)],
                         files={dataset: bench.dataset_text(recipe)})

    def bench_model(self, served_dir: str) -> dict[str, str]:
        """bench_argv's model arguments for this runtime's served directory."""
        raise NotImplementedError

    def bench(self, recipe: Recipe, served_dir: Path, workdir: Path) -> dict[str, float]:
        plan = self.bench_plan(recipe, str(served_dir), str(workdir))
        if plan is None:
            return {}
        self.require("validate", [bench.BENCH])
        write_files(workdir, plan.files)
        run_logged(plan.commands[0].argv, workdir / bench.LOG_FILE, recipe.validate_.trtllm_bench.timeout_s,
                   "validate", "validate.trtllm_bench.timeout_s")
        return bench.read_report(workdir / bench.REPORT_FILE)

    def image_base(self, recipe: Recipe, built: StageResult | None) -> str:
        """NVIDIA's release image of the TensorRT-LLM version that built (engines load only there): the
        recipe's trtllm.version, which the build's worker had to carry (check_available)."""
        from engineforge.packaging.base_image import (
            trtllm_release_image,
            trtllm_version_of,
        )

        version = (built.outputs.get("tensorrt_llm_version") if built else None) or recipe.trtllm.version
        base = recipe.package.base
        if base is None:
            return trtllm_release_image(version)
        carried = trtllm_version_of(base)
        if carried is not None and carried != version:
            raise UserError(f"package.base {base} carries TensorRT-LLM {carried}, but the build used {version}; "
                            f"engines load only in the version that built them: use {trtllm_release_image(version)}")
        return base

    def deployment_files(self, recipe: Recipe, image: str) -> dict[str, str]:
        return {}

    def image_requirements(self, recipe: Recipe) -> list[str]:
        return []  # the release image already has TensorRT-LLM and trtllm-serve

    def key_versions(self) -> dict[str, str | None]:
        return {"tensorrt_llm": tensorrt_llm_version()}

    def build_key_inputs(self, recipe: Recipe) -> list:
        # The target version and LLM API options. An engine does not hold serve settings (port,
        # KV fraction): those reach trtllm-serve from the recipe when it starts, so they stay out.
        return [recipe.section("trtllm")]
