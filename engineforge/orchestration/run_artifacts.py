"""What a run shows in the Prefect UI: a markdown summary, the validation table, progress of long stages.

The summary artifact is also what `engineforge submit --watch` prints when a run ends, so the UI
and the terminal tell the same story. Rendering is plain functions; publishing imports Prefect.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from typing import Any, Iterator

from engineforge.stages import progress
from engineforge.measure.gates import validation_rows  # re-exported: the summary's figure table
from engineforge.tracking.mlflow_tags import (
    CHAMPION_TAG,
    CHAMPION_VERSION_TAG,
    FLOW_RUN_TAG,
    FLOW_RUN_URL_TAG,
    MEASURED_BY_TAG,
    NOTE_TAG,
    RUN_NAME_TAG,
)
from engineforge.orchestration.prefect_api import show
from engineforge.tracking.mlflow_runs import DECISIVE_METRICS, TrackedRun

LONG_STAGES = ("download", "shard", "build")
SUMMARY = "summary"
VALIDATION = "validation"
RECIPE = "recipe"
# MLflow's markdown renderer (3.17.2) links `@word` to https://github.com/word: an alias such as
# @champion in a description became a link to a GitHub user. A code span is left as text.
MENTION = re.compile(r"(?<![^\s(])@([A-Za-z][\w.-]*)")  # after a space, a parenthesis or at the start; not in user@host


def artifact_key(recipe_name: str, kind: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes; recipe names also allow . and _."""
    return f"{re.sub(r'[^a-z0-9-]+', '-', recipe_name.lower()).strip('-')}-{kind}"


def summary_markdown(summary: dict[str, Any], mlflow: str, prefect: str | None = None) -> str:
    """The run summary: outcome, the figures that decide, MLflow (and `prefect`, a link to the flow run,
    where the summary is shown outside Prefect), the lock hash, then one row per stage (status, time, key,
    result). The figures come first: MLflow shows a description's first lines until "Show more"."""
    lines = [f"# {summary['recipe']}: {summary['status']} in {summary['duration_s']:.1f} s", ""]
    if summary.get("failed_stage"):
        lines += [f"**Failed at {summary['failed_stage']}**: {_cell(summary.get('error') or '')}", ""]
    figures = summary.get("figures") or {}
    shown = [f"{name} {_number(figures[name])}" for name in DECISIVE_METRICS if name in figures]
    if shown:
        lines += [f"**Validation**: {', '.join(shown)}", ""]
    lines += [f"**MLflow**: {mlflow}", ""]
    if prefect:
        lines += [f"**Prefect**: {prefect}", ""]
    if summary.get("lock_sha256"):
        lines += [f"**Lock file**: `{summary['lock_sha256']}`", ""]
    lines += ["| stage | status | duration | key | result |", "|---|---|---|---|---|"]
    for stage in summary["stages"]:
        key = f"`{stage['key'][:12]}`" if stage.get("key") else ""
        lines.append(f"| {stage['stage']} | {stage['status']} | {stage['duration_s']:.2f} s | {key} | {_cell(stage['summary'])} |")
    return "\n".join(lines) + "\n"


def mlflow_link(mlflow_run: TrackedRun, experiment: str) -> str:
    """A clickable link for an MLflow server; the store and the `mlflow ui` line for a local one."""
    uri, run_id = mlflow_run.uri, mlflow_run.run_id
    if uri.startswith(("http://", "https://")):
        try:
            return f"[run {run_id}]({mlflow_run.page_url()}) in experiment `{experiment}`"
        except Exception:  # the link is a convenience; the run id below still finds the run
            pass
    return f"run `{run_id}` in experiment `{experiment}` at `{uri}` (browse: `mlflow ui --backend-store-uri {uri}`)"


def _summary_run(mlflow: dict[str, str]) -> TrackedRun:
    """The MLflow run that a run summary's `mlflow` section names."""
    return TrackedRun(mlflow["tracking_uri"], mlflow["run_id"])


def prefect_link(tags: dict[str, str]) -> str | None:
    """A Markdown link to the Prefect flow run an MLflow run's tags point at (None without its address)."""
    url = tags.get(FLOW_RUN_URL_TAG)
    if not url:
        return None
    return f"[flow run {tags.get(FLOW_RUN_TAG) or url}]({url})"


def no_mentions(markdown: str) -> str:
    """`@alias` as a code span, so that MLflow's UI shows it as written instead of a GitHub link."""
    return MENTION.sub(r"`@\1`", markdown)


def publish_summary(summary: dict[str, Any], gates=None) -> None:
    """Create the run's summary and validation artifacts (called by the flow when it ends)."""
    # probe: an API that died since the last stage costs 2 s here, not a minute of client retries
    show("the run's summary", _publish_summary, summary, gates, probe=True)


