"""A small sweep of the tiny model on the CPU (two build.max_batch_size variants at one load point), a
listener keeping the links a run prints, and `demo_sweep`: that sweep run once per session against a real
`mlflow server` and the session's real `prefect server`, read by the sweep flow test (tests/sweep) and the
browser test of its pages (tests/ui) alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

DEMO_SWEEP = "sweep-flow-test"  # the recipe's name: its MLflow experiment, registered model and Prefect runs
DEMO_GATE_MS = 600000  # a TTFT gate every variant passes (tests/sweep/test_sweep_flow.py tightens it to fail)


def sweep_text(model_dir, uri: str, name: str = DEMO_SWEEP, ttft_gate_ms: float | None = None,
               repeats: int = 2) -> str:
    gates = f"  gates:\n    max_ttft_ms_p99: {ttft_gate_ms}\n" if ttft_gate_ms is not None else ""
    return f"""name: {name}
model:
  source: {model_dir}
  dtype: float32
runtime: transformers
serve:
  device: cpu
  startup_timeout_s: 180
validate:
  requests: 4
  concurrency: 2
  warmup_requests: 1
  max_tokens: 8
{gates}tracking:
  uri: {uri}
sweep:
  repeats: {repeats}
  matrix:
    build.max_batch_size: [1, 4]
"""


class LinkRecorder:
    """A progress listener keeping the links in the order they were announced."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def run_linked(self, label, url):
        self.lines.append((label, url))

    def stage_started(self, *event):  # every listener takes the stage events; links are all this one keeps
        pass

    stage_finished = stage_started


@dataclass
class DemoSweep:
    """The session's demo sweep as it finished: its summary, the links it printed, its MLflow server."""

    summary: dict
    links: list[tuple[str, str]]
    uri: str  # the `mlflow server`'s address (SQLite store, proxied artifacts)
    store: Path  # the content-addressed store it wrote
    model_dir: Path
    root: Path

    @property
    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)

    def recipe(self, ttft_gate_ms: float = DEMO_GATE_MS) -> str:
        return sweep_text(self.model_dir, self.uri, ttft_gate_ms=ttft_gate_ms)

    @property
    def no_docker(self) -> str:
        return f"unix://{self.root / 'no-docker.sock'}"  # nobody listens: the package stage skips


@pytest.fixture(scope="session")
def demo_sweep(prefect_server, tiny_model_dir, tmp_path_factory):
    """Two variants (build.max_batch_size 1 and 4), two repeats each, a TTFT gate both pass; no Docker
    daemon (the champion's package stage skips). Tests that add runs to its MLflow store (a rerun, a
    failing sweep) are marked `extends_demo_sweep` and run after every other test (tests/conftest.py),
    so the pages and records the others read are the first sweep's alone."""
    from prefect.logging.handlers import APILogHandler

    from engineforge.stages import progress
    from engineforge.artifacts import server
    from engineforge.processes.serving import free_port
    from flows.sweep import sweep

    root = tmp_path_factory.mktemp("demo-sweep")
    uri = server.start(free_port(), directory=root / "tracking")
    links = LinkRecorder()
    try:
        done = DemoSweep({}, links.lines, uri, root / "store", tiny_model_dir, root)
        with pytest.MonkeyPatch.context() as patch, prefect_server.client_settings():
            patch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the recipe's tracking server
            patch.setenv("DOCKER_HOST", done.no_docker)
            progress.subscribe(links)
            try:
                done.summary = sweep(recipe_yaml=done.recipe(), recipe_origin="sweep.yaml", store_root=str(done.store))
            finally:
                progress.unsubscribe(links)
            APILogHandler().flush()  # the flow runs' logs are on the server before a page asks for them
        yield done
    finally:
        server.stop(root / "tracking")
