"""A sweep: one recipe's variants run side by side as `model-to-deployment` children, compared, and the
best one passing every gate promoted to `champion` (and only it packaged).

Children run as deployments on the `gpu` work pool when a deployment is named (each lands on a worker
with free GPUs), else as concurrent subflows here; either way their GPU stages take the hosts' GPU
slots, so no more run at once than there are GPUs. Stages whose keys are shared (download; build where
only serving or load differ) are computed once: concurrent children wait on the same cache key.
AIConfigurator predicts each variant after its child ran, for the GPU that child's run names.
"""

from __future__ import annotations

import contextvars
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prefect import flow

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.errors import RunFailed, UserError
from engineforge.tracking.mlflow_tags import (
    FLOW_RUN_TAG,
    GPUS_TAG,
    OBJECTIVE_TAG,
    PACKAGED_VARIANT_TAG,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    SWEEP_TAG,
    VARIANT_TAG,
    VERDICT_TAG,
    stage_key,
)
from engineforge.orchestration import run_artifacts, submission
from engineforge.stages import progress
from engineforge.recipe.file import parse_recipe, run_label
from engineforge.runtimes import get_runtime
from engineforge.measure.turns import SEAT, Seat, Turns
from engineforge.sweep import CURRENT_VARIANT, noise, publish
from engineforge.sweep.champion import decide
from engineforge.sweep.expand import Variant
from engineforge.sweep.plan import plan_sweep
from engineforge.sweep.predictions import log_predictions
from engineforge.sweep.records import sweep_records
from flows.model_to_deployment import model_to_deployment


def _flow_run_name() -> str:
    """The recipe and its content key (`tiny-llama-sweep-1a2b3c4d`), like a single run's, not a random name."""
    from prefect.runtime import flow_run

    try:
        return run_label(parse_recipe(flow_run.parameters["recipe_yaml"], "<recipe>"))
    except UserError:  # refused in the flow itself, so the run ends Failed with the reason
        return "refused-recipe"


