"""Running one stage against the content-addressed store.

A stage is cached when its key's entry exists and its files still match their records; otherwise
it runs into a temporary directory that becomes the entry on success (a refresh or a damaged entry
is replaced only then, so a failed or killed attempt keeps the last good result). One process at a
time computes a key: two runs wanting it at once compute it once.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from engineforge.stages import progress
from engineforge.errors import StageFailed
from engineforge.stage_result import StageOutput, StageResult, Status
from engineforge.artifacts.store import Store, file_records, write_manifest


def run_stage(
    store: Store,
    stage: str,
    key: str,
    produce: Callable[[Path], StageOutput],
    refresh: bool = False,
    keep_on_failure: tuple[str, ...] = (),
    needed_bytes: int | None = None,
) -> StageResult:
    """Reuse the intact entry for `key`, or call `produce(workdir)` and commit its output atomically.

    Paths in `keep_on_failure` (relative to the workdir: tool and server logs) are copied to
    `store.failure_dir(stage)` when `produce` fails, since the workdir itself is discarded.
    `needed_bytes` (what the stage will write, when known) is checked against the free space first.
    """
    progress.started(stage, key)
    started = time.perf_counter()
    with store.lock(stage, key):
        manifest = None if refresh else _reusable(store, stage, key)
        status: Status = "cached"
        if manifest is None and not refresh and store.remote is not None:  # another host computed it
            manifest, status = store.remote.fetch(store, stage, key), "fetched"
        if manifest is None:
            store.ensure_free_space(stage, needed_bytes)
            shutil.rmtree(store.failure_dir(stage), ignore_errors=True)
            with store.writing(stage, key, replace=True) as workdir:
                try:
                    output = produce(workdir)
                except BaseException as error:
                    _keep(workdir, keep_on_failure, store.failure_dir(stage))
                    if keep_on_failure and isinstance(error, StageFailed):
                        _name_kept_copy(error, workdir, store.failure_dir(stage))
                    raise
                outputs = _relative_paths(output.outputs, workdir)
                manifest = {"stage": stage, "key": key, "summary": output.summary, "outputs": outputs,
                            "skipped": output.skipped, "files": file_records(workdir)}
                write_manifest(workdir, manifest)
            status = "ran"
    result = StageResult(
        stage=stage,
        status="skipped" if manifest.get("skipped") else status,
        key=key,
        path=str(store.entry(stage, key)),
        duration_s=round(time.perf_counter() - started, 3),
        summary=manifest["summary"],
        outputs=manifest["outputs"],
    )
    return result  # announced (progress.finished) by its task once recorded and judged


def _reusable(store: Store, stage: str, key: str) -> dict[str, Any] | None:
    """The entry's manifest when its files still match their records; a damaged entry is recomputed."""
    if not store.entry(stage, key).exists():
        return None
    problems = store.problems(stage, key)
    if problems:
        logging.getLogger("engineforge").warning("recomputing %s: %s", stage, "; ".join(problems[:3]))
        return None
    return store.manifest(stage, key)


def _name_kept_copy(error: StageFailed, workdir: Path, kept: Path) -> None:
    """A failure's message names the kept copy of its logs: the workdir it named is discarded."""
    error.cause = error.cause.replace(str(workdir), str(kept))
    error.args = (f"stage {error.stage} failed: {error.cause}", *error.args[1:])


def _keep(workdir: Path, names: tuple[str, ...], target: Path) -> None:
    for name in names:
        source = workdir / name
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        elif source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / name)


def _relative_paths(value: Any, workdir: Path) -> Any:
    """Paths inside the workdir, made relative: the workdir is renamed when the stage commits."""
    if isinstance(value, dict):
        return {key: _relative_paths(item, workdir) for key, item in value.items()}
    if isinstance(value, list):
        return [_relative_paths(item, workdir) for item in value]
    if isinstance(value, str) and value.startswith(f"{workdir}/"):
        return value[len(str(workdir)) + 1:]
    return value
