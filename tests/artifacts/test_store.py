import pytest

from engineforge.errors import StageFailed
from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageOutput
from engineforge.artifacts.store import Store, content_key


def test_content_key_ignores_dict_order_and_sees_values():
    assert content_key({"a": 1, "b": 2}) == content_key({"b": 2, "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_stage_runs_once_then_is_cached(tmp_path):
    store, calls = Store(tmp_path), []

    def produce(workdir):
        calls.append(workdir)
        (workdir / "out.txt").write_text("hello")
        return StageOutput(summary="wrote", outputs={"file": "out.txt"})

    first = run_stage(store, "demo", "k1", produce)
    second = run_stage(store, "demo", "k1", produce)
    assert (first.status, second.status, len(calls)) == ("ran", "cached", 1)
    assert second.file("file").read_text() == "hello"
    assert run_stage(store, "demo", "k1", produce, refresh=True).status == "ran" and len(calls) == 2


def test_failed_stage_leaves_no_entry_and_keeps_earlier_ones(tmp_path):
    store = Store(tmp_path)
    run_stage(store, "demo", "good", lambda w: StageOutput(summary="ok"))

    def crash(workdir):
        (workdir / "half.bin").write_bytes(b"x" * 10)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        run_stage(store, "demo", "bad", crash)
    assert store.manifest("demo", "bad") is None
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["good"]


def test_failed_stage_keeps_its_logs_and_outputs_use_relative_paths(tmp_path):
    store = Store(tmp_path)

    def crash(workdir):
        (workdir / "logs").mkdir()
        (workdir / "logs" / "server.log").write_text("CUDA out of memory")
        raise RuntimeError("server died")

    with pytest.raises(RuntimeError):
        run_stage(store, "demo", "k", crash, keep_on_failure=("logs",))
    assert (store.failure_dir("demo") / "logs" / "server.log").read_text() == "CUDA out of memory"

    def fail_naming_its_log(workdir):
        (workdir / "logs").mkdir()
        (workdir / "logs" / "server.log").write_text("exited 1")
        raise StageFailed("demo", f"server exited; its log is {workdir / 'logs' / 'server.log'}")

    with pytest.raises(StageFailed) as failed:
        run_stage(store, "demo", "k1", fail_naming_its_log, keep_on_failure=("logs",))
    kept = store.failure_dir("demo") / "logs" / "server.log"
    assert str(failed.value) == f"stage demo failed: server exited; its log is {kept}"  # the copy, not the workdir
    assert kept.read_text() == "exited 1"

    def ok(workdir):
        (workdir / "a.txt").write_text("a")
        return StageOutput(summary="ok", outputs={"nested": {"file": str(workdir / "a.txt")}, "other": "/abs/elsewhere"})

    result = run_stage(store, "demo", "k2", ok)
    assert result.outputs == {"nested": {"file": "a.txt"}, "other": "/abs/elsewhere"}
    assert not store.failure_dir("demo").exists()  # a new attempt clears the last failure's logs


def test_a_stage_that_could_not_apply_says_skipped_also_when_reused(tmp_path):
    store = Store(tmp_path)
    produce = lambda workdir: StageOutput(summary="no Docker daemon at unix:///x", skipped=True)  # noqa: E731
    assert run_stage(store, "package", "k", produce).status == "skipped"
    assert run_stage(store, "package", "k", produce).status == "skipped"
