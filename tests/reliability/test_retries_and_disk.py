"""Retries only for errors that can pass: a real full disk (a 2 MiB tmpfs) and a real HTTP 404 fail on the
first attempt; a dropped connection is retried. Free space is checked before a stage writes. The stage
tasks run as real Prefect task runs against the session's Prefect API."""

from __future__ import annotations

import errno
import http.server
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from prefect import flow

from engineforge.errors import StageFailed
from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.stage import Stage
from engineforge.artifacts.store import Store
from tasks.stage import stage_task


@pytest.fixture
def small_fs(tmp_path):
    """A real 2 MiB tmpfs (needs root); skipped with the reason elsewhere."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def attempts_of(fn, tmp_path: Path, retries: int = 3) -> tuple[int, BaseException | None, float]:
    """Run `fn` as a stage task with `retries` in a real flow; return (attempts, error, seconds)."""
    counter = tmp_path / "attempts"
    counter.write_text("")

    def body():
        with open(counter, "a") as handle:
            handle.write("x")
        return fn()

    demo = Stage(name="demo", work=lambda recipe, ctx, key: body(), plan=None, retries=(0.1,) * retries)

    @flow
    def one_stage():
        return stage_task(demo)(None, None, None, {})

    started = time.perf_counter()
    try:
        one_stage()
        error = None
    except StageFailed as failure:
        error = failure
    return len(counter.read_text()), error, time.perf_counter() - started


def test_a_full_disk_fails_on_the_first_attempt_and_says_so(prefect_api, small_fs, tmp_path):
    def fill():
        (small_fs / "weights.bin").write_bytes(b"w" * (4 << 20))

    attempts, error, seconds = attempts_of(fill, tmp_path)
    print(f"disk full: failed after {attempts} attempt(s) in {seconds:.2f} s")
    assert attempts == 1
    assert "No space left on device" in str(error) and not error.retryable


def test_an_http_404_fails_on_the_first_attempt(prefect_api, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/no-such-model/config.json"
        attempts, error, _ = attempts_of(lambda: httpx.get(url).raise_for_status(), tmp_path)
    finally:
        server.shutdown()
    assert attempts == 1 and "404" in str(error)


def test_a_dropped_connection_is_retried(prefect_api, tmp_path):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError(errno.ECONNRESET, "connection reset by peer")
        return StageResult(stage="demo", status="ran", summary="answered on the third attempt")

    attempts, error, _ = attempts_of(flaky, tmp_path)
    assert (attempts, error) == (3, None)


def test_free_space_is_checked_before_the_stage_writes(small_fs):
    store, produced = Store(small_fs / "store"), []

    def produce(workdir):
        produced.append(workdir)
        return StageOutput(summary="never")

    started = time.perf_counter()
    with pytest.raises(OSError) as raised:
        run_stage(store, "download", "k", produce, needed_bytes=8 << 20)
    print(f"free-space preflight refused in {time.perf_counter() - started:.3f} s: {raised.value}")
    assert raised.value.errno == errno.ENOSPC and "ENGINEFORGE_STORE" in str(raised.value)
    assert produced == [] and not (small_fs / "store" / "download").exists()
    assert run_stage(store, "download", "k2", lambda w: StageOutput(summary="fits"), needed_bytes=1 << 20).status == "ran"


def test_a_build_that_cannot_fit_fails_before_it_copies_anything(small_fs, tmp_path):
    from engineforge.recipe.file import parse_recipe
    from engineforge.runtimes import get_runtime
    from engineforge.stage_result import StageResult
    from engineforge.stages.build import build
    from engineforge.stages.context import RunContext
    from engineforge.tracking.mlflow_runs import TrackedRun

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"w" * (3 << 20))  # more than the 2 MiB tmpfs holds
    model = StageResult(stage="download", status="ran", key="d" * 64, outputs={"model_dir": str(model_dir)})
    ctx = RunContext(runtime=get_runtime("transformers"), store_root=str(small_fs / "store"),
                     mlflow_run=TrackedRun("sqlite:///unused.db", "unused"))
    recipe = parse_recipe("name: too-big\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n")
    with pytest.raises(OSError) as raised:
        build(recipe, model, ctx, "b" * 64)
    assert raised.value.errno == errno.ENOSPC and "stage build needs 3.0 MiB" in str(raised.value)
    assert not (small_fs / "store" / "build").exists()


def test_a_hub_download_that_cannot_fit_fails_before_it_fetches_a_byte(small_fs, tmp_path, monkeypatch):
    """The hub double (tests/doubles/hub.py) in place of the public hub; the hub cache on the 2 MiB tmpfs."""
    from engineforge.recipe.file import parse_recipe
    from engineforge.runtimes import get_runtime
    from engineforge.stages.context import RunContext
    from engineforge.tracking.mlflow_runs import TrackedRun
    from engineforge.stages.download import download
    from tests.doubles.hub import running_hub

    files = {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"w" * (3 << 20)}
    ctx = RunContext(runtime=get_runtime("transformers"), store_root=str(tmp_path / "store"),
                     mlflow_run=TrackedRun("sqlite:///unused.db", "unused"))
    recipe = parse_recipe("name: too-big\nmodel:\n  source: hf://acme/too-big@main\nruntime: transformers\n")
    with running_hub("acme/too-big", "c" * 40, files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest sets it for every test
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(small_fs / "hf"))
        started = time.perf_counter()
        with pytest.raises(OSError) as raised:
            download(recipe, ctx)
        print(f"hub download preflight refused in {time.perf_counter() - started:.3f} s: {raised.value}")
        assert raised.value.errno == errno.ENOSPC and "stage download needs 3.0 MiB" in str(raised.value)
        assert "HF_HUB_CACHE" in str(raised.value) and hub.served == []  # not one file fetched
        assert not [path for path in (small_fs / "hf").rglob("*") if path.is_file()]
        del files["model.safetensors"]  # what fits is downloaded as before
        assert download(recipe, ctx).status == "ran" and hub.served == ["config.json"]
