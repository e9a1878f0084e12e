"""`Stage`: everything about one pipeline stage, in one typed value.

Each stage module (`download.py`, `quantize.py`, ...) ends with its `Stage`: its name, its content key,
its work, how its result is recorded in MLflow and judged, its dry-run plan, the GPUs it uses and when
it does not apply. One generic Prefect task (`tasks/stage.py`) runs any of them; `STAGES`
(`engineforge/stages/pipeline.py`) lists them in pipeline order.

A stage's inputs are the results of earlier stages (and values the flow computed, such as the lock's
digest), passed by name: the flow says `run(BUILD, recipe, ctx, model=checkpoint)`, and `key` and
`work` receive `model=` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.stage_plan import StagePlan
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage

KeyFn = Callable[..., str]  # (recipe, ctx, **inputs) -> the stage's content key
WorkFn = Callable[..., StageResult]  # (recipe, ctx, key, **inputs) -> its result, computed or reused from the store
RecordFn = Callable[[Recipe, RunContext, StageResult], None]  # into the run's MLflow run; may raise StageFailed
PlanFn = Callable[[Recipe, Runtime, "dict[str, StagePlan]"], StagePlan]  # (recipe, runtime, the runtime's plans)


def record_result(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """What every stage records: its duration, key and status (engineforge/stages/record.py)."""
    record_stage(ctx, result)


def switch(field: str, enabled: Callable[[Recipe], bool]) -> Callable[[Recipe], str | None]:
    """A recipe switch (`validate.enabled`, ...) as a skip reason: `<field> is false` when it is off."""
    return lambda recipe: None if enabled(recipe) else f"{field} is false"


def _cpu_only(recipe: Recipe, runtime: Runtime) -> int:
    return 0


def _always(recipe: Recipe) -> str | None:
    return None


def _no_timeout(recipe: Recipe) -> float | None:
    return None


@dataclass(frozen=True)
class Stage:
    """One pipeline stage, whole.

    - `key`: its content key from its inputs, an explicit call made once per run before it runs (None:
      known only once it runs, e.g. a download's commit);
    - `work`: the stage itself (`key` is None for a stage without one);
    - `record`: what the run's MLflow run keeps of a result, computed or cached; it may judge the
      result too (gates) and raise `StageFailed` after recording it;
    - `plan`: what `run --dry-run` prints for it;
    - `gpus`: how many GPUs its work uses (its Prefect GPU slots);
    - `unless`: why the recipe switches it off; `by_runtime`: whether the runtime's stage list decides too;
    - `retries`: the delays (s) before each retry of a failed attempt; `timeout_s`: its Prefect timeout.
    """

    name: str
    work: WorkFn
    plan: PlanFn
    key: KeyFn | None = None
    record: RecordFn = record_result
    gpus: Callable[[Recipe, Runtime], int] = _cpu_only
    unless: Callable[[Recipe], str | None] = _always
    by_runtime: bool = True
    retries: tuple[float, ...] = ()
    timeout_s: Callable[[Recipe], float | None] = _no_timeout

    def skip_reason(self, recipe: Recipe, runtime: Runtime) -> str | None:
        """Why this stage does not apply to `recipe` (shown in the run table), or None when it runs."""
        if self.by_runtime and self.name not in runtime.stages:
            return runtime.skip_reason(self.name)
        return self.unless(recipe)

    def content_key(self, recipe: Recipe, ctx: RunContext, inputs: dict[str, Any]) -> str | None:
        return self.key(recipe, ctx, **inputs) if self.key else None
