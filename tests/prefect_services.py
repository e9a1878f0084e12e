"""Fixtures for the Prefect-in-production tests: one real `prefect server start` (SQLite, loopback,
started as engineforge starts its own) for the session, the deployments of prefect.yaml, and
`engineforge worker` processes on the `gpu` pool.

Every process gets a private PREFECT_HOME under the session's temporary directory; nothing touches
~/.prefect. The server runs without its scheduler, so prefect.yaml's schedules are created but
never fire during the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT_S = 180
WORKER_START_TIMEOUT_S = 120


def free_port() -> int:
    from engineforge.processes.serving import free_port as pick

    return pick()


def tiny_recipe(name: str, max_tokens: int = 4, seed: int = 0) -> str:
    """The tiny synthetic Llama on the CPU, two short validation requests, no continuous batching.

    The worker store is shared by the session: tests that assert what ran give their model its own
    `seed`, so another test's runs cannot have built it already."""
    return (
        f"name: {name}\nmodel:\n  source: synthetic:tiny-llama\n  dtype: float32\n  synthetic:\n    seed: {seed}\n"
        "runtime: transformers\n"
        "serve:\n  device: cpu\n  continuous_batching: false\n  startup_timeout_s: 300\n"
        f"validate:\n  requests: 2\n  concurrency: 1\n  warmup_requests: 0\n  max_tokens: {max_tokens}\n"
    )


@dataclass
class PrefectServer:
    api_url: str
    root: Path  # per-process PREFECT_HOME directories live here

    def env(self, home: str, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        (self.root / home).mkdir(parents=True, exist_ok=True)
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.root / home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_CLI_PROMPT="false",
        )
        env.update(extra)
        return env

    @contextmanager
    def client_settings(self):
        """Point this test process's Prefect client at the server (other fixtures may use another)."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            yield

    def run(self, argv: list[str], home: str = "cli", timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=REPO, env=self.env(home, **env), capture_output=True, text=True, timeout=timeout)


def _stop(process: subprocess.Popen, grace_s: float = 20) -> None:
    from engineforge.processes.serving import stop_process_group

    stop_process_group(process, grace_s, signal.SIGINT)  # SIGINT: what Prefect's worker and server stop promptly on
    try:  # flow-run subprocesses left in the group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def running_prefect_server(root: Path, ui: bool = False, **env: str) -> Iterator[PrefectServer]:
    """`prefect server start`, as engineforge starts it, on a loopback port with its home and log under
    `root` (its UI with `ui`); stopped after."""
    from engineforge.orchestration import prefect_server

    port = free_port()
    server = PrefectServer(api_url=f"http://127.0.0.1:{port}/api", root=root)
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(
            prefect_server.command("--host", "127.0.0.1", "--port", str(port), "--no-scheduler",
                                   *(() if ui else ("--no-ui",)), "--analytics-off"),
            # Prefect answers 503 for any database error it deems retryable and logs none of them by default
            cwd=root, env=server.env("server", PREFECT_SERVER_LOG_RETRYABLE_ERRORS="true", **env), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                try:
                    if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"prefect server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
            yield server
        finally:
            _stop(process)


def create_deployments(server: PrefectServer) -> PrefectServer:
    """The `gpu` process pool and every deployment of prefect.yaml, as a user creates them."""
    for argv in ([str(BIN / "prefect"), "work-pool", "create", "gpu", "--type", "process"],
                 [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"]):
        done = server.run(argv)
        assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return server


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """With its UI, which the browser tests open (tests/ui)."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect"), ui=True) as server:
        yield server


@pytest.fixture(scope="session")
def deployments(prefect_server) -> PrefectServer:
    return create_deployments(prefect_server)


