"""Moving a directory to and from a run's artifacts through MLflow's own artifact APIs.

Uploads go one file at a time (a 2 GB engine never sits in memory or in a temporary archive); with
a proxied `mlflow server` whose artifact store supports it (S3, GCS, Azure), files of at least
MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE go up in MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE parts, and a
store without multipart support (a local --artifacts-destination) takes one streamed PUT per file
(MLflow's HttpArtifactRepository falls back by itself). MANIFEST.json goes up last, so a logged
directory without it is an interrupted upload. A download lands in a temporary directory and is
moved into place only once it matches its manifest; a mismatch is fetched once more, then reported.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.artifacts import manifest
from engineforge.errors import UserError
from engineforge.tracking.mlflow_tags import manifest_sha256
from engineforge.artifacts.store import sha256_file

ATTEMPTS = 2  # a mismatch may be a torn transfer: fetch once more before reporting it
# The sha256 of a logged directory's MANIFEST.json, set on the logging run as it goes up. It lives in
# the tracking database, not beside the files: whoever can rewrite the artifacts (a weight and the
# MANIFEST.json that vouches for it) does not thereby change what the download is checked against.

log = logging.getLogger("engineforge")


class ArtifactMismatch(UserError):
    """A downloaded artifact differs from its MANIFEST.json; it was discarded, never served."""


def upload(mlflow_run: TrackedRun, directory: Path, artifact_path: str, stage: str, key: str) -> str:
    """Log every file of `directory` under `artifact_path` of the run, then MANIFEST.json; return
    the artifact's `runs:/` URI."""
    os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")  # where the artifact store has it
    client, run_id = mlflow_runs.client(mlflow_run.uri), mlflow_run.run_id
    described = manifest.describe(directory, stage, key)
    with _progress(f"uploading {stage}", sum(r["size"] for r in described["files"].values())) as advance:
        for name, record in described["files"].items():
            parent = posixpath.dirname(name)
            client.log_artifact(run_id, str(directory / name), posixpath.join(artifact_path, parent) if parent else artifact_path)
            advance(record["size"])
    with tempfile.TemporaryDirectory() as scratch:
        written = manifest.write(described, Path(scratch))
        client.log_artifact(run_id, str(written), artifact_path)
        client.set_tag(run_id, manifest_sha256(stage), sha256_file(written))
    return f"runs:/{run_id}/{artifact_path}"


def recorded_manifest_digest(uri: str, artifact_uri: str, stage: str) -> str | None:
    """The MANIFEST.json digest the run that logged `artifact_uri` (`runs:/RUN/...`) recorded for
    `stage`, or None (logged before the digest was recorded, or not a runs:/ URI)."""
    if not artifact_uri.startswith("runs:/"):
        return None
    run_id = artifact_uri[len("runs:/"):].split("/", 1)[0]
    return mlflow_runs.client(uri).get_run(run_id).data.tags.get(manifest_sha256(stage))


def download(uri: str, artifact_uri: str, into: Path, key: str | None = None, manifest_sha256: str | None = None) -> Path:
    """Download `artifact_uri` (runs:/ or mlflow-artifacts:) into the empty directory `into`, verified
    against its MANIFEST.json, and that against `key` and `manifest_sha256` (recorded out of band),
    when given. Raises ArtifactMismatch when it never matches."""
    from mlflow.artifacts import download_artifacts

    _bar_only_on_a_terminal()
    into.mkdir(parents=True, exist_ok=True)
    found: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        scratch = into.parent / f".partial-{into.name}-{uuid.uuid4().hex[:8]}"
        try:
            local = Path(download_artifacts(artifact_uri=artifact_uri, dst_path=str(scratch), tracking_uri=uri))
            found = manifest.problems(local, key)
            if not found and manifest_sha256 and sha256_file(local / manifest.MANIFEST) != manifest_sha256:
                found = [f"{manifest.MANIFEST}: sha256 differs from the one its run recorded when it was logged"]
            if not found:
                for child in local.iterdir():
                    child.rename(into / child.name)
                return into
            log.info("%s attempt %d of %d does not match its %s: %s", artifact_uri, attempt, ATTEMPTS,
                        manifest.MANIFEST, "; ".join(found[:3]))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    raise ArtifactMismatch(f"{artifact_uri} does not match its {manifest.MANIFEST} after {ATTEMPTS} downloads "
                           f"({'; '.join(found[:3])}); nothing was kept: re-log it from a host that has it")


def download_file(mlflow_run: TrackedRun, name: str, into: Path) -> Path:
    """The artifact file `name` of the run, downloaded into the directory `into`, unverified."""
    _bar_only_on_a_terminal()
    return Path(mlflow_runs.client(mlflow_run.uri).download_artifacts(mlflow_run.run_id, name, str(into)))


def _bar_only_on_a_terminal() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", str(sys.stderr.isatty()).lower())  # not in worker logs


class _progress:
    """A rich progress bar over bytes on a terminal; nothing in a worker's log."""

    def __init__(self, description: str, total: int):
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        self.bar = Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                            transient=True, disable=not sys.stderr.isatty())
        self.description, self.total = description, total

    def __enter__(self):
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)
        return lambda count: self.bar.advance(task, count)

    def __exit__(self, *exc) -> None:
        self.bar.stop()
