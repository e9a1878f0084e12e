"""Revision watcher: rebuild recipes that follow a moving hub revision when it moves.

For each recipe whose `model.source` is `hf://ORG/NAME@BRANCH` (or a tag), look up the commit
the branch points at; when it differs from the commit last submitted for that recipe (kept in
the Prefect Variable `engineforge-last-built-<recipe>`), submit the recipe pinned to the new
commit to the model-to-deployment deployment. Scheduled in prefect.yaml (`watch-revisions`).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.variables import Variable

from engineforge.sources import revisions
from engineforge.errors import UserError
from engineforge.orchestration import submission
from engineforge.recipe.file import load_recipe
from tasks.revision import hub_commit_task


@flow(name="watch-revisions", log_prints=True)
def watch_revisions(
    recipes: list[str] = ["recipes/*.yaml"],  # noqa: B006 (Prefect parameters are copied per run)
    deployment: str = submission.DEFAULT_DEPLOYMENT,
) -> list[dict[str, Any]]:
    """Submit each moving-revision recipe pinned to its branch's new commit; return what was submitted."""
    submitted, problems = [], []
    for path in _recipe_paths(recipes, problems):
        try:
            run = _check(path, deployment)
        except UserError as error:
            problems.append(str(error))
            print(f"{path}: {error}")
            continue
        if run:
            submitted.append(run)
    if problems:  # the other recipes were still checked; the run fails so that someone looks
        raise UserError("\n".join(problems))
    return submitted


def _check(path: Path, deployment: str) -> dict[str, Any] | None:
    text = path.read_text(encoding="utf-8")
    recipe = load_recipe(path)
    source = revisions.moving_source(recipe)
    if source is None:
        return None
    commit = hub_commit_task(source)
    name = revisions.variable_name(recipe.name)
    last = Variable.get(name, default=None)
    last_commit = last.get("commit") if isinstance(last, dict) and last.get("source") == recipe.model.source else None
    if last_commit == commit:
        print(f"{path}: {source.ref} is still at {commit[:12]}")
        return None
    run = submission.submit(
        deployment,
        submission.recipe_parameters(revisions.pinned_recipe(text, commit), str(path)),
        tags=["engineforge", f"recipe:{recipe.name}", "revision-watcher"],
        idempotency_key=f"{name}:{last_commit}->{commit}",  # a retried watcher run never submits twice
    )
    Variable.set(name, {"source": recipe.model.source, "commit": commit, "flow_run_id": str(run.id)}, overwrite=True)
    print(f"{path}: {source.ref} moved to {commit[:12]} (last built: {last_commit[:12] if last_commit else 'never'}); "
          f"submitted flow run {run.id}")
    return {"recipe": str(path), "name": recipe.name, "commit": commit, "previous": last_commit, "flow_run_id": str(run.id)}


def _recipe_paths(patterns: list[str], problems: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            problems.append(f"{pattern}: no recipe file matches")
        paths += [Path(match) for match in matches if Path(match) not in paths]
    return paths
