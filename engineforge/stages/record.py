"""Recording a run's stages in its MLflow run: status and key tags as each stage ends, durations when the run ends.

The durations wait for the end because MLflow's run page lists metrics in the order they were first
logged (mlflow_runs.DECISIVE_METRICS): logged as each stage ended, four stage durations led the list and the
measured figures came after them.
"""

from __future__ import annotations

from engineforge.tracking.mlflow_tags import stage_key, stage_status
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext


def record_stage(ctx: RunContext, result: StageResult) -> None:
    ctx.stage_durations[result.stage] = result.duration_s
    tags = {stage_status(result.stage): result.status}
    if result.key:
        tags[stage_key(result.stage)] = result.key
    ctx.mlflow_run.set_tags(tags)


def record_durations(ctx: RunContext) -> None:
    """`stage_<stage>_duration_s` of each stage recorded (a failed one too), in one batch."""
    durations = {f"stage_{stage}_duration_s": seconds for stage, seconds in ctx.stage_durations.items()}
    ctx.mlflow_run.log_metrics(durations)
