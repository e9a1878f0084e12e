"""The tracking server's artifacts as the store's remote tier: compute each stage key once, anywhere.

A run that computed (or holds) a stage entry logs it under `artifact_path(stage)` and then tags
itself `engineforge.logged.<stage>` = key; the tag comes last, so a run carrying it holds the whole
entry. A worker whose local store lacks a key finds such a run in the experiment, downloads the
entry, verifies it against MANIFEST.json and commits it to its store like a computed one.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.tracking.mlflow_tags import logged
from engineforge.artifacts import transfer
from engineforge.artifacts.store import MANIFEST as STORE_MANIFEST
from engineforge.artifacts.store import Store, write_manifest

# Stages whose entries travel: the package stage's image lives in a Docker daemon, not in its entry.
STAGES = ("download", "shard", "build", "validate")
ENGINE = "engine"

log = logging.getLogger("engineforge")


def artifact_path(stage: str) -> str:
    return ENGINE if stage == "build" else f"stages/{stage}"


def enabled(log_engine: str, uri: str) -> bool:
    """`always`, or `auto` with a tracking server other hosts can reach (an http(s) URI)."""
    return log_engine == "always" or (log_engine == "auto" and uri.startswith(("http://", "https://")))


class RemoteTier:
    """The entries logged by the runs of one run's experiment (that run uploads into it)."""

    def __init__(self, mlflow_run: TrackedRun):
        self.mlflow_run = mlflow_run

    @cached_property
    def _experiment_id(self) -> str:
        return self.mlflow_run.read().info.experiment_id

    def logged_by(self, stage: str, key: str) -> str | None:
        """The id of the first run that logged the entry for `key`, or None."""
        runs = mlflow_runs.client(self.mlflow_run.uri).search_runs(
            [self._experiment_id], f"tags.`{logged(stage)}` = '{key}'",
            order_by=["attributes.start_time ASC"], max_results=1)
        return runs[0].info.run_id if runs else None

    def location(self, stage: str, key: str) -> str | None:
        """`runs:/<run>/<path>` of the entry logged under `key`, or None."""
        run_id = self.logged_by(stage, key)
        return f"runs:/{run_id}/{artifact_path(stage)}" if run_id else None

    def logged_manifests(self, keys: dict[str, str]) -> dict[str, dict[str, str]]:
        """For each stage -> key of `keys` logged in this experiment: where (`runs:/...`) and the sha256
        of its MANIFEST.json as the logging run recorded it in the tracking database (the lock file's
        `logged`, which `engineforge pull` checks)."""
        found = {}
        for stage, key in keys.items():
            source = self.location(stage, key) if stage in STAGES else None
            digest = source and transfer.recorded_manifest_digest(self.mlflow_run.uri, source, stage)
            if digest:
                found[stage] = {"uri": source, "manifest_sha256": digest}
        return found

    def fetch(self, store: Store, stage: str, key: str) -> dict[str, Any] | None:
        """Commit the logged entry for `key` to `store`; return its store manifest, or None when none
        is logged or it never matched its MANIFEST.json (the stage is then computed here)."""
        source = self.location(stage, key) if stage in STAGES else None
        if source is None:
            return None
        try:
            with store.writing(stage, key, replace=True) as workdir:
                transfer.download(self.mlflow_run.uri, source, workdir, key, transfer.recorded_manifest_digest(self.mlflow_run.uri, source, stage))
                _adopt(workdir)
        except transfer.ArtifactMismatch as error:
            log.warning("computing %s here: %s", stage, error)
            return None
        return store.manifest(stage, key)

    def upload(self, store: Store, stage: str, key: str) -> str | None:
        """Log the entry for `key` into this run unless a run already holds it; return where it is."""
        entry = store.manifest(stage, key)
        if stage not in STAGES or entry is None or not _self_contained(entry.get("outputs"), f"{store.root}/"):
            return None
        found = self.location(stage, key)
        if found is None:
            found = transfer.upload(self.mlflow_run, store.entry(stage, key), artifact_path(stage), stage, key)
            self.mlflow_run.set_tags({logged(stage): key})
        return found


def _adopt(workdir: Path) -> None:
    """The store manifest's mtimes are the computing host's: record this copy's, whose bytes were
    just checked against MANIFEST.json, so the store's cheap check trusts them."""
    recorded = json.loads((workdir / STORE_MANIFEST).read_text())
    for name, record in recorded.get("files", {}).items():
        record["mtime_ns"] = (workdir / name).stat().st_mtime_ns
    write_manifest(workdir, recorded)


def _self_contained(value: Any, store_root: str) -> bool:
    """Whether an entry's outputs name no file outside the store: a local model directory or the
    hub's cache means nothing on another host (paths of store entries, such as a command line that
    served the build, name entries every host holds by key)."""
    if isinstance(value, dict):
        return all(_self_contained(item, store_root) for item in value.values())
    if isinstance(value, list):
        return all(_self_contained(item, store_root) for item in value)
    return not (isinstance(value, str) and value.startswith("/") and not value.startswith(store_root))
