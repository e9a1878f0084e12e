"""Screenshots of the pages a user opens after a sweep, for issue 24's before and after pictures.

Runs the demo sweep recipe (recipes/tiny-llama-sweep.yaml, one load point) of whichever EngineForge tree
is first on PYTHONPATH against a fresh `mlflow server` and `prefect server` (with their UIs), then opens,
in the headless Chromium of tests/headless_chromium.py, the addresses that tree gives a user (its printed
MLflow links carry `?workflowType=...` where it has one) and saves small PNGs into OUT:

    PYTHONPATH=<tree>:<this checkout>/tests python docs/notes/issue-24/screenshots.py OUT [--repeats N]

Nothing is asserted: a page whose expected text does not come within a minute is shot as it is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

UI_WIDTH, COLOURS = 1200, 64  # what keeps a page's PNG near 100 KB and its text readable


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--repeats", type=int, help="sweep.repeats, for trees whose recipes have it")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="issue24-shots-"))
    servers = []
    try:
        mlflow_port, prefect_port = free_port(), free_port()
        uri = f"http://127.0.0.1:{mlflow_port}"
        servers.append(serve(work / "mlflow.log", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                             "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
                             "--artifacts-destination", str(work / "artifacts")))
        os.environ.update(PREFECT_HOME=str(work / "prefect"), PREFECT_API_URL=f"http://127.0.0.1:{prefect_port}/api",
                          DOCKER_HOST=f"unix://{work / 'no-docker.sock'}")  # nobody listens: the package stage skips
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        servers.append(serve(work / "prefect.log", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(prefect_port)))
        wait_up(f"{uri}/health")
        wait_up(f"http://127.0.0.1:{prefect_port}/api/health")
        shoot(run_sweep(uri, work, args.repeats), uri, f"http://127.0.0.1:{prefect_port}", args.out, work)
    finally:
        for process in servers:
            _serving().stop_process_group(process, 10)
        shutil.rmtree(work, ignore_errors=True)


def run_sweep(uri: str, work: Path, repeats: int | None) -> str:
    """The sweep's MLflow experiment id."""
    from flows.sweep import sweep

    recipe = yaml.safe_load(Path("recipes/tiny-llama-sweep.yaml").read_text())
    recipe["tracking"]["uri"] = uri
    recipe["sweep"]["load"] = recipe["sweep"]["load"][-1:]  # concurrency 8: the point the figures came from
    if repeats:
        recipe["sweep"]["repeats"] = repeats
    sweep(recipe_yaml=yaml.safe_dump(recipe), recipe_origin="recipes/tiny-llama-sweep.yaml", store_root=str(work / "store"))
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri).get_experiment_by_name(recipe["name"]).experiment_id


def shoot(experiment: str, uri: str, prefect: str, out: Path, work: Path) -> None:
    from headless_chromium import Page, chromium_or_skip
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    query = _classic_query()
    runs = client.search_runs([experiment])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    model = parent.data.tags.get("engineforge.recipe") or "tiny-llama-sweep"
    champion = client.get_model_version_by_alias(model, "champion")
    champion_run = client.get_run(champion.run_id)
    packaged = next(r for r in runs if "engineforge.sweep.packaged" in r.data.tags)
    page = Page(chromium_or_skip(), work / "chromium")
    try:
        def shot(name: str, url: str, *needles: str, scroll_to: str | None = None, click: str | None = None):
            page.open(url)
            if click:
                _quietly(page.wait_for, click, timeout_s=60)
                page.click(click)
            _quietly(page.wait_for, *needles, timeout_s=60, scroll_to=scroll_to)
            _small(page.screenshot(name), out / f"{name}.png")

        run_page = f"{uri}/#/experiments/{experiment}/runs/{{}}{query}"
        shot("mlflow-sweep-parent", run_page.format(parent.info.run_id), parent.info.run_name, "Metrics")
        shot("mlflow-runs-table", f"{uri}/#/experiments/{experiment}{query}", parent.info.run_name)  # children folded
        shot("mlflow-champion-run", run_page.format(champion.run_id), champion_run.info.run_name, "Description")
        shot("mlflow-champion-metrics", run_page.format(champion.run_id), "Metrics (", scroll_to="Metrics (")
        shot("mlflow-registered-version", f"{uri}/#/models/{model}/versions/{champion.version}{query}",
             f"Version {champion.version}")
        flow_run = f"{prefect}/runs/flow-run/{{}}"
        if "engineforge.prefect.flow_run_id" in parent.data.tags:
            shot("prefect-sweep-parent", flow_run.format(parent.data.tags["engineforge.prefect.flow_run_id"]), "Completed")
        shot("prefect-champion-child", flow_run.format(champion_run.data.tags["engineforge.prefect.flow_run_id"]),
             "validate")
        shot("prefect-package-task-runs", flow_run.format(packaged.data.tags["engineforge.prefect.flow_run_id"]),
             "package", click="Task Runs")
    finally:
        page.close()


def _classic_query() -> str:
    try:
        from engineforge.orchestration.run_artifacts import CLASSIC_VIEW_QUERY
    except ImportError:  # a tree from before the links asked for MLflow's classic view
        return ""
    return CLASSIC_VIEW_QUERY


def _quietly(wait, *args, **kwargs) -> None:
    try:
        wait(*args, **kwargs)
    except AssertionError as missing:
        print(str(missing).splitlines()[0], file=sys.stderr)


def _small(shot: Path, to: Path) -> None:
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    image = image.resize((UI_WIDTH, round(image.height * UI_WIDTH / image.width)), Image.LANCZOS)
    image.quantize(COLOURS).save(to, optimize=True)


def serve(log: Path, *command: str) -> subprocess.Popen:
    executable = Path(sys.executable).with_name(command[0])
    return subprocess.Popen([str(executable), *command[1:]], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_up(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f} s")


def free_port() -> int:
    return _serving().free_port()


def _serving():
    try:
        from engineforge.processes import serving
    except ImportError:  # a tree from before engineforge/processes/
        from engineforge import serving
    return serving


if __name__ == "__main__":
    main()
