"""AIConfigurator's figures for each variant on the GPU its child run ran on, logged on that run beside what it
measured. Children land on whichever worker has free GPUs, so a variant is predicted once its run has said
which GPU that was (`mlflow_tags.GPU_TAG`). That happens here, in the sweep's process: the predict extra is
installed where `engineforge run` runs, not necessarily on the workers (docker/worker.Dockerfile has no
AIConfigurator), and its database is loaded once for the whole sweep."""

from __future__ import annotations

from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.sweep.plan import PlannedSweep
from engineforge.tracking.mlflow_tags import GPU_TAG, PREDICTED_GPU_TAG, PREDICTED_TAG_PREFIX


def log_predictions(uri: str, planned: PlannedSweep, run_ids: dict[str, str | None]) -> list[str]:
    """Predict every variant that has a run for the GPU that run names and log the figures on it; return
    the table's notes, one line per reason some variants have no figure."""
    from engineforge.predict import NoPrediction, predict

    if not planned.predicts:
        return []
    missing: dict[tuple[str, str | None], list[str]] = {}
    for variant in planned.variants:
        run_id = run_ids.get(variant.name)
        if run_id is None:  # it recorded nothing; the table's notes already say so
            continue
        child = TrackedRun(uri, run_id)
        gpu = child.read().data.tags.get(GPU_TAG)
        outcome = predict(variant.recipe, planned.model_config, gpu) if gpu else NoPrediction("no GPU where it ran")
        if isinstance(outcome, NoPrediction):
            missing.setdefault((outcome.reason, gpu), []).append(variant.name)
            continue
        child.log_metrics(outcome.metrics())
        provenance = {PREDICTED_TAG_PREFIX + name: value for name, value in outcome.provenance().items()}
        child.set_tags({PREDICTED_GPU_TAG: gpu, **provenance})  # the database and version it read
    return [f"No prediction for {', '.join(names)}{f' on {gpu}' if gpu else ''}: {reason}."
            for (reason, gpu), names in missing.items()]
