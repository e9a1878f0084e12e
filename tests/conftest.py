"""Shared fixtures: one Prefect test harness per session, one tiny synthetic model, temporary MLflow stores."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

# Docker daemon, engineforge base and worker images and local registries for the packaging tests.
from conftest_docker import auth_registry, base_image, docker_client, registry, start_docker_work, worker_image  # noqa: E402,F401

# A real `prefect server start`, the deployments of prefect.yaml and `engineforge worker` processes.
from prefect_services import (  # noqa: E402,F401
    deployments,
    postgres_deployments,
    prefect_server,
    worker_a_runs,
    worker_stores,
    workers,
)

# The demo sweep (two variants of the tiny model) run once, for the sweep flow test and the browser test.
from sweep_helpers import demo_sweep  # noqa: E402,F401

from engineforge.recipe.schema import SyntheticModel
from engineforge.recipe.file import parse_recipe

REPO = Path(__file__).resolve().parent.parent
PREFECT_HOME = pytest.StashKey[str]()  # the session's local-server directory, when the tests chose it
TINY_SPEC = SyntheticModel()  # the tiny-llama shape: 2 layers, hidden 64, GQA 4/2, vocab 512


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A synthetic Llama checkpoint with tokenizer, written once per session."""
    from engineforge.sources.synthetic import write_synthetic_model

    return write_synthetic_model(TINY_SPEC, tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="module")
def tiny_served(tiny_model_dir, tmp_path_factory):
    """A real `transformers serve` (CPU, continuous batching) of the tiny model, per test module: (url, model)."""
    from engineforge.processes.serving import LOOPBACK, free_port, running_server

    port = free_port()
    argv = ["transformers", "serve", str(tiny_model_dir), "--host", LOOPBACK, "--port", str(port),
            "--device", "cpu", "--dtype", "float32", "--continuous-batching", "--cb-num-blocks", "4"]
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with running_server(argv, f"http://{LOOPBACK}:{port}", log, 180) as url:
        yield url, str(tiny_model_dir)


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API (temporary SQLite database) for every flow run in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def mlflow_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def no_docker(monkeypatch, tmp_path) -> str:
    """Point the Docker SDK at a socket nobody listens on (the package stage must say it skipped)."""
    address = f"unix://{tmp_path / 'no-docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", address)
    return address


def recipe_text(model_source: str, name: str = "spine-test", **sections: str) -> str:
    """A small recipe for tests; extra sections are given as YAML snippets."""
    body = {
        "validate": "validate:\n  requests: 4\n  concurrency: 2\n  warmup_requests: 1\n  max_tokens: 8\n",
        "serve": "serve:\n  device: cpu\n  startup_timeout_s: 180\n",
    }
    body.update(sections)
    return f"name: {name}\nmodel:\n  source: {model_source}\n  dtype: float32\nruntime: transformers\n" + "".join(body.values())


@pytest.fixture
def make_recipe():
    def make(model_source: str, **sections: str):
        text = recipe_text(model_source, **sections)
        return text, parse_recipe(text)

    return make


def pytest_configure(config):
    # A suite started in the background of a shell without job control inherits SIGINT ignored, and so would
    # every `engineforge` it starts: the Ctrl-C and worker-stop tests would then test nothing. Undo that here.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # `engineforge run` without PREFECT_API_URL starts the local server, which outlives the run by design
    # (an in-process run under Prefect's test harness does: the harness sets settings, not the variable).
    # Under the tests it lives in this session's directory, not the checkout's, and stops with the session.
    if "ENGINEFORGE_PREFECT_HOME" not in os.environ:
        os.environ["ENGINEFORGE_PREFECT_HOME"] = config.stash[PREFECT_HOME] = tempfile.mkdtemp(prefix="engineforge-tests-prefect-")
    # Tests must never reach the public hub; the hub client fails fast instead of hanging.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def pytest_collection_modifyitems(session, config, items):
    """Tests marked `extends_demo_sweep` add runs to the shared demo sweep's MLflow store: they run after
    every other test, so those reading it (its pages, its records) see the first sweep's runs alone."""
    later = [item for item in items if item.get_closest_marker("extends_demo_sweep")]
    items[:] = [item for item in items if not item.get_closest_marker("extends_demo_sweep")] + later


def pytest_collection_finish(session):
    if not session.config.option.collectonly:
        start_docker_work(session.items)  # the Docker images build beside the tests before their first user


def pytest_unconfigure(config):
    home = config.stash.get(PREFECT_HOME, None)
    if home:
        from engineforge.orchestration import local_prefect

        local_prefect.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def gated_run(tmp_path, monkeypatch):
    """A recorded validate result's context: `start(gates)` gives (recipe, ctx) for a recipe whose
    validate.gates are the YAML lines `gates`, its run started in a real MLflow SQLite store."""
    from engineforge.tracking import mlflow_runs
    from engineforge.runtimes import get_runtime
    from engineforge.stages.context import RunContext

    def start(gates: str):
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        text = f"name: gated\nmodel:\n  source: synthetic:tiny-llama\nvalidate:\n  gates:\n{gates}"
        recipe = parse_recipe(text)
        return recipe, RunContext(runtime=get_runtime("transformers"), store_root=str(tmp_path / "store"),
                                  mlflow_run=mlflow_runs.start_run(recipe, text))

    return start