def _publish_summary(summary: dict[str, Any], gates) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    mlflow = summary["mlflow"]
    link = mlflow_link(_summary_run(mlflow), mlflow["experiment"])
    create_markdown_artifact(
        summary_markdown(summary, link),
        key=artifact_key(summary["recipe"], SUMMARY),
        description=f"{summary['recipe']}: {summary['status']}",
    )
    validate = next((stage for stage in summary.get("stages", []) if stage["stage"] == "validate"), {})
    rows = validation_rows(summary.get("figures") or {}, gates, repeats=(validate.get("outputs") or {}).get("repeat_figures"))
    if rows:
        create_table_artifact(rows, key=artifact_key(summary["recipe"], VALIDATION),
                              description=f"{summary['recipe']}: validation figures and gates")


def recipe_rows(recipe) -> list[dict[str, str]]:
    """The recipe setting by setting (`validate.gates.max_ttft_ms_p99`, `12000`), as parsed, defaults included;
    settings left unset are left out."""
    rows = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for name, inner in value.items():
                walk(f"{prefix}.{name}" if prefix else name, inner)
        elif value is not None:
            rows.append({"setting": prefix, "value": value if isinstance(value, str) else json.dumps(value)})

    walk("", recipe.to_data())
    return rows


def publish_recipe(recipe) -> None:
    """The recipe as a table artifact of the flow run: Prefect shows the `recipe_yaml` parameter as one escaped
    string. It stays text: the run logs it as written (comments included) as `recipe.yaml`, and a refused
    recipe's errors point at its lines."""
    from prefect.artifacts import create_table_artifact

    show("the recipe table", create_table_artifact, recipe_rows(recipe), key=artifact_key(recipe.name, RECIPE),
         description=f"{recipe.name}: the recipe parameter, setting by setting")


def describe_mlflow_run(summary: dict[str, Any], label: str) -> None:
    """The summary table as the MLflow run's description; ` cached` after its name when no stage
    was computed, so a rerun that measured nothing reads as one in the runs list."""
    from engineforge.tracking import mlflow_runs

    mlflow = summary["mlflow"]
    mlflow_run = _summary_run(mlflow)
    tags = mlflow_run.read().data.tags  # read once: the Prefect link here, the gates for a registered version
    note = no_mentions(summary_markdown(summary, mlflow_link(mlflow_run, mlflow["experiment"]), prefect_link(tags)))
    reused = summary["status"] == "completed" and all(stage["status"] in ("cached", "skipped") for stage in summary["stages"])
    mlflow_run.set_tags({NOTE_TAG: note, RUN_NAME_TAG: f"{label} cached" if reused else label})
    registered = next((stage["outputs"] for stage in summary["stages"]
                       if stage["stage"] == "register" and stage.get("outputs", {}).get("version")), None)
    if registered:
        mlflow_runs.describe_version(mlflow["tracking_uri"], registered["model_name"], registered["version"],
                                     version_markdown(summary, tags))


def version_markdown(summary: dict[str, Any], tags: dict[str, str]) -> str:
    """A registered version's description: the figures that decide, the gates, the lock hash and the run
    that measured them (a link on an MLflow server, else the run id and store). `tags`: the summary's run's."""
    mlflow = summary["mlflow"]
    figures = summary.get("figures") or {}
    shown = [f"{name} {_number(figures[name])}" for name in DECISIVE_METRICS if name in figures]
    measured_by = tags.get(MEASURED_BY_TAG, mlflow["run_id"])  # a reused validation: the run that measured it
    lines = [f"**Figures**: {', '.join(shown) or 'none measured'}", "", f"**Gates**: {tags.get('gates', 'not measured')}",
             "", f"**Measured by**: {mlflow_link(TrackedRun(mlflow['tracking_uri'], measured_by), mlflow['experiment'])}"]
    if summary.get("lock_sha256"):
        lines += ["", f"**Lock file**: `{summary['lock_sha256']}`"]
    return no_mentions("\n".join(lines) + "\n")


def describe_sweep_parent(parent: TrackedRun, table: str, champion: str | None, objective: str,
                          promoted: dict[str, Any] | None) -> None:
    """The sweep's answer where a user lands: the parent run's description leads with the champion (and
    its registered version) and the objective, then the comparison table; tags carry the champion."""
    if champion is None:
        headline = "**Champion: none** (no variant passed every gate; no alias moved)"
    elif promoted:
        headline = f"**Champion: {champion}**, {promoted['model']} version {promoted['version']} @champion"
    else:
        headline = f"**Champion: {champion}** (not registered)"
    tags = {NOTE_TAG: no_mentions(f"{headline}; objective `{objective}`\n\n{table}")}
    if champion is not None:
        tags[CHAMPION_TAG] = champion
    if promoted:
        tags[CHAMPION_VERSION_TAG] = str(promoted["version"])
    parent.set_tags(tags)


