"""The background Prefect server holds no secrets, and what Prefect persists stays under the project's state
directory. A real `prefect server start`, real processes and their real environments (/proc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from engineforge.processes import local_service
from engineforge.orchestration import local_prefect
from engineforge.processes.owner import started_process
from engineforge.processes.serving import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SECRETS = {"HF_TOKEN": "hf_secret", "REGISTRY_PASSWORD": "hunter2", "AWS_SECRET_ACCESS_KEY": "aws", "GH_TOKEN": "gh"}


def environment_of(pid: int) -> dict[str, str]:
    return psutil.Process(pid).environ()


def test_the_background_server_starts_without_secrets_and_replaces_one_that_has_them(tmp_path, monkeypatch):
    home = tmp_path / "prefect"
    monkeypatch.setenv("ENGINEFORGE_PREFECT_HOME", str(home))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    # A server started by an older engineforge, with the secrets in its environment.
    old = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                            str(port := free_port()), "--analytics-off"],
                           env={**os.environ, "PREFECT_HOME": str(home)}, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while not local_prefect.healthy(url):
        assert old.poll() is None and time.monotonic() < deadline, "the old server did not start"
        time.sleep(0.5)
    (home / local_service.STATE_FILE).write_text(json.dumps({"url": url, **started_process(old.pid)}))
    assert SECRETS.items() <= environment_of(old.pid).items()
    try:
        new_url = local_prefect.ensure_api()
        state = local_service.read_record(home)
        assert new_url != url and old.wait(timeout=60) is not None  # the server with secrets was stopped
        kept = environment_of(state["pid"])
        assert not set(SECRETS) & set(kept), sorted(set(SECRETS) & set(kept))
        children = psutil.Process(state["pid"]).children(recursive=True)
        assert all(not set(SECRETS) & set(child.environ()) for child in children)
    finally:
        local_prefect.stop()
        if old.poll() is None:
            old.kill()


FAILING_FLOW = textwrap.dedent("""
    from engineforge.orchestration import local_prefect
    local_prefect.keep_results_local()
    from prefect import flow, task

    @task(persist_result=True, result_serializer="pickle")
    def breaks():
        raise RuntimeError("request to https://huggingface.co failed")

    @flow
    def run():
        breaks()

    try:
        run()
    except RuntimeError:
        pass
""")


def test_a_failed_tasks_persisted_result_stays_under_the_state_directory(tmp_path, prefect_server):
    state, user_home = tmp_path / "state", tmp_path / "home"
    user_home.mkdir()
    env = prefect_server.env("results-test", ENGINEFORGE_PREFECT_HOME=str(state), HOME=str(user_home))
    env.pop("PREFECT_HOME")  # Prefect's own default: ~/.prefect
    done = subprocess.run([sys.executable, "-c", FAILING_FLOW], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    written = [p for p in (state / "storage").rglob("*") if p.is_file()]
    assert written, "Prefect persisted nothing: the scenario did not happen"
    assert not (user_home / ".prefect" / "storage").exists()
