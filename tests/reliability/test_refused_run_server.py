"""A run refused with exit 2 while its background Prefect server is still starting (the server starts in
a thread while the recipe is checked) leaves no server that nothing can stop: whatever server process
it started is named by `server.json` (`local_service` writes the record as soon as the process exists)
and `engineforge server stop` stops it. Before, the record was written once the server answered, so a
refused run left a server running with no record. Real `engineforge run`, real `prefect server`, /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engineforge.processes import local_service
from engineforge.processes.owner import is_started_process

pytestmark = pytest.mark.integration
ENGINEFORGE = str(Path(sys.executable).parent / "engineforge")


def servers_of(home: Path) -> list[psutil.Process]:
    """The processes whose PREFECT_HOME is `home` (the server and its children), wherever they were reparented."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("PREFECT_HOME") == str(home):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_refused_run_records_the_server_it_started_and_server_stop_stops_it(tmp_path):
    home = tmp_path / "prefect"
    recipe = tmp_path / "refused.yaml"
    recipe.write_text("name: Refused Name\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(ENGINEFORGE_PREFECT_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    done = subprocess.run([ENGINEFORGE, "run", str(recipe)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "name: must match" in done.stderr, done.stderr[-2000:]
    time.sleep(1)  # a server process forked as the run exited has execed by now
    left = [p for p in servers_of(home) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    record = local_service.read_record(home)
    print(f"after the refused run: {len(left)} server processes, record {record}")
    try:
        assert left, "the refused run started no server: this test would prove nothing"
        assert record is not None and is_started_process(record) and record["pid"] in {p.pid for p in left}
        stopped = subprocess.run([ENGINEFORGE, "server", "stop"], cwd=tmp_path, env=env, capture_output=True,
                                 text=True, timeout=120)
        assert stopped.returncode == 0 and stopped.stdout == "stopped\n", stopped.stdout + stopped.stderr
        assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        for process in servers_of(home):
            process.kill()
