"""Recording a finished stage in the run's MLflow run: duration metric, key and status tags."""

from __future__ import annotations

from engineforge import tracking
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext


def record_stage(ctx: RunContext, result: StageResult) -> None:
    tracking.log_metrics(ctx.tracking_uri, ctx.run_id, {f"stage_{result.stage}_duration_s": result.duration_s})
    tags = {f"engineforge.stage.{result.stage}.status": result.status}
    if result.key:
        tags[f"engineforge.stage.{result.stage}.key"] = result.key
    tracking.set_tags(ctx.tracking_uri, ctx.run_id, tags)