def mark_champion(champion: TrackedRun, name: str, parent: str, promoted: dict[str, Any] | None) -> None:
    """The champion child marked by tag, name and description; its description's register line says the
    aliases its version holds now (`@candidate` when registered may since have moved to another variant)."""
    from engineforge.tracking import mlflow_runs

    note = champion.read().data.tags.get(NOTE_TAG, "")
    if promoted:
        model, version = promoted["model"], str(promoted["version"])
        aliases = " ".join(f"@{alias}" for alias in mlflow_runs.version_aliases(champion.uri, model, version))
        note = note.replace(f"{model} version {version} `@{mlflow_runs.CANDIDATE_ALIAS}`", f"{model} version {version} {aliases}")
        headline = f"**Champion** of sweep run `{parent}`: {model} version {version} {aliases}"
    else:
        headline = f"**Champion** of sweep run `{parent}` (not registered)"
    champion.set_tags({CHAMPION_TAG: "true", RUN_NAME_TAG: name,
                                    NOTE_TAG: no_mentions(f"{headline}\n\n{note}")})


def log_stage(result, mlflow_run: TrackedRun) -> None:
    """The stage's line in the Prefect flow run's logs: status, time, its summary (figures or why it was
    skipped) and the MLflow run that records it. Outside a flow run (a plain call) there is no log to write."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        logger = get_run_logger()
    except MissingContextError:
        return
    logger.info("%s %s in %.2f s: %s (MLflow run: %s)", result.stage, result.status, result.duration_s,
                result.summary, mlflow_run.page_url())


class _ThreadTimeoutNotice:
    """Drops Prefect's warning that a task's timeout cannot interrupt a blocking call in a worker thread."""

    WORDS = "running in a worker thread"

    def filter(self, record) -> bool:
        return self.WORDS not in str(record.msg)


def quiet_thread_timeout_warnings() -> None:
    """A sweep runs its children's flows in threads, so every build and validate task warned that its timeout
    cannot interrupt a blocking call there (Prefect 3.9.1, `task_engine.py`): one warning per child, each
    the same, in every child's log. The timeout still ends the task when the call returns, and the stages'
    blocking calls carry their own limits (server start, requests, subprocesses), so nothing is unenforced
    that the warning would let a user act on. Installed once per process, on Prefect's task-run logger."""
    import logging

    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(existing, _ThreadTimeoutNotice) for existing in logger.filters):
        logger.addFilter(_ThreadTimeoutNotice())


def mark_cancelled(flow_run_id: str | None) -> None:
    """An interrupted run's Prefect flow run: CANCELLED (Prefect's engine records Ctrl-C as CRASHED)."""
    if not flow_run_id:
        return
    from prefect import get_client
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelled(message="interrupted (Ctrl-C)"), force=True)


def flow_run_tags() -> dict[str, str]:
    """MLflow tags that point back at the Prefect flow run executing this code (none outside one)."""
    from prefect.context import FlowRunContext
    from prefect.utilities.urls import url_for

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return {}
    tags = {FLOW_RUN_TAG: str(context.flow_run.id)}
    url = url_for("flow-run", obj_id=context.flow_run.id)
    if url:
        tags[FLOW_RUN_URL_TAG] = url
    return tags


@contextmanager
def stage_progress(stage: str) -> Iterator[None]:
    """A progress artifact for a long stage: 0 % when it starts, then its fraction events, 100 % at the end."""
    if stage not in LONG_STAGES:
        yield
        return
    listener = _ProgressArtifact(stage)
    progress.subscribe(listener)
    try:
        yield
    finally:
        progress.unsubscribe(listener)


class _ProgressArtifact:
    """Listens to one stage's progress events and mirrors them in a Prefect progress artifact.

    Listeners are process-wide, and a sweep runs its children's flows side by side in one process: each
    listener hears only the events of its own flow run (an event from a thread outside any flow run, a
    stage's helper, is heard). Without that, a child's bar was created in, or finished by, another
    child's stage, and one stayed at 0 % on a completed run."""

    STEP_PERCENT = 5.0  # a sharder reports every few MiB; the API hears of every 5 %

    def __init__(self, stage: str):
        self.stage = stage
        self.flow_run_id = _current_flow_run_id()
        self.artifact_id = None
        self.reported = 0.0

    def _ours(self, stage: str) -> bool:
        if stage != self.stage:
            return False
        emitter = _current_flow_run_id()
        return emitter is None or emitter == self.flow_run_id

    def stage_started(self, stage: str, key: str | None) -> None:
        if self._ours(stage) and self.artifact_id is None:
            from prefect.artifacts import create_progress_artifact

            # a stage never fails for its progress bar
            self.artifact_id = show(f"{stage}'s progress", create_progress_artifact, 0.0,
                                    description=f"{stage} {key[:12] if key else ''}".strip())

    def stage_advanced(self, stage: str, fraction: float) -> None:
        percent = 100.0 * min(max(fraction, 0.0), 1.0)
        if percent - self.reported >= self.STEP_PERCENT:
            self.reported = percent
            self._update(stage, percent)

    def stage_finished(self, result) -> None:
        self._update(result.stage, 100.0, f"{result.stage} {result.status}: {result.summary}"[:500])

    def _update(self, stage: str, percent: float, description: str | None = None) -> None:
        if not self._ours(stage) or self.artifact_id is None:
            return
        from prefect.artifacts import update_progress_artifact

        show(f"{stage}'s progress", update_progress_artifact, self.artifact_id, percent, description=description)


def _current_flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context is not None and context.flow_run is not None else None


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
