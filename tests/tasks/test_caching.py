"""Prefect caching of stage tasks under the stages' content keys (tasks/caching.py), against a real
Prefect API: records live beside the store's entries, never outlive them, and a failed stage
commits nothing."""

import multiprocessing
import shutil

import pytest

from engineforge.errors import StageFailed
from engineforge.orchestration.process_locks import ProcessLockManager
from flows.model_to_deployment import model_to_deployment


def _hold_lock(directory, key, ready):
    locks = ProcessLockManager(directory)
    locks.acquire_lock(key, "child")
    ready.set()
    multiprocessing.Event().wait()  # until killed, holding `locks`


def test_a_key_lock_blocks_other_holders_and_dies_with_its_process(tmp_path):
    locks = ProcessLockManager(tmp_path)
    assert locks.acquire_lock("build-abc", "me") and locks.is_lock_holder("build-abc", "me")
    assert locks.acquire_lock("build-abc", "you", acquire_timeout=0.3) is False
    locks.release_lock("build-abc", "me")
    assert not locks.is_locked("build-abc")

    ready = multiprocessing.Event()
    child = multiprocessing.Process(target=_hold_lock, args=(tmp_path, "build-abc", ready))
    child.start()
    assert ready.wait(60)
    assert locks.is_locked("build-abc") and not locks.acquire_lock("build-abc", "me", acquire_timeout=0.3)
    child.kill()  # no chance to release: the kernel does
    child.join()
    assert locks.acquire_lock("build-abc", "me", acquire_timeout=30)


def run(text, store, **kwargs):
    return model_to_deployment(recipe_yaml=text, recipe_origin="test.yaml", store_root=str(store), **kwargs)


def statuses(summary):
    return {stage["stage"]: stage["status"] for stage in summary["stages"]}


QUICK = {"validate": "validate:\n  enabled: false\n", "package": "package:\n  enabled: false\n"}


@pytest.mark.integration
def test_records_sit_beside_the_store_and_never_outlive_its_entries(prefect_api, tiny_model_dir, mlflow_uri,
                                                                      monkeypatch, tmp_path, make_recipe):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text, _ = make_recipe(str(tiny_model_dir), name="caching-test", **QUICK)
    store = tmp_path / "store"

    first = run(text, store)
    build_key = next(stage["key"] for stage in first["stages"] if stage["stage"] == "build")
    assert (store / ".prefect" / "results" / f"build-{build_key}").is_file()
    assert statuses(run(text, store))["build"] == "cached"

    shutil.rmtree(store / "build" / build_key)  # the entry is gone: its record must not answer for it
    again = run(text, store)
    assert statuses(again)["build"] == "ran" and (store / "build" / build_key / "manifest.json").is_file()


@pytest.mark.integration
def test_a_failed_stage_commits_no_record_and_releases_its_key(prefect_api, tiny_model_dir, mlflow_uri,
                                                               monkeypatch, tmp_path, make_recipe):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    model_dir = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dir, model_dir, ignore=shutil.ignore_patterns("tokenizer*", "chat_template*"))
    text, _ = make_recipe(str(model_dir), name="caching-fails", **QUICK)
    store = tmp_path / "store"

    with pytest.raises(StageFailed) as failure:
        run(text, store)

    assert failure.value.stage == "build"
    results = store / ".prefect" / "results"
    assert not results.exists() or not list(results.glob("build-*"))
    assert [entry for entry in (store / "build").glob("*") if not entry.name.startswith(".")] == []
    locks = ProcessLockManager(store / ".prefect" / "locks")
    assert all(not locks.is_locked(path.stem) for path in (store / ".prefect" / "locks").glob("*.lock"))
