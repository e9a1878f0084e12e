"""`engineforge store verify [--repair]` and `engineforge doctor`, run as the real console script on a real
store and a real SQLite MLflow store with records left by a SIGKILLed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from mlflow.tracking import MlflowClient

from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageOutput
from engineforge.artifacts.store import Store

ENGINEFORGE = str(Path(sys.executable).parent / "engineforge")


def produce(workdir: Path) -> StageOutput:
    (workdir / "weights.bin").write_bytes(b"w" * 4096)
    return StageOutput(summary="built")


def engineforge(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([ENGINEFORGE, *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env}, check=False)


def test_verify_finds_a_bit_flip_the_cheap_check_cannot_and_repair_makes_the_next_run_recompute(tmp_path):
    store = Store(tmp_path / "store")
    run_stage(store, "build", "a" * 64, produce)
    run_stage(store, "build", "b" * 64, produce)
    weights = store.entry("build", "a" * 64) / "weights.bin"
    before = weights.stat()
    weights.write_bytes(b"x" + b"w" * 4095)  # same size, and the mtime put back: only hashing sees it
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))

    checked = engineforge("store", "verify", "--store", str(store.root))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"damaged build/{'a' * 12}/weights.bin: sha256 differs" in checked.stdout
    assert "2 entries" in checked.stdout and "1 intact, 1 damaged" in checked.stdout

    repaired = engineforge("store", "verify", "--repair", "--store", str(store.root))
    assert repaired.returncode == 0 and "removed build/" in repaired.stdout
    assert not store.entry("build", "a" * 64).exists() and store.intact("build", "b" * 64)
    assert run_stage(store, "build", "a" * 64, produce).status == "ran"
    assert engineforge("store", "verify", "--store", str(store.root)).returncode == 0


DIES_HOLDING_RECORDS = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from engineforge.tracking import mlflow_runs
    from engineforge.recipe.file import parse_recipe
    from engineforge.stages.run_stage import run_stage
    from engineforge.artifacts.store import Store
    text = "name: doctor-demo\\nmodel:\\n  source: synthetic:tiny-llama\\nruntime: transformers\\n"
    os.environ["MLFLOW_TRACKING_URI"] = sys.argv[1]
    print(mlflow_runs.start_run(parse_recipe(text), text).run_id, flush=True)
    def hang(workdir):
        print("writing", flush=True)
        time.sleep(300)
    run_stage(Store(Path(sys.argv[2])), "build", "k", hang)
""")


def test_doctor_closes_a_dead_runs_mlflow_run_and_sweeps_its_temporary_directory(tmp_path):
    uri, store = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "store"
    owner = subprocess.Popen([sys.executable, "-c", DIES_HOLDING_RECORDS, uri, str(store)], stdout=subprocess.PIPE, text=True)
    run_id = owner.stdout.readline().strip()
    assert owner.stdout.readline().strip() == "writing"
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert list((store / "build").glob(".tmp-*"))

    env = {"MLFLOW_TRACKING_URI": uri, "ENGINEFORGE_PREFECT_HOME": str(tmp_path / "no-prefect")}
    doctor = engineforge("doctor", "--store", str(store), **{**env, "PREFECT_API_URL": ""})
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"closed  MLflow run {run_id}" in doctor.stdout and "removed" in doctor.stdout
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"
    assert not list((store / "build").glob(".tmp-*"))


def test_doctor_names_a_tracking_server_that_does_not_answer(tmp_path):
    from engineforge.processes.serving import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    doctor = engineforge("doctor", "--store", str(tmp_path / "store"), MLFLOW_TRACKING_URI=uri, PREFECT_API_URL="",
                         ENGINEFORGE_PREFECT_HOME=str(tmp_path / "no-prefect"))
    assert doctor.returncode == 1 and f"MLflow tracking server {uri} is unreachable" in doctor.stdout
    assert "Traceback" not in doctor.stdout + doctor.stderr
