"""The build and package entries of one run share no inode. The build stage clones the model into its
entry (runtimes/transformers.link_model_tree); the package stage copies it into its build context
(packaging/context.write_context). Before, the context hard-linked the build entry's files: one
flipped byte in `build/<key>/model/model.safetensors` damaged `package/<key>/context/model/` as well.
Real files, the real store and the real `engineforge store verify`."""

from __future__ import annotations

import os
from pathlib import Path

from engineforge.cli.app import main
from engineforge.packaging.context import write_context
from engineforge.runtimes.transformers import link_model_tree
from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageOutput
from engineforge.artifacts.store import Store
from tests.packaging.test_packaging import DEFAULT_BASE, make_inputs

KEY = "e" * 64


def test_build_and_package_entries_share_no_inode_and_verify_finds_only_the_damaged_one(tmp_path, capsys, tiny_model_dir):
    store = Store(tmp_path / "store")

    def build(workdir: Path) -> StageOutput:
        link_model_tree(tiny_model_dir, workdir / "model")
        return StageOutput(summary="built", outputs={"model_dir": "model"})

    run_stage(store, "build", KEY, build)
    built = store.entry("build", KEY) / "model"

    def package(workdir: Path) -> StageOutput:
        write_context(make_inputs(built), DEFAULT_BASE.tag, workdir / "context", None)
        return StageOutput(summary="packaged", outputs={"context": "context"})

    run_stage(store, "package", KEY, package)
    context = store.entry("package", KEY) / "context" / "model"

    for path in sorted(built.iterdir()):
        copy = (context / path.name).stat()
        assert copy.st_ino != path.stat().st_ino, path.name
        assert path.stat().st_nlink == 1 and copy.st_nlink == 1, path.name
        assert copy.st_mtime_ns == path.stat().st_mtime_ns  # the context fingerprint stays put

    weights = built / "model.safetensors"
    before = weights.stat()
    with open(weights, "r+b") as handle:  # one byte, same size, mtime put back: only hashing sees it
        handle.seek(before.st_size - 1)
        last = handle.read(1)
        handle.seek(before.st_size - 1)
        handle.write(bytes([last[0] ^ 0xFF]))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert main(["store", "verify", "--store", str(store.root)]) == 1
    out = capsys.readouterr().out
    assert f"build/{KEY[:12]}/model/model.safetensors: sha256 differs" in out
    assert "2 entries" in out and "1 intact, 1 damaged" in out, out
    assert store.problems("package", KEY, full=True) == []