@flow(name="sweep", log_prints=True, flow_run_name=_flow_run_name)
def sweep(
    recipe_yaml: str,
    recipe_origin: str = "<recipe>",
    base_dir: str | None = None,
    refresh: list[str] | None = None,
    store_root: str | None = None,
    deployment: str | None = None,
) -> dict[str, Any]:
    """Run every variant of the recipe's sweep, compare them, and promote the champion.

    Args:
        recipe_yaml: The recipe file's text (YAML), as written; the run's `recipe` artifact shows it setting by
            setting.
        recipe_origin: Where the text came from (a path), for error messages.
        base_dir: The directory relative paths in the recipe are resolved against.
        refresh: Stages to run again although their result is stored.
        store_root: The content store's directory (default: the worker's).
        deployment: Run each variant as a flow run of this deployment instead of in this process.
    """
    started = time.perf_counter()
    recipe = parse_recipe(recipe_yaml, recipe_origin)
    planned = plan_sweep(recipe, Path(base_dir) if base_dir else None)  # every variant checked before any work
    if not deployment:  # the children run here: fail now, once, rather than in every child
        get_runtime(recipe.runtime).check_available(recipe)
    parent = mlflow_runs.start_run(recipe, recipe_yaml)
    flow_run = run_artifacts.flow_run_tags()
    parent.set_tags({SWEEP_TAG: str(len(planned.variants)), OBJECTIVE_TAG: recipe.sweep.objective,
                     RUN_NAME_TAG: run_label(recipe), **flow_run})
    run_artifacts.publish_recipe(recipe)
    progress.announce(parent, flow_run)  # the parent's links before any child's
    # Repeated measurements take turns across the variants here (engineforge/measure/turns.py); one
    # measurement each (repeats 1) keeps the variants measuring side by side, as before repeats existed.
    shared = Turns([v.name for v in planned.variants], recipe.sweep.cooldown_s) if recipe.sweep.repeats > 1 else None
    child = _ChildRunner(parent, recipe_origin, base_dir, store_root, deployment, shared)
    run_artifacts.quiet_thread_timeout_warnings()  # children here run in threads; deployments warn of nothing
    with ThreadPoolExecutor(max_workers=len(planned.variants), thread_name_prefix="variant") as pool:
        runs = [pool.submit(contextvars.copy_context().run, child.run, v) for v in planned.variants]
        outcomes = {v.name: run.result() for v, run in zip(planned.variants, runs)}
    planned.notes += log_predictions(parent.uri, planned, {name: outcome["run_id"] for name, outcome in outcomes.items()})
    records = sweep_records(parent)
    planned.notes += [f"Variant {name} recorded nothing: its flow run {outcome['flow_run_id']} failed before "
                      "its MLflow run started (see it in the Prefect UI)." for name, outcome in outcomes.items()
                      if outcome["run_id"] is None]
    objective = recipe.sweep.objective
    planned.notes += noise.order_notes(recipe.sweep, bool(deployment), shared.measured if shared else [],
                                       shared.started_beside if shared else 0)
    planned.notes += noise.drift_notes(records, objective)
    for name, drift in noise.drifts(records, objective).items():
        TrackedRun(parent.uri, next(r.run_id for r in records if r.name == name)).log_metrics({objective + noise.DRIFT_SUFFIX: drift})
    verdict = decide(records, objective)
    champion = verdict.champion
    parent.set_tags({VERDICT_TAG: verdict.kind})
    packaged = None
    if champion is not None and recipe.package.enabled:  # only the champion becomes an image
        variant = next(v for v in planned.variants if v.name == champion.name)
        packaged = child.run(variant, package=True)
    versions = _registered_versions(parent.uri, recipe, records)  # read once: promotion and the summary both need them
    promoted = _promote(parent.uri, recipe, champion, versions)
    if champion is not None:
        run_artifacts.mark_champion(TrackedRun(parent.uri, champion.run_id), child_run_name(champion.name, recipe.name, champion=True),
                                    parent.run_id, promoted)
    wall_s = time.perf_counter() - started
    critical_s = publish.critical_path_s(records) + (packaged or {}).get("chain_s", 0.0)
    timing = {"sweep_wall_s": wall_s, "sweep_critical_path_s": critical_s,
              "sweep_overhead_fraction": max(wall_s - critical_s, 0.0) / wall_s}
    parent.log_metrics(timing)
    with tempfile.TemporaryDirectory() as directory:
        for path in publish.write_outputs(records, verdict, Path(directory), recipe, planned.notes):
            parent.log_file(path, publish.ARTIFACT_DIR)
    table = verdict.table(records, planned.notes)
    registry = _registry_now(parent.uri, recipe, versions)
    _publish_table(recipe, table, parent)
    run_artifacts.describe_sweep_parent(parent, table, verdict.name, objective, promoted)
    summary = {
        "recipe": recipe.name, "flow": "sweep", "status": "completed" if champion else "failed",
        "champion": verdict.name, "verdict": verdict.kind, "verdict_line": verdict.sentence(), "tied": verdict.tied,
        "promoted": promoted, "objective": objective,
        "variants": [{"variant": r.name, "gpus": r.gpus, "gates": r.gates, "stages": r.stages, "run_id": r.run_id,
                      "n": r.n, "flow_run_id": outcomes.get(r.name, {}).get("flow_run_id"),
                      "registered": registry.get(r.name)} for r in records],
        "packaged": packaged, "table": table, "timing": timing,
        "mlflow": {"tracking_uri": parent.uri, "run_id": parent.run_id, "experiment": mlflow_runs.experiment_name(recipe)},
        "duration_s": round(wall_s, 3),
    }
    parent.finish(succeeded=champion is not None)
    if champion is None:
        raise RunFailed("sweep", "no variant passed every gate (see the table); no alias moved", summary)
    return summary


def child_run_name(variant: str, recipe_name: str, package: bool = False, champion: bool = False) -> str:
    """The variant first, so MLflow's narrow name column tells children apart (`mbs8-c8-n16 · tiny-llama-sweep`);
    the champion's packaging run says it is that, not another variant."""
    role = " · champion package" if package else " · champion" if champion else ""
    return f"{variant} · {recipe_name}{role}"


