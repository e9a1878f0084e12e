"""`engineforge run` on a recipe with a `sweep:` section: the sweep flow, its live lines and its table.

Not a command of its own (run.py hands sweep recipes here), so run.py stays about one recipe.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console

from engineforge.cli.progress_view import STATUS_STYLE
from engineforge.errors import RunFailed, UserError
from engineforge.recipe.schema import Recipe


class LiveVariants:
    """One line per finished stage, prefixed with its variant (children run side by side)."""

    def __init__(self, console: Console):
        self.console = console

    def stage_started(self, stage, key):
        pass

    def stage_finished(self, result):
        from engineforge.sweep import CURRENT_VARIANT

        style = STATUS_STYLE.get(result.status, "white")
        variant = CURRENT_VARIANT.get() or "sweep"
        self.console.print(f"{variant:<14} [{style}]{result.status:>7}[/] {result.stage:<9} {result.duration_s:7.2f}s  "
                           f"{result.summary}")

    def run_linked(self, label: str, url: str) -> None:
        """The sweep's own links unprefixed (they come first); a child's under its variant."""
        from engineforge.sweep import CURRENT_VARIANT

        variant = CURRENT_VARIANT.get()
        line = f"{variant:<14} {label}: {url}" if variant else f"sweep {label}: {url}"
        self.console.print(line, markup=False, soft_wrap=True)  # an address stays on one line


def check(loaded: Recipe, path: Path) -> None:
    """Every variant expanded and planned (UserError naming the first bad one), before Prefect starts."""
    from engineforge.sweep.plan import plan_sweep

    plan_sweep(loaded, path.resolve().parent)


def dry_run(loaded: Recipe, path: Path, as_json: bool) -> int:
    """Every variant's dry run; a variant that cannot run says why in one line and the rest still show."""
    from engineforge.stages.dry_run import dry_run as plan_stages
    from engineforge.stages.dry_run import render
    from engineforge.sweep.expand import expand

    console = Console(highlight=False, soft_wrap=True)
    planned = {}
    for variant in expand(loaded, base_dir=path.resolve().parent):
        try:
            planned[variant.name] = plan_stages(variant.recipe, path.resolve().parent)
        except UserError as error:
            planned[variant.name] = {"error": str(error)}
    if as_json:
        print(json.dumps({"recipe": loaded.name, "variants": planned}, indent=2))
        return 0
    for name, plan in planned.items():
        console.rule(f"variant {name}")
        console.print(f"cannot run: {plan['error']}", markup=False) if "error" in plan else render(plan, console)
    return 0


def run_sweep(path: Path, refresh: list[str], store: Path | None, as_json: bool, deployment: str | None) -> int:
    from engineforge.stages import progress
    from flows.sweep import sweep

    console = Console(stderr=as_json, highlight=False)
    if deployment:
        console.print(f"variants run as deployment {deployment} on the server's workers ({os.environ['PREFECT_API_URL']})")
    listener = LiveVariants(console)
    progress.subscribe(listener)
    try:
        summary = sweep(recipe_yaml=path.read_text(), recipe_origin=str(path), base_dir=str(path.resolve().parent),
                        refresh=refresh, store_root=str(store.resolve()) if store else None, deployment=deployment)
    except RunFailed as failure:  # no variant passed: the table still says why
        report(failure.summary, console, as_json)
        raise
    finally:
        progress.unsubscribe(listener)
    report(summary, console, as_json)
    return 0


def sweep_deployment(user_api: bool) -> str | None:
    """The deployment children run as: model-to-deployment's, when the user's own Prefect server has it."""
    if not user_api:
        return None
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from engineforge.orchestration.submission import DEFAULT_DEPLOYMENT

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(DEFAULT_DEPLOYMENT)
        except ObjectNotFound:
            return None
    return DEFAULT_DEPLOYMENT


def report(summary: dict, console: Console, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    console.print(summary["table"], markup=False, soft_wrap=True)
    for variant in summary["variants"]:
        reused = [stage for stage, status in variant["stages"].items() if status == "cached"]
        registered = f"; {variant['registered']}" if variant.get("registered") else ""
        console.print(f"{variant['variant']}: gates {variant['gates']}; reused {', '.join(reused) or 'nothing'}{registered}")
    promoted = summary.get("promoted")
    if promoted:
        former = f" (previous-champion: version {promoted['previous_champion']})" if promoted["previous_champion"] else ""
        console.print(f"champion {summary['champion']}: {promoted['model']} version {promoted['version']} @champion{former}")
    timing = summary["timing"]
    console.print(f"sweep {summary['status']} in {summary['duration_s']:.1f}s; verdict {summary['verdict']} "
                  f"(champion {summary['champion'] or 'none'}); orchestration overhead "
                  f"{timing['sweep_overhead_fraction']:.0%} of the wall time (critical path {timing['sweep_critical_path_s']:.1f}s)")
    mlflow = summary["mlflow"]
    console.print(f"MLflow parent run {mlflow['run_id']} in experiment {mlflow['experiment']} ({mlflow['tracking_uri']})")
