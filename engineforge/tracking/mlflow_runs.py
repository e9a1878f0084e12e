"""MLflow, wrapped: one run per recipe execution, addressed by its handle (`TrackedRun`: uri and run id).

Everything goes through an explicit `MlflowClient` and run id, never MLflow's active run,
which is thread-local and so invisible to Prefect's task threads. A tracking server is probed once
before a run starts (a few seconds, one line naming the variable that sets it) instead of meeting
MLflow's minutes of retries; every run records its owner (host, boot id, pid), so a run left
RUNNING by a killed process can be closed as KILLED (`close_stale_runs`: the next run on that host,
`engineforge doctor`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from filelock import FileLock

from engineforge.errors import UserError
from engineforge.gpus import detect_gpus
from engineforge.tracking.mlflow_tags import (
    CLOSED_BY_TAG,
    CLASSIC_KIND,
    CONTENT_KEY_TAG,
    EXPERIMENT_KIND_TAG,
    FAILED_BECAUSE_TAG,
    GPU_TAG,
    OWNER_TAG_PREFIX,
    PARALLEL_TAG,
    PARENT_RUN_TAG,
    RECIPE_TAG,
    REGISTERED_BY_TAG,
    REPLACED_CANDIDATE_TAG,
    RUNTIME_TAG,
    owner_field,
)
from engineforge.processes.owner import Owner, host
from engineforge.recipe.schema import Recipe

DEFAULT_URI = "sqlite:///mlflow.db"
# The figures that decide between two builds, in the order a reader wants them: the run descriptions lead
# with them, and every batch of metrics sends them first. MLflow's run page (3.17.2, RunViewMetricsTable)
# lists a run's metrics in the order its store first received them, not by name; so they come first
# there too, stage durations last (logged when the run ends, stages/record.py).
DECISIVE_METRICS = ("output_tokens_per_s", "tokens_per_s_per_user", "ttft_ms_p50", "ttft_ms_p99", "itl_ms_p50",
                    "tpot_ms_p50", "error_rate")
CANDIDATE_ALIAS = "candidate"
PROBE_TIMEOUT_S = 4.0
# MLflow's defaults (7 retries, backoff factor 2, 120 s timeouts) spend minutes on a server that
# went away mid-run; an operator's own settings win.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"  # `mlflow ui`'s default address
# MLflow 3.17.2's UI ignores the experiment kind tag: its view (GenAI or classic) is the URL's
# `workflowType` query, else the browser's saved choice, else GenAI (WorkflowTypeProvider, module 7975
# of mlflow/server/js/build/static/js/main.c2f5f8d4.js in the 3.17.2 wheel; source
# mlflow/server/js/src/common/contexts/WorkflowTypeContext.tsx). Every run page we link asks for classic.
CLASSIC_VIEW_QUERY = "?workflowType=machine_learning"


def tracking_uri(recipe: Recipe) -> str:
    # The operator's setting wins: a submitted recipe must not choose where a worker writes.
    return os.environ.get("MLFLOW_TRACKING_URI") or recipe.tracking.uri or DEFAULT_URI


def experiment_name(recipe: Recipe) -> str:
    return recipe.tracking.experiment or recipe.name


def probe(uri: str) -> None:
    """Fail in seconds, in one line, when the tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        status = httpx.get(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S).status_code
    except httpx.HTTPError as error:
        cause = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    else:
        if status == 200:
            return
        cause = f"/health answered HTTP {status}"
    raise UserError(f"MLflow tracking server {uri} is unreachable ({cause}); start it, or point "
                    "MLFLOW_TRACKING_URI (or the recipe's tracking.uri) at one that runs")


