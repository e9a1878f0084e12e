"""Every MLflow tag EngineForge writes or reads, named once with its meaning.

The strings are what users' MLflow stores already hold: never change one (a run recorded before would
no longer be read). Tags with a part in their name (a stage, a figure, an owner field) are built and
parsed by the helpers here, so the writer and the reader cannot drift apart.
"""

from __future__ import annotations

PREFIX = "engineforge."

# MLflow's own tags that EngineForge sets or reads (MLflow reads them too: never rename one).
RUN_NAME_TAG = "mlflow.runName"  # a run's name in the runs list
NOTE_TAG = "mlflow.note.content"  # a run's description (markdown)
PARENT_RUN_TAG = "mlflow.parentRunId"  # what MLflow's UI nests a sweep's child runs by
# MLflow 3 shows an experiment without a kind as a GenAI traces page, this kind as the classic runs view.
EXPERIMENT_KIND_TAG, CLASSIC_KIND = "mlflow.experimentKind", "custom_model_development"

# A pipeline run (flows/model_to_deployment.py, tracking/mlflow_runs.py).
RECIPE_TAG = "engineforge.recipe"  # the recipe's name; also on a registered model
RUNTIME_TAG = "engineforge.runtime"  # also on a registered model version
PARALLEL_TAG = "engineforge.parallel"  # the resolved parallel layout's label
PARALLEL_REASON_TAG = "engineforge.parallel.reason"  # why the planner chose that layout
MODEL_REVISION_TAG = "engineforge.model_revision"  # the model's commit sha or content digest
LOCK_SHA256_TAG = "engineforge.lock_sha256"  # the sha256 of the run's lock file core
GPU_TAG = "engineforge.gpu"  # the GPU model of the host a run ran on (NVML); absent where it has none
CLOSED_BY_TAG = "engineforge.closed_by"  # why a stale run was closed, and by whom
OWNER_TAG_PREFIX = "engineforge.owner."  # engineforge.owner.<host|boot_id|pid|started>: the process that owns a run

# The Prefect flow run behind an MLflow run (orchestration/run_artifacts.py).
FLOW_RUN_TAG = "engineforge.prefect.flow_run_id"
FLOW_RUN_URL_TAG = "engineforge.prefect.flow_run_url"

# Stages: engineforge.stage.<stage>.status / .key (stages/record.py writes them, sweep/records.py reads them).
STAGE_TAG_PREFIX = "engineforge.stage."

# Quantize (tasks/quantize.py).
QUANTIZE_FORMAT_TAG = "engineforge.quantize.format"
QUANTIZE_KV_CACHE_TAG = "engineforge.quantize.kv_cache"
QUANTIZE_MODELOPT_VERSION_TAG = "engineforge.quantize.modelopt_version"
QUANTIZE_CALIBRATION_SHA256_TAG = "engineforge.quantize.calibration_sha256"
QUANTIZE_GATES_TAG = "engineforge.quantize.gates"  # "passed" or "failed"

# Validate (engineforge/stages/validate.py).
MEASURED_TAG = "engineforge.measured.validate"  # the validate key whose figures this run measured
MISSING_TAG_PREFIX = "engineforge.missing."  # engineforge.missing.<figure>: why the figure has no value
CACHE_HIT_TAG = "engineforge.cache_hit"  # "true" on a run whose validation was reused
MEASURED_BY_TAG = "engineforge.measured_by_run"  # on a run whose validation was reused: the run that measured it

# Registry (tracking/mlflow_runs.py, stages/register.py). Register leaves a trail a kill cannot cut short:
# what it creates names the run that created it, and a new version the candidate it replaces.
CONTENT_KEY_TAG = "engineforge.content_key"  # on a model version: the build's store key
IMAGE_DIGEST_TAG = "engineforge.image_digest"  # on a model version: the serving image's digest
REGISTERED_BY_TAG = "engineforge.registered_by_run"
REPLACED_CANDIDATE_TAG = "engineforge.replaced_candidate"

# Artifacts (artifacts/remote_tier.py, artifacts/transfer.py).
LOGGED_TAG_PREFIX = "engineforge.logged."  # engineforge.logged.<stage>: the store key logged as artifacts
MANIFEST_TAG_PREFIX = "engineforge.manifest_sha256."  # engineforge.manifest_sha256.<stage>: its manifest's sha256

# Sweeps (flows/sweep.py, sweep/records.py, sweep/champion.py, sweep/predictions.py).
SWEEP_TAG = "engineforge.sweep"  # on the parent run: the number of variants
OBJECTIVE_TAG = "engineforge.sweep.objective"  # on the parent run
VERDICT_TAG = "engineforge.champion.verdict"  # on the parent run: the verdict's kind
VARIANT_TAG = "engineforge.sweep.variant"  # on a child run: its variant's name
PACKAGED_VARIANT_TAG = "engineforge.sweep.packaged"  # on the champion's packaging run: its variant's name
GPUS_TAG = "engineforge.sweep.gpus"  # on a child run: the GPUs its variant uses
PREDICTED_GPU_TAG = "engineforge.predicted.gpu"  # the GPU a run's predicted_* figures are for
PREDICTED_TAG_PREFIX = "engineforge.predicted."  # + predictor, backend, backend_version, database: what they modelled
CHAMPION_TAG = "engineforge.sweep.champion"  # on a sweep's parent run: the champion's variant; on the champion child: true
CHAMPION_VERSION_TAG = "engineforge.sweep.champion_version"  # and its registered version, when one was promoted
FAILED_BECAUSE_TAG = "engineforge.failed_because"  # a run closed FAILED by an error outside its stages: the error's line


def stage_status(stage: str) -> str:
    return f"{STAGE_TAG_PREFIX}{stage}.status"


def stage_key(stage: str) -> str:
    return f"{STAGE_TAG_PREFIX}{stage}.key"


def stage_statuses(tags: dict[str, str]) -> dict[str, str]:
    """{stage: status} from a run's tags (the inverse of `stage_status`)."""
    return {key[len(STAGE_TAG_PREFIX):-len(".status")]: value for key, value in tags.items()
            if key.startswith(STAGE_TAG_PREFIX) and key.endswith(".status")}


def missing(figure: str) -> str:
    return MISSING_TAG_PREFIX + figure


def logged(stage: str) -> str:
    return LOGGED_TAG_PREFIX + stage


def manifest_sha256(stage: str) -> str:
    return MANIFEST_TAG_PREFIX + stage


def owner_field(name: str) -> str:
    return OWNER_TAG_PREFIX + name
