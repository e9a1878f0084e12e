import json
from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.markdown import Markdown

from engineforge.errors import UserError
from engineforge.orchestration.submission import DEFAULT_DEPLOYMENT
from engineforge.recipe_checks import check_recipes
from engineforge.stages.pipeline import NAMES


def command(
    recipes: list[Path] = typer.Argument(..., help="Recipe YAML files to submit."),
    deployment: str = typer.Option(DEFAULT_DEPLOYMENT, "--deployment", help="FLOW/DEPLOYMENT, or a deployment of model-to-deployment."),
    params: list[str] = typer.Option([], "--param", help="Extra flow parameter KEY=VALUE; VALUE is read as YAML (numbers, true/false, lists)."),
    refresh: list[str] = typer.Option([], "--refresh", help=f"Rerun a stage even if cached: {', '.join(NAMES)} or all."),
    watch: bool = typer.Option(False, "--watch", help="Follow the runs until they end and print their summaries."),
    as_json: bool = typer.Option(False, "--json", help="Print the submitted runs (and with --watch their final states) as JSON."),
) -> int:
    """Submit recipes to a Prefect server's model-to-deployment deployment (its workers run them)."""
    from engineforge.orchestration import submission

    loaded, problems = check_recipes(recipes)  # exactly `engineforge validate`'s errors, before anything is sent
    if problems:
        raise UserError("\n".join(problems))
    extra = _parse_params(params)
    submission.check_extra_parameters(extra)
    unknown = sorted(set(refresh) - set(NAMES) - {"all"})
    if unknown:
        raise typer.BadParameter(f"unknown stage {', '.join(unknown)}; choose from {', '.join(NAMES)} or all", param_hint="--refresh")
    if refresh:
        extra["refresh"] = refresh
    submission.require_server()
    console = Console(stderr=as_json, highlight=False, soft_wrap=True)
    runs = []
    for path, recipe in loaded:
        parameters = submission.recipe_parameters(path.read_text(encoding="utf-8"), str(path), path.resolve().parent)
        run = submission.submit(deployment, {**parameters, **extra}, tags=["engineforge", f"recipe:{recipe.name}"],
                                on_retry=lambda why, path=path: console.print(f"{path}: {why}", markup=False))
        url = submission.flow_run_url(run.id)
        runs.append({"recipe": str(path), "name": recipe.name, "flow_run_id": str(run.id), "flow_run_name": run.name, "url": url})
        console.print(f"submitted {path} ({recipe.name}): flow run {run.id} ({run.name})" + (f"\n  {url}" if url else ""), markup=False)
    if not watch:
        if as_json:
            print(json.dumps(runs, indent=2))
        return 0
    return _watch(runs, console, as_json)


def _watch(runs: list[dict], console: Console, as_json: bool) -> int:
    from engineforge.orchestration import submission

    names = {run["flow_run_id"]: run["name"] for run in runs}
    final = submission.follow(
        [run["flow_run_id"] for run in runs],
        lambda flow_run: console.print(f"{names[str(flow_run.id)]}: {flow_run.state.name if flow_run.state else 'no state'}", markup=False),
    )
    failed = []
    for run in runs:
        flow_run = final[run["flow_run_id"]]
        run["state"] = flow_run.state.name
        run["message"] = flow_run.state.message
        run["summary"] = submission.summary_artifact(flow_run.id)
        if run["summary"]:
            console.print(Markdown(run["summary"]))
        if not flow_run.state.is_completed():
            failed.append(run)
    if as_json:
        print(json.dumps(runs, indent=2))
    for run in failed:  # a failed run exits 1 with one line per run, like `engineforge run`
        cause = " ".join((run["message"] or "no message").split())
        Console(stderr=True, highlight=False).print(f"error: {run['name']} ({run['flow_run_id']}) ended {run['state']}: {cause}", markup=False)
    return 1 if failed else 0


def _parse_params(params: list[str]) -> dict:
    values = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param {item!r}: expected KEY=VALUE, e.g. --param refresh=[validate]")
        try:
            values[key.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            raise UserError(f"--param {item!r}: VALUE is not valid YAML; quote it") from None
    return values