def client(uri: str):
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from mlflow.tracking import MlflowClient

    _create_sqlite_tables_once(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@lru_cache(maxsize=None)
def _create_sqlite_tables_once(uri: str) -> None:
    """Let one process at a time create a new SQLite store's tables: runs starting together on a
    fresh mlflow.db otherwise fail with "table ... already exists"."""
    if not uri.startswith("sqlite:///"):
        return
    from mlflow.tracking import MlflowClient

    database = Path(uri[len("sqlite:///"):]).resolve()
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(database.with_name(database.name + ".lock")):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates or migrates the tables


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested recipe data as MLflow params: dotted keys; lists as JSON."""
    if isinstance(data, dict):
        flat: dict[str, str] = {}
        for key, value in data.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    value = json.dumps(data) if isinstance(data, list) else str(data)
    return {prefix.rstrip("."): value}


def start_run(recipe: Recipe, recipe_text: str) -> TrackedRun:
    """Create the run (named after the recipe) with params and the recipe; return its handle."""
    from mlflow.entities import Param, RunTag

    uri = tracking_uri(recipe)
    probe(uri)
    mlflow_client = client(uri)
    gpu = detect_gpus()  # a sweep child may land on any worker: its run says which GPU it had
    run = mlflow_client.create_run(
        _experiment_id(mlflow_client, uri, experiment_name(recipe)),
        run_name=recipe.name,
        tags={RECIPE_TAG: recipe.name, RUNTIME_TAG: recipe.runtime, **owner_tags(Owner.current()),
              **({GPU_TAG: gpu.spec.name} if gpu else {})},
    )
    started = TrackedRun(uri, run.info.run_id)
    try:
        params = [Param(key, value[:6000]) for key, value in flatten(recipe.to_data()).items()]
        for start in range(0, len(params), 100):  # MLflow accepts at most 100 params per batch
            mlflow_client.log_batch(started.run_id, params=params[start : start + 100])
        mlflow_client.log_batch(started.run_id, tags=[RunTag(PARALLEL_TAG, _layout(recipe))])
        started.log_text(recipe_text, "recipe.yaml")
    except Exception as error:
        started.close_failed(error)
        raise
    return started


@dataclass(frozen=True)
class TrackedRun:
    """One MLflow run: the tracking server that holds it and its id. What a run records goes through it."""

    uri: str
    run_id: str

    def read(self):
        """The run as the tracking server holds it now (MLflow's `Run`: info, tags, metrics)."""
        return client(self.uri).get_run(self.run_id)

    def page_url(self) -> str:
        """The run's page in MLflow's classic run view: on the tracking server, or for a local store on
        the `mlflow ui` the README starts (http://127.0.0.1:5000)."""
        server = self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else LOCAL_MLFLOW_UI
        return f"{server}/#/experiments/{self.read().info.experiment_id}/runs/{self.run_id}{CLASSIC_VIEW_QUERY}"

    def log_metrics(self, figures: dict[str, float], step: int = 0) -> None:
        """`figures` at `step` (a run's value of a metric is the one at its highest step), each `readable`,
        the decisive ones first."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, readable(float(value)), now, step) for key, value in decisive_first(figures) if _is_number(value)]
        for start in range(0, len(metrics), 1000):
            client(self.uri).log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        client(self.uri).log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])

    def log_file(self, path: Path, artifact_dir: str | None = None) -> None:
        client(self.uri).log_artifact(self.run_id, str(path), artifact_dir)

    def log_text(self, text: str, name: str) -> None:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / name
            path.write_text(text)
            client(self.uri).log_artifact(self.run_id, str(path))

    def log_table(self, rows: list[dict[str, Any]], name: str) -> None:
        """Rows as an MLflow table artifact (`name`, a .json path), which the run's UI shows as a table."""
        columns = {key: [row.get(key) for row in rows] for key in dict.fromkeys(key for row in rows for key in row)}
        client(self.uri).log_table(self.run_id, data=columns, artifact_file=name)

    def finish(self, succeeded: bool) -> None:
        client(self.uri).set_terminated(self.run_id, "FINISHED" if succeeded else "FAILED")

    def end_killed(self) -> None:
        """Close the run KILLED (stopped, not failed: Ctrl-C) and undo what it registered: a KILLED run
        registers nothing, even half."""
        client(self.uri).set_terminated(self.run_id, "KILLED")
        self.undo_registration()

    def close_failed(self, error: BaseException) -> None:
        """Close the run FAILED, saying why (FAILED_BECAUSE_TAG: the error's type and first line), for an
        error that stops the run outside its stages. A write that fails too (the tracking database may be
        what failed) is suppressed: `error` is the one to report, and the next run's cleanup closes the run."""
        because = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"[:5000]
        with contextlib.suppress(Exception):
            self.set_tags({FAILED_BECAUSE_TAG: because})
        with contextlib.suppress(Exception):
            self.finish(False)

    def child_runs(self) -> list:
        """The runs nested under this one (a sweep's variants), oldest first."""
        mlflow_client = client(self.uri)
        experiment_id = mlflow_client.get_run(self.run_id).info.experiment_id
        return mlflow_client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{self.run_id}'",
                                         order_by=["attributes.start_time ASC"], max_results=10000)

    def register_version(self, name: str, source: str, content_key: str, tags: dict[str, str],
                         source_run: str | None = None) -> tuple[str, bool]:
        """A model version for the built artifact (by reference) with alias `candidate`, registered by
        this run (`undo_registration` removes it whole if this run is killed); the version names run
        `source_run` (default this one), the one that logged the artifact.

        Returns (version, reused): an existing version with the same content key is reused rather
        than registering the same bytes twice; of `tags`, it gets those it lacks.
        """
        from mlflow.exceptions import MlflowException

        mlflow_client = client(self.uri)
        try:
            mlflow_client.create_registered_model(name, tags={RECIPE_TAG: name, REGISTERED_BY_TAG: self.run_id})
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        existing = [
            version
            for version in mlflow_client.search_model_versions(f"name = '{name}'")
            # Same bytes at the same place: a store moved elsewhere gets a version pointing at its copy.
            if version.tags.get(CONTENT_KEY_TAG) == content_key and version.source == source
        ]
        if existing:
            version, reused = existing[0].version, True
            for key, value in tags.items():  # one registered before a tag was recorded gets it; a recorded one stays
                if key not in existing[0].tags:
                    mlflow_client.set_model_version_tag(name, version, key, value)
        else:
            replaced = _alias_version(mlflow_client, name, CANDIDATE_ALIAS)
            trail = {REGISTERED_BY_TAG: self.run_id, **({REPLACED_CANDIDATE_TAG: replaced} if replaced else {})}
            created = mlflow_client.create_model_version(
                name, source=source, run_id=source_run or self.run_id, tags={CONTENT_KEY_TAG: content_key, **tags, **trail}
            )
            version, reused = created.version, False
        mlflow_client.set_registered_model_alias(name, CANDIDATE_ALIAS, version)
        return str(version), reused

    def undo_registration(self) -> list[str]:
        """What this run, killed, registered: its versions deleted (`candidate` back on the version it
        replaced), a registered model it created and left without versions deleted; one line each."""
        mlflow_client = client(self.uri)
        done = []
        for found in mlflow_client.search_model_versions(f"tags.`{REGISTERED_BY_TAG}` = '{self.run_id}'"):
            version = mlflow_client.get_model_version(found.name, found.version)  # with its aliases
            replaced = version.tags.get(REPLACED_CANDIDATE_TAG)
            if CANDIDATE_ALIAS in version.aliases and replaced and _version_exists(mlflow_client, found.name, replaced):
                mlflow_client.set_registered_model_alias(found.name, CANDIDATE_ALIAS, replaced)
            mlflow_client.delete_model_version(found.name, found.version)  # takes its aliases with it
            done.append(f"model version {found.name} {found.version} removed"
                        + (f" ({CANDIDATE_ALIAS} back on version {replaced})" if replaced else ""))
        for model in mlflow_client.search_registered_models(f"tags.`{REGISTERED_BY_TAG}` = '{self.run_id}'"):
            if not mlflow_client.search_model_versions(f"name = '{model.name}'"):
                mlflow_client.delete_registered_model(model.name)
                done.append(f"registered model {model.name} (left without versions) removed")
        return done


def decisive_first(figures: dict[str, float]) -> list[tuple[str, float]]:
    """`figures`' items, DECISIVE_METRICS first in their order, then the others in theirs."""
    rank = {name: place for place, name in enumerate(DECISIVE_METRICS)}
    return sorted(figures.items(), key=lambda item: rank.get(item[0], len(rank)))


def readable(value: float) -> float:
    """At most 7 significant digits, never coarser than 0.001: MLflow's run page shows a metric as stored,
    and 614.0577311077286 tok/s read as noise. Relative change below 1e-6, far inside any measurement's."""
    if not math.isfinite(value) or value == 0 or value.is_integer():
        return value
    return round(value, max(3, 6 - math.floor(math.log10(abs(value)))))


def close_stale_runs(uri: str) -> list[str]:
    """Close as KILLED the RUNNING runs whose owner on this host is dead, undoing what each registered;
    one line per run. Runs of other hosts, or without an owner, are left alone (their Prefect flow runs
    go by their own owner tags: engineforge/orchestration/stale_runs.py)."""
    probe(uri)
    mlflow_client = client(uri)
    experiment_ids = [experiment.experiment_id for experiment in mlflow_client.search_experiments()]
    if not experiment_ids:
        return []
    closed = []
    for run in mlflow_client.search_runs(
        experiment_ids, f"attributes.status = 'RUNNING' and tags.`{OWNER_TAG_PREFIX}host` = '{host()}'", max_results=1000,
    ):
        owner = tagged_owner(run.data.tags)
        if owner is not None and owner.is_dead():
            mlflow_client.set_tag(run.info.run_id, CLOSED_BY_TAG, f"{Owner.current().token()}: owner {owner.token()} is dead")
            mlflow_client.set_terminated(run.info.run_id, "KILLED")
            line = f"MLflow run {run.info.run_id} ({run.info.run_name}) of a dead process: KILLED"
            closed.append(line + "".join(f"; {undone}" for undone in TrackedRun(uri, run.info.run_id).undo_registration()))
    return closed


def owner_tags(owner: Owner) -> dict[str, str]:
    """The tags that name a run's owner, so that a later process can tell a live owner from a dead one."""
    return {owner_field(name): str(value) for name, value in
            (("host", owner.host), ("boot_id", owner.boot_id), ("pid", owner.pid), ("started", owner.started))}


def tagged_owner(tags: dict[str, str]) -> Owner | None:
    """The owner that a run's tags name; None for a run recorded without one."""
    try:
        return Owner(tags[owner_field("host")], tags[owner_field("boot_id")],
                     int(tags[owner_field("pid")]), int(tags[owner_field("started")]))
    except (KeyError, ValueError):
        return None


def _alias_version(mlflow_client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client.get_model_version_by_alias(name, alias).version)
    except MlflowException:  # no such alias yet
        return None


def _version_exists(mlflow_client, name: str, version: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_model_version(name, version)
        return True
    except MlflowException:
        return False


def _experiment_id(mlflow_client, uri: str, name: str) -> str:
    """The experiment's id, created where missing; either way it opens in MLflow's classic runs view."""
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        return mlflow_client.create_experiment(name, artifact_location=_artifact_location(uri, name),
                                               tags={EXPERIMENT_KIND_TAG: CLASSIC_KIND})
    if EXPERIMENT_KIND_TAG not in experiment.tags:  # one created before this tag was set, or by another tool
        mlflow_client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_KIND)
    return experiment.experiment_id


def _artifact_location(uri: str, name: str) -> str | None:
    # With a SQLite store, keep artifacts beside the database rather than in the current directory.
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri[len("sqlite:///"):]).resolve()
    return (database.parent / "mlartifacts" / name.replace("/", "_")).as_uri()


