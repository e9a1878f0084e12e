"""The store under damage: truncated, deleted and rewritten files, broken manifests, killed writers and
refreshes, two writers of one key. Every fault is made for real on real files and processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageOutput
from engineforge.artifacts.store import MANIFEST, Store, clone_file

WEIGHTS = b"w" * 4096


def produce_weights(workdir: Path) -> StageOutput:
    (workdir / "model").mkdir()
    (workdir / "model" / "weights.bin").write_bytes(WEIGHTS)
    (workdir / "validation.json").write_text('{"ok": true}')
    return StageOutput(summary="built", outputs={"weights": "model/weights.bin"})


def built(store: Store) -> Path:
    result = run_stage(store, "build", "k", produce_weights)
    assert result.status == "ran"
    return Path(result.path)


def test_truncated_weights_are_recomputed_not_served(tmp_path):
    store = Store(tmp_path)
    entry = built(store)
    with open(entry / "model" / "weights.bin", "r+b") as handle:
        handle.truncate(100)
    assert not store.intact("build", "k")
    again = run_stage(store, "build", "k", produce_weights)
    assert again.status == "ran"
    assert (entry / "model" / "weights.bin").read_bytes() == WEIGHTS


def test_a_deleted_output_file_is_recomputed(tmp_path):
    store = Store(tmp_path)
    entry = built(store)
    (entry / "validation.json").unlink()
    assert run_stage(store, "build", "k", produce_weights).status == "ran"
    assert (entry / "validation.json").exists()


@pytest.mark.parametrize("damage", [b"", b'{"stage": "build", "key"', b"\xff\xfe not json", b"[1, 2]"])
def test_a_truncated_or_garbled_manifest_is_recomputed(tmp_path, damage):
    store = Store(tmp_path)
    entry = built(store)
    (entry / MANIFEST).write_bytes(damage)
    assert store.manifest("build", "k") is None
    assert run_stage(store, "build", "k", produce_weights).status == "ran"
    assert json.loads((entry / MANIFEST).read_text())["summary"] == "built"


def test_a_touched_but_unchanged_file_is_still_reused(tmp_path):
    store = Store(tmp_path)
    entry = built(store)
    os.utime(entry / "model" / "weights.bin", ns=(1, 1))  # mtime moved: the cheap check hashes it
    assert run_stage(store, "build", "k", produce_weights).status == "cached"


def test_same_size_corruption_with_restored_mtime_needs_the_full_check(tmp_path):
    """The cheap check trusts size and mtime; `store verify` (full) hashes and finds the bit flip."""
    store = Store(tmp_path)
    entry = built(store)
    path = entry / "model" / "weights.bin"
    before = path.stat()
    path.write_bytes(b"x" + WEIGHTS[1:])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert store.problems("build", "k") == []
    assert store.problems("build", "k", full=True) == [f"build/{'k'}/model/weights.bin: sha256 differs from the recorded one"]


def test_an_entry_without_file_records_is_not_trusted(tmp_path):
    store = Store(tmp_path)
    entry = built(store)
    manifest = json.loads((entry / MANIFEST).read_text())
    del manifest["files"]
    (entry / MANIFEST).write_text(json.dumps(manifest))
    assert run_stage(store, "build", "k", produce_weights).status == "ran"


def test_a_failed_refresh_keeps_the_last_good_entry(tmp_path):
    store = Store(tmp_path)
    entry = built(store)

    def fails(workdir):
        (workdir / "half").write_bytes(b"x")
        raise RuntimeError("validation server died")

    with pytest.raises(RuntimeError):
        run_stage(store, "build", "k", fails, refresh=True)
    assert store.intact("build", "k") and (entry / "model" / "weights.bin").read_bytes() == WEIGHTS
    assert [p.name for p in entry.parent.iterdir()] == ["k"]


def test_a_successful_refresh_swaps_in_the_new_entry(tmp_path):
    store = Store(tmp_path)
    entry = built(store)

    def newer(workdir):
        (workdir / "v2").write_text("2")
        return StageOutput(summary="v2")

    assert run_stage(store, "build", "k", newer, refresh=True).summary == "v2"
    assert sorted(p.name for p in entry.iterdir()) == [MANIFEST, "v2"] and store.intact("build", "k")
    assert [p.name for p in entry.parent.iterdir()] == ["k"]


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from engineforge.stages.run_stage import run_stage
    from engineforge.stage_result import StageOutput
    from engineforge.artifacts.store import Store

    def produce(workdir):
        (workdir / "partial.bin").write_bytes(b"p" * 1000)
        Path(sys.argv[2]).write_text("writing")
        time.sleep(60)
        return StageOutput(summary="never")

    run_stage(Store(Path(sys.argv[1])), "build", "k", produce, refresh=sys.argv[3] == "refresh")
""")


def start_writer(root: Path, mode: str, tmp_path: Path) -> subprocess.Popen:
    flag = tmp_path / f"writing-{mode}"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(flag), mode])
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.05)
    return process


def test_sigkill_during_refresh_keeps_the_entry_and_the_next_writer_sweeps_the_leftovers(tmp_path):
    store = Store(tmp_path / "store")
    entry = built(store)
    writer = start_writer(store.root, "refresh", tmp_path)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = [p.name for p in entry.parent.glob(".tmp-*")]
    assert len(left) == 1  # the killed writer's temporary directory
    assert run_stage(store, "build", "k", produce_weights).status == "cached"  # last good result kept
    started = time.perf_counter()
    run_stage(store, "build", "other", produce_weights)  # any writer in the stage sweeps dead writers' leftovers
    print(f"dead writer swept by the next writer in {time.perf_counter() - started:.3f} s")
    assert sorted(p.name for p in entry.parent.iterdir()) == ["k", "other"]


def test_a_live_writers_temporary_directory_is_left_alone(tmp_path):
    store = Store(tmp_path / "store")
    built(store)
    writer = start_writer(store.root, "refresh", tmp_path)
    try:
        assert store.sweep() == []
        assert len(list((store.root / "build").glob(".tmp-*"))) == 1
    finally:
        writer.kill()
        writer.wait()
    assert len(store.sweep()) == 1


COMPUTE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from engineforge.stages.run_stage import run_stage
    from engineforge.stage_result import StageOutput
    from engineforge.artifacts.store import Store

    def produce(workdir):
        with open(sys.argv[2], "a") as log:
            log.write("computed\\n")
        time.sleep(1.0)
        (workdir / "out").write_text("x")
        return StageOutput(summary="done")

    print(run_stage(Store(Path(sys.argv[1])), "download", "k", produce).status)
""")


def test_two_processes_wanting_one_key_compute_it_once(tmp_path):
    calls = tmp_path / "calls"
    processes = [subprocess.Popen([sys.executable, "-c", COMPUTE, str(tmp_path / "store"), str(calls)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
    statuses = sorted(process.communicate(timeout=120)[0].strip() for process in processes)
    assert statuses == ["cached", "ran"]
    assert calls.read_text() == "computed\n"


def test_a_clone_shares_no_inode_so_corruption_stays_in_one_entry(tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(WEIGHTS)
    clone_file(source, tmp_path / "b.bin")
    assert os.stat(source).st_ino != os.stat(tmp_path / "b.bin").st_ino
    with open(tmp_path / "b.bin", "r+b") as handle:
        handle.truncate(10)
    assert source.read_bytes() == WEIGHTS
