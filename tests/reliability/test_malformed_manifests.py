"""A store manifest without its `summary`, or with a number where a file record should be, is a
damaged entry: `store verify` names it (exit 1), `--repair` removes it, the next run recomputes it.
Before: `store verify` crashed (`AttributeError: 'int' object has no attribute 'get'`) and every later
run failed (`KeyError: 'summary'`). `store verify` without `--repair` also names the `.tmp-*` a dead
writer left. Real store, real files, a real dead process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engineforge.cli.app import main
from engineforge.processes.owner import Owner, boot_id, host
from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageOutput
from engineforge.artifacts.store import MANIFEST, TEMPORARY, Store


def produce(workdir: Path) -> StageOutput:
    (workdir / "weights.bin").write_bytes(b"w" * 64)
    return StageOutput(summary="built", outputs={"weights": "weights.bin"})


def _spoil(store: Store, key: str, change) -> None:
    path = store.entry("build", key) / MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_malformed_manifests_are_damaged_entries_and_stale_temporaries_are_named(tmp_path, capsys):
    store = Store(tmp_path / "store")
    for key in ("a" * 64, "b" * 64, "c" * 64):
        run_stage(store, "build", key, produce)
    _spoil(store, "a" * 64, lambda m: m.pop("summary"))
    _spoil(store, "b" * 64, lambda m: m["files"].update({"weights.bin": 7}))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = store.root / "build" / f"{TEMPORARY}{'d' * 64}.{Owner(host(), boot_id(), dead.pid, 0).token()}.0123abcd"
    stale.mkdir()

    assert main(["store", "verify", "--store", str(store.root)]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert f"damaged build/{'a' * 12}: {MANIFEST} lacks its summary or outputs" in out.out
    assert f"damaged build/{'b' * 12}/weights.bin: {MANIFEST} holds no file record for it" in out.out
    assert f"stale {stale} (its writer is dead; --repair removes it)" in out.out and stale.exists()
    assert "3 entries" in out.out and "1 intact, 2 damaged" in out.out

    assert run_stage(store, "build", "a" * 64, produce).status == "ran"  # recomputed, not a KeyError
    assert main(["store", "verify", "--repair", "--store", str(store.root)]) == 0
    assert not store.entry("build", "b" * 64).exists() and not stale.exists()
    assert run_stage(store, "build", "b" * 64, produce).status == "ran"
