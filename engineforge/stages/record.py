"""Recording a finished stage in the run's MLflow run: duration metric, key and status tags."""

from __future__ import annotations

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_tags import stage_key, stage_status
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext


def record_stage(ctx: RunContext, result: StageResult) -> None:
    mlflow_runs.log_metrics(ctx.tracking_uri, ctx.run_id, {f"stage_{result.stage}_duration_s": result.duration_s})
    tags = {stage_status(result.stage): result.status}
    if result.key:
        tags[stage_key(result.stage)] = result.key
    mlflow_runs.set_tags(ctx.tracking_uri, ctx.run_id, tags)