def _layout(recipe: Recipe) -> str:
    p = recipe.parallel
    return f"tp{p.tensor}-pp{p.pipeline}-ep{p.expert}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Sweeps: a parent run, one nested child run per variant (its PARENT_RUN_TAG), and the champion alias.
CHAMPION_ALIAS = "champion"
PREVIOUS_CHAMPION_ALIAS = "previous-champion"


def run_with_tag(uri: str, experiment: str, key: str, value: str):
    """The newest run of `experiment` whose tag `key` is `value`, or None."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = mlflow_client.search_runs([found.experiment_id], filter_string=f"tags.`{key}` = '{value}'",
                                     order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def version_with_content_key(uri: str, name: str, content_key: str) -> str | None:
    """The registered version of `name` holding the artifact with this content key, if any."""
    for version in client(uri).search_model_versions(f"name = '{name}'"):
        if version.tags.get(CONTENT_KEY_TAG) == content_key:
            return str(version.version)
    return None


def describe_version(uri: str, name: str, version: str, text: str) -> None:
    """A registered version's description (markdown, shown on its page in the registry)."""
    client(uri).update_model_version(name, str(version), description=text)


def version_aliases(uri: str, name: str, version: str) -> list[str]:
    """The aliases on one registered version now (what a user finds in the registry)."""
    return sorted(client(uri).get_model_version(name, str(version)).aliases)


def promote_champion(uri: str, name: str, version: str) -> str | None:
    """Point alias `champion` at `version`; the former champion (if another version) becomes
    `previous-champion`. Returns the former champion's version."""
    mlflow_client = client(uri)
    former = _alias_version(mlflow_client, name, CHAMPION_ALIAS)
    if former is not None and former != str(version):
        mlflow_client.set_registered_model_alias(name, PREVIOUS_CHAMPION_ALIAS, former)
    mlflow_client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
    return former