@contextmanager
def private_postgres() -> Iterator[str]:
    """A private PostgreSQL cluster on a loopback port (trust authentication), removed after; its
    SQLAlchemy URL for Prefect. The database a Prefect server under concurrent load runs on in
    production. Skips when PostgreSQL's server binaries are not installed."""
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bindirs:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    bindir = bindirs[-1]
    # initdb and the server refuse to run as root: as root, run them as the postgres user, in a
    # directory it owns outside pytest's root-only temporary tree.
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="engineforge-pg-"))
    if as_postgres:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data / "db")]

    def run(argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"

    try:
        run([*as_postgres, str(bindir / "initdb"), "-D", str(data / "db"), "--auth=trust", "-U", "postgres"])
        run([*pg_ctl, "-l", str(data / "server.log"), "-w", "-o",
             f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"])
        try:
            run([*as_postgres, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect"])
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
        finally:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=120)
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_deployments(tmp_path_factory) -> Iterator[PrefectServer]:
    """A second Prefect server, on PostgreSQL, with prefect.yaml's deployments: for load that SQLite refuses."""
    with private_postgres() as url, running_prefect_server(
            tmp_path_factory.mktemp("prefect-postgres"), PREFECT_API_DATABASE_CONNECTION_URL=url) as server:
        yield create_deployments(server)


@pytest.fixture(scope="session")
def worker_stores(tmp_path_factory) -> dict[str, str]:
    """One content-addressed store and one MLflow database shared by every worker process of the session."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("workers")
    # Create MLflow's tables once, as a deployment does: runs starting together on a fresh SQLite
    # file would race to create them ("table ... already exists").
    MlflowClient(f"sqlite:///{root / 'mlflow.db'}").search_experiments()
    return {
        "ENGINEFORGE_STORE": str(root / "store"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "DOCKER_HOST": f"unix://{root / 'no-docker.sock'}",  # nobody listens: the package stage skips
        "HF_HUB_OFFLINE": "1",
    }


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Workers:
    server: PrefectServer
    stores: dict[str, str]
    started: list[Worker] = field(default_factory=list)

    def start(self, name: str, gpus: int = 2, *options: str, pool: str = "gpu", **env: str) -> Worker:
        """`engineforge worker` on `pool` with `gpus` slots (and more `options`); validate counts as a GPU stage here."""
        log = self.server.root / f"{name}.log"
        extra = {**self.stores, "ENGINEFORGE_GPU_STAGES": "validate", "PREFECT_WORKER_QUERY_SECONDS": "2", **env}
        process = subprocess.Popen(
            [str(BIN / "engineforge"), "worker", "--pool", pool, "--gpus", str(gpus), "--name", name, *options],
            cwd=REPO, env=self.server.env(name, **extra), stdout=open(log, "wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(name, process, log)
        self.started.append(worker)
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while "started!" not in worker.output():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop(worker)
                pytest.fail(f"worker {name} did not start:\n{worker.output()[-3000:]}")
            time.sleep(0.5)
        return worker

    def stop(self, worker: Worker) -> None:
        _stop(worker.process)

    def stop_all(self) -> None:
        for worker in self.started:
            self.stop(worker)


@pytest.fixture
def workers(deployments, worker_stores):
    """Start workers with `workers.start(name)`; all of them stop when the test ends."""
    pool = Workers(deployments, worker_stores)
    yield pool
    pool.stop_all()


def submit(server: PrefectServer, recipes: list[Path], *options: str, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
    """`engineforge submit` as a user runs it, against the session's server (with more `env`)."""
    return server.run([str(BIN / "engineforge"), "submit", *map(str, recipes), *options], timeout=timeout, **env)


@dataclass
class Submitted:
    done: subprocess.CompletedProcess  # `engineforge submit --watch --json` of every recipe, at once
    worker: Worker  # the one worker that ran them all (stopped since)
    recipes: list[Path]  # RECIPE_ON_WORKER_A's first, then GPU_RUNS more


RECIPE_ON_WORKER_A = "prefect-tiny"  # its submission, run and reuse: tests/orchestration/test_submission.py
GPU_SLOTS, GPU_RUNS = 2, 4  # worker-a's slots, and the runs beside it: tests/orchestration/test_prefect_gpu_slots.py


@pytest.fixture(scope="session")
def worker_a_runs(deployments, worker_stores, tmp_path_factory) -> Submitted:
    """One worker ("worker-a", GPU_SLOTS slots) and one watched submission of five recipes at once: the tiny
    recipe (its own seed: every stage of it runs here) that test_submission.py follows on and reuses from
    another worker, and GPU_RUNS with distinct validation settings (every run really validates) whose GPU
    stages test_prefect_gpu_slots.py checks against the slots, the tiny one's among them. The worker stops
    before the tests read what it did. One worker start and one submission for both files, not two of each."""
    root = tmp_path_factory.mktemp("worker-a")
    recipes = [root / f"{RECIPE_ON_WORKER_A}.yaml"]
    recipes[0].write_text(tiny_recipe(RECIPE_ON_WORKER_A))
    for index in range(GPU_RUNS):
        recipes.append(root / f"gpu-{index}.yaml")
        recipes[-1].write_text(tiny_recipe(f"prefect-gpu-{index}", max_tokens=5 + index, seed=1))
    pool = Workers(deployments, worker_stores)
    worker = pool.start("worker-a", gpus=GPU_SLOTS)
    try:
        done = submit(deployments, recipes, "--watch", "--json")
    finally:
        pool.stop_all()
    return Submitted(done, worker, recipes)


# What the server and MLflow recorded about runs, for the tests' checks.

def read_flow_run(flow_run_id):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def deployment_flow_runs(deployment: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        deployment_id = client.read_deployment_by_name(deployment).id
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def task_runs(flow_run_ids: list[str], name: str, expected: int, timeout_s: float = 60) -> list:
    """The flow runs' task runs named `name`, once all `expected` of them are recorded in a final state
    (the server records task runs from events, a moment after the flow run's own state)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            runs = [run for run in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)))
                    if run.name.rsplit("-", 1)[0] == name]  # task run names are `<task name>-<suffix>`
            if len(runs) >= expected and all(run.state and run.state.is_final() and run.end_time for run in runs):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(runs)} of {expected} {name} task runs recorded: {runs}")
            time.sleep(0.5)


def flow_run_log_lines(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]


def flow_run_artifacts(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def mlflow_run_of(tracking_uri: str, flow_run_id: str):
    """The MLflow run a Prefect flow run recorded (tagged with the flow run's id)."""
    from mlflow.tracking import MlflowClient

    from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG

    client = MlflowClient(tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string=f"tags.`{FLOW_RUN_TAG}` = '{flow_run_id}'")
    assert len(runs) == 1, f"expected one MLflow run for flow run {flow_run_id}, found {len(runs)}"
    return runs[0]


def stage_statuses(run) -> dict[str, str]:
    prefix, suffix = "engineforge.stage.", ".status"
    return {key[len(prefix):-len(suffix)]: value for key, value in run.data.tags.items()
            if key.startswith(prefix) and key.endswith(suffix)}
