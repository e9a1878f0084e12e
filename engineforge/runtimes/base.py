"""What every runtime provides to the stages."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from engineforge.recipe.schema import Recipe
from engineforge.runtime_traits import RuntimeTraits, runtime_traits
from engineforge.stage_plan import StagePlan
from engineforge.stage_result import StageOutput, StageResult

# A build that runs a tool writes the tool's output here, inside the build's workdir (and names it
# in its outputs as "build_log"); the build stage keeps a copy when the build fails.
BUILD_LOG = "logs/build.log"


class DeclaredTraits:
    """A runtime's traits as engineforge.runtime_traits declares them for its name (one declaration)."""

    name: str

    @property
    def traits(self) -> RuntimeTraits:
        return runtime_traits(self.name)

    @property
    def serves_fake_quantized(self) -> bool:
        return self.traits.serves_fake_quantized


class Runtime(Protocol):
    name: str
    traits: RuntimeTraits  # what it is, as the modules below runtimes/ ask it (engineforge.runtime_traits)
    stages: frozenset[str]  # the stages that apply; the others are reported as skipped
    # How the server is asked for exact output lengths (engineforge.loadgen.BenchConfig.ignore_eos_style).
    ignore_eos_style: str
    builds_on_gpu: bool  # the build stage takes the recipe's GPU slots (orchestration.gpu_slots)
    # Which quantize output it serves: ModelOpt's fake-quantized checkpoint (True) or the unified export.
    serves_fake_quantized: bool  # its traits'
    image_gpu: bool  # the serving image needs GPUs (its smoke test asks Docker for them)

    def skip_reason(self, stage: str) -> str:
        """Why `stage` does not apply to this runtime (shown in the run table)."""

    def check_available(self, recipe: Recipe) -> None:
        """Raise UserError naming what is missing and how to get it, before any work starts."""

    def build(self, recipe: Recipe, source: StageResult, workdir: Path) -> StageOutput:
        """Turn the downloaded (or sharded) model into what the server loads, inside `workdir`.

        Outputs name `served_dir`, and `reference_dir` when the served directory is not itself a
        Hugging Face checkpoint (an engine): the model the accuracy check and roofline read."""

    def serve_argv(self, recipe: Recipe, served_dir: Path, host: str, port: int, device: str) -> list[str]:
        """The single-process server command line for a built output (the image's entrypoint)."""

    def serve_plan(self, recipe: Recipe, served_dir: str, host: str, port: int | str, device: str, workdir: str) -> StagePlan:
        """The servers validation starts, in order (the last one is benchmarked), and the files they
        read (absolute paths under `workdir`, written before the first one starts)."""

    def bench(self, recipe: Recipe, served_dir: Path, workdir: Path) -> dict[str, float]:
        """Figures of the runtime's own offline benchmark, run after the servers stopped ({} for none)."""

    def image_base(self, recipe: Recipe, built: StageResult | None) -> str:
        """The serving image's base: `package.base`, checked, or the runtime's default."""

    def deployment_files(self, recipe: Recipe, image: str) -> dict[str, str]:
        """{path inside the package entry: text} shipped beside `image` (compose.yaml and its configs
        for a disaggregated deployment); {} when the image alone is the deployment."""

    def image_requirements(self, recipe: Recipe) -> list[str]:
        """Python requirements the serving image installs for this recipe."""

    def key_versions(self) -> dict[str, str | None]:
        """Tool versions that change this runtime's build output (part of the build key)."""

    def build_key_inputs(self, recipe: Recipe) -> list:
        """What else of the recipe its build output depends on, beyond build, parallel and dtype
        (appended to the build key; [] when nothing else enters it)."""

    def dry_run(self, recipe: Recipe) -> dict[str, StagePlan]:
        """The shard, build and validate stages' plans, with placeholder paths (see engineforge.stages.dry_run)."""
