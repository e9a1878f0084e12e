"""The content-addressed store is the only cache and the only lock of stage tasks, against a real
Prefect API: Prefect keeps no record of its own, a reused stage's task run reads `Cached`, an entry
gone from the store is recomputed, and a failed stage commits nothing and releases its key."""

import multiprocessing
import shutil

import pytest
from filelock import Timeout

from engineforge.tracking import mlflow_runs
from engineforge.errors import StageFailed
from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG
from engineforge.artifacts.store import Store
from flows.model_to_deployment import model_to_deployment


def _hold_lock(root, ready):
    lock = Store(root).lock("build", "abc")
    lock.acquire()
    ready.set()
    multiprocessing.Event().wait()  # until killed, holding `lock`


def test_a_key_lock_blocks_other_holders_and_dies_with_its_process(tmp_path):
    store = Store(tmp_path)
    mine = store.lock("build", "abc")
    mine.acquire()
    with pytest.raises(Timeout):
        store.lock("build", "abc").acquire(timeout=0.3)  # another holder, even in this process
    mine.release()

    ready = multiprocessing.Event()
    child = multiprocessing.Process(target=_hold_lock, args=(tmp_path, ready))
    child.start()
    assert ready.wait(60)
    with pytest.raises(Timeout):
        store.lock("build", "abc").acquire(timeout=0.3)
    child.kill()  # no chance to release: the kernel does
    child.join()
    store.lock("build", "abc").acquire(timeout=30)


def run(text, store, **kwargs):
    return model_to_deployment(recipe_yaml=text, recipe_origin="test.yaml", store_root=str(store), **kwargs)


def statuses(summary):
    return {stage["stage"]: stage["status"] for stage in summary["stages"]}


QUICK = {"validate": "validate:\n  enabled: false\n", "package": "package:\n  enabled: false\n"}


@pytest.mark.integration
def test_the_store_alone_decides_cached_and_an_entry_gone_is_recomputed(prefect_api, tiny_model_dir, mlflow_uri,
                                                                         monkeypatch, tmp_path, make_recipe):
    from prefect_services import task_runs

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text, _ = make_recipe(str(tiny_model_dir), name="caching-test", **QUICK)
    store = tmp_path / "store"

    first = run(text, store)
    build_key = next(stage["key"] for stage in first["stages"] if stage["stage"] == "build")
    second = run(text, store)
    assert statuses(second)["build"] == "cached"
    assert not (store / ".prefect").exists()  # no second cache beside the store
    flow_run_id = mlflow_runs.client(mlflow_uri).get_run(second["mlflow"]["run_id"]).data.tags[FLOW_RUN_TAG]
    (build,) = task_runs([flow_run_id], "build", expected=1)
    assert build.state.name == "Cached" and build.state.is_completed()  # what the Prefect UI shows

    shutil.rmtree(store / "build" / build_key)  # the entry is gone: nothing else may answer for it
    again = run(text, store)
    assert statuses(again)["build"] == "ran" and (store / "build" / build_key / "manifest.json").is_file()


@pytest.mark.integration
def test_a_failed_stage_commits_nothing_and_releases_its_key(prefect_api, tiny_model_dir, mlflow_uri,
                                                            monkeypatch, tmp_path, make_recipe):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    model_dir = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dir, model_dir, ignore=shutil.ignore_patterns("tokenizer*", "chat_template*"))
    text, _ = make_recipe(str(model_dir), name="caching-fails", **QUICK)
    store = tmp_path / "store"

    with pytest.raises(StageFailed) as failure:
        run(text, store)

    assert failure.value.stage == "build"
    assert [entry for entry in (store / "build").glob("*") if not entry.name.startswith(".")] == []
    locks = sorted((store / ".locks").glob("build-*.lock"))
    assert locks  # the key was locked while the stage ran ...
    stage, key = locks[0].stem.split("-", 1)
    Store(store).lock(stage, key).acquire(timeout=0)  # ... and is free again
