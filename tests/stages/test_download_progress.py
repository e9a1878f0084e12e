"""The download stage's byte progress: real huggingface_hub snapshot_download against the hub double
(tests/doubles/hub.py, a loopback server in place of the public hub), its events shown by the CLI's
live view as `engineforge run` shows them."""

import io

import pytest
from rich.console import Console

from engineforge.stages import progress
from engineforge.cli.progress_view import LiveStages
from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stages.context import RunContext
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.stages.download import download
from tests.doubles.hub import running_hub

REPO = "acme/tiny-weights"
FILES = {"config.json": b'{"model_type": "llama"}', "model.safetensors": bytes(range(256)) * 4096}  # 1 MiB


class Counts:
    def __init__(self):
        self.events: list[tuple[int, int | None]] = []

    def stage_started(self, stage, key):
        pass

    def stage_counted(self, stage, done, total, unit):
        assert (stage, unit) == ("download", "bytes")
        self.events.append((done, total))

    def stage_finished(self, result):
        pass


@pytest.fixture
def hub(monkeypatch, tmp_path):
    # Four pieces a tenth of a second apart, read in 256 KiB chunks: the download is seen midway.
    with running_hub(REPO, "a" * 40, FILES, chunks=4, pause_s=0.1) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest sets it for every test
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 256 << 10)
        yield server


def test_hub_double_download_shows_bytes_done_of_total(hub, tmp_path):
    recipe = parse_recipe(f"name: bytes\nmodel:\n  source: hf://{REPO}@main\nruntime: transformers\n")
    ctx = RunContext(runtime=get_runtime("transformers"), store_root=str(tmp_path / "store"),
                     mlflow_run=TrackedRun("sqlite:///unused.db", "unused"))
    shown = io.StringIO()
    view, counts = LiveStages(Console(file=shown, force_terminal=True, width=100)), Counts()
    for listener in (view, counts):
        progress.subscribe(listener)
    try:
        result = download(recipe, ctx)
    finally:
        for listener in (view, counts):
            progress.unsubscribe(listener)
        view.close()
    size = sum(len(body) for body in FILES.values())
    assert result.status == "ran" and sorted(hub.served) == sorted(FILES)
    assert counts.events[-1] == (size, size)
    assert {total for _, total in counts.events} == {size}  # the whole download's size from the first event
    assert any(0 < done < size for done, _ in counts.events), counts.events  # seen midway, not only at the end
    assert [done for done, _ in counts.events] == sorted(done for done, _ in counts.events)
    assert all(done <= total for done, total in counts.events if total)
    assert "of 1.0 MB" in shown.getvalue()  # the spinner's `done of total` in bytes