class _ChildRunner:
    """Runs one variant as a `model-to-deployment` child and nests its MLflow run under the parent's."""

    def __init__(self, parent: TrackedRun, origin: str, base_dir: str | None, store_root: str | None,
                 deployment: str | None, turns: Turns | None = None):
        self.parent, self.origin = parent, origin
        self.base_dir, self.store_root, self.deployment, self.turns = base_dir, store_root, deployment, turns

    def run(self, variant: Variant, package: bool = False) -> dict[str, Any]:
        CURRENT_VARIANT.set(f"{variant.name} package" if package else variant.name)  # its live lines told apart
        if self.turns is not None:
            SEAT.set(Seat(self.turns, variant.name))
        text = variant.yaml_text(tracking_uri=self.parent.uri, package=package)
        parameters = {"recipe_yaml": text, "recipe_origin": f"{self.origin} [{variant.name}]",
                      "base_dir": self.base_dir, "store_root": self.store_root}
        run_name = child_run_name(variant.name, variant.recipe.name, package)
        if self.deployment:
            from prefect.deployments import run_deployment

            flow_run = run_deployment(submission.deployment_name(self.deployment), parameters=parameters,
                                      flow_run_name=run_name, timeout=None)
            flow_run_id = str(flow_run.id)
        else:
            state = model_to_deployment.with_options(flow_run_name=run_name)(**parameters, return_state=True)
            flow_run_id = str(state.state_details.flow_run_id)
        found = mlflow_runs.run_with_tag(self.parent.uri, mlflow_runs.experiment_name(variant.recipe), FLOW_RUN_TAG,
                                         flow_run_id)
        if found is None:  # it failed before its MLflow run started (e.g. a worker without the runtime)
            return {"variant": variant.name, "flow_run_id": flow_run_id, "run_id": None}
        tags = {PARENT_RUN_TAG: self.parent.run_id, RUN_NAME_TAG: run_name, GPUS_TAG: str(variant.recipe.parallel.gpus),
                (PACKAGED_VARIANT_TAG if package else VARIANT_TAG): variant.name}
        TrackedRun(self.parent.uri, found.info.run_id).set_tags(tags)
        chain = sum(v for k, v in found.data.metrics.items() if k.startswith("stage_") and k.endswith("_duration_s"))
        return {"variant": variant.name, "flow_run_id": flow_run_id, "run_id": found.info.run_id, "chain_s": chain}


def _promote(uri: str, recipe, champion, versions: dict[str, str]) -> dict[str, Any] | None:
    """`champion` onto the champion's registered version."""
    version = versions.get(champion.name) if champion is not None else None
    if version is None:
        return None
    former = mlflow_runs.promote_champion(uri, recipe.name, version)
    return {"model": recipe.name, "version": version, "previous_champion": former if former != version else None}


def _registered_versions(uri: str, recipe, records) -> dict[str, str]:
    """Each variant's registered version, found by its build's content key (none when nothing registers)."""
    if not recipe.tracking.register_model:
        return {}
    versions = {}
    for record in records:
        key = TrackedRun(uri, record.run_id).read().data.tags.get(stage_key("build"))
        version = mlflow_runs.version_with_content_key(uri, recipe.name, key) if key else None
        if version is not None:
            versions[record.name] = version
    return versions


def _registry_now(uri: str, recipe, versions: dict[str, str]) -> dict[str, str]:
    """Each registered variant's version and the aliases it holds once the sweep is done, read back from the
    registry: what the live `@candidate` lines said may have moved since (every child registers)."""
    shown = {}
    for name, version in versions.items():
        aliases = " ".join(f"@{alias}" for alias in mlflow_runs.version_aliases(uri, recipe.name, version))
        shown[name] = f"version {version} {aliases or '(no alias)'}"
    return shown


def _publish_table(recipe, table: str, parent: TrackedRun) -> None:
    """The comparison table in the Prefect UI, with the link to the sweep's MLflow run."""
    from prefect.artifacts import create_markdown_artifact

    link = run_artifacts.mlflow_link(parent, mlflow_runs.experiment_name(recipe))
    create_markdown_artifact(f"{table}\n\n**MLflow**: {link}\n", key=run_artifacts.artifact_key(recipe.name, "sweep"),
                             description=f"{recipe.name}: sweep comparison")
