"""A sweep as MLflow holds it: the parent run's children, each tagged with its variant, read back as rows."""

from __future__ import annotations

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.errors import UserError
from engineforge.tracking.mlflow_tags import GPUS_TAG, MEASURED_BY_TAG, PREDICTED_GPU_TAG, SWEEP_TAG, VARIANT_TAG, stage_statuses
from engineforge.measure.intervals import REPEATS_METRIC
from engineforge.predict import PREDICTED
from engineforge.sweep.table import REPEATED_FIGURES, VariantRecord



def record_of(run, uri: str | None = None) -> VariantRecord:
    """A run's row. A run that reused a cached validation logged no figures of its own: they are read from
    the run that measured them (tag set by engineforge/stages/validate.py), its own stage times and predictions kept."""
    tags = run.data.tags
    figures = dict(run.data.metrics)
    measured_by = run.info.run_id
    if uri and MEASURED_BY_TAG in tags:
        measured_by = tags[MEASURED_BY_TAG]
        measured = TrackedRun(uri, measured_by).read().data.metrics
        figures = {k: v for k, v in measured.items() if not k.startswith(("stage_", PREDICTED))} | figures
    return VariantRecord(
        name=tags.get(VARIANT_TAG, run.info.run_name or run.info.run_id),
        gpus=int(tags.get(GPUS_TAG, "1")),
        figures=figures,
        gates=tags.get("gates", "not measured"),
        run_id=run.info.run_id,
        stages=stage_statuses(tags),
        predicted_gpu=tags.get(PREDICTED_GPU_TAG),
        repeats=_repeats(TrackedRun(uri, measured_by), int(figures.get(REPEATS_METRIC, 1))) if uri else [],
    )


def _repeats(measured: TrackedRun, count: int) -> list[dict[str, float]]:
    """Each repeat's figures, from the metrics' steps 0..count-1 (engineforge/stages/validate.py logs them so); none
    for a single measurement."""
    if count < 2:
        return []
    repeats: list[dict[str, float]] = [{} for _ in range(count)]
    for name in REPEATED_FIGURES:
        for metric in mlflow_runs.client(measured.uri).get_metric_history(measured.run_id, name):
            if metric.step < count:
                repeats[metric.step][name] = metric.value
    return repeats


def sweep_records(parent: TrackedRun) -> list[VariantRecord]:
    """The variants of a sweep, one per variant (the newest child run if a variant ran twice)."""
    newest: dict[str, VariantRecord] = {}
    for run in parent.child_runs():
        if VARIANT_TAG in run.data.tags:
            newest[run.data.tags[VARIANT_TAG]] = record_of(run, parent.uri)
    return list(newest.values())


def latest_sweep(uri: str, experiment: str) -> str:
    """The run id of the newest sweep parent run in `experiment`."""
    mlflow_client = mlflow_runs.client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        raise UserError(f"experiment {experiment!r}: not in {uri}; name one that `engineforge run` recorded a sweep in")
    runs = mlflow_client.search_runs([found.experiment_id], filter_string=f"tags.`{SWEEP_TAG}` LIKE '%'",
                                     order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise UserError(f"experiment {experiment!r}: holds no sweep run; run a recipe with a sweep: section first, "
                        "or pass the runs to compare with --runs")
    return runs[0].info.run_id
