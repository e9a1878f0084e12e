"""A quantized model's serving image carries what quantized it (format, KV cache, ModelOpt version,
calibration data hash) as labels, equal to the lock file's `quantization`; an unquantized one none.
The package stage runs for real without a Docker daemon (it writes the Dockerfile and says it skipped)."""

from __future__ import annotations

import re

import pytest

from engineforge.artifacts import lockfile
from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.stages.package import package, package_key
from tests.conftest import recipe_text

QUANTIZED = StageResult(stage="quantize", status="ran", key="q" * 64, outputs={
    "format": "int4_awq", "kv_cache": "none", "modelopt_version": "0.47.0", "calibration_sha256": "c" * 64})


def _dockerfile_labels(recipe, quantized, tmp_path) -> dict[str, str]:
    served = tmp_path / "build" / "served"
    served.mkdir(parents=True)
    (served / "config.json").write_text("{}")
    built = StageResult(stage="build", status="ran", key="b" * 64, path=str(tmp_path / "build"), outputs={"served_dir": "served"})
    model = StageResult(stage="download", status="ran", key="d" * 64, outputs={"revision": "abc"})
    runtime = get_runtime(recipe.runtime)
    ctx = RunContext(runtime=runtime, store_root=str(tmp_path / "store"), mlflow_run=TrackedRun("", ""))
    result = package(recipe, built, model, "l" * 64, ctx, package_key(recipe, built, runtime), quantized)
    assert result.status == "skipped"  # no daemon: the Dockerfile is still written
    text = result.file("dockerfile").read_text()
    return dict(re.findall(r'(ai\.engineforge\.[a-z0-9.-]+)="([^"]*)"', text))


@pytest.mark.usefixtures("no_docker")
def test_quantized_image_labels_equal_the_lock_files_quantization(tmp_path):
    recipe = parse_recipe(recipe_text("synthetic:tiny-llama"), "<test>")
    labels = _dockerfile_labels(recipe, QUANTIZED, tmp_path)
    lock = lockfile.lock_core(recipe, {"quantize": QUANTIZED}, {})
    assert {name.removeprefix("ai.engineforge.quantize."): value for name, value in labels.items()
            if name.startswith("ai.engineforge.quantize.")} == {
        name.replace("_", "-"): value for name, value in lock["quantization"].items()}
    assert labels["ai.engineforge.quantize.modelopt-version"] == "0.47.0"


@pytest.mark.usefixtures("no_docker")
def test_unquantized_image_has_no_quantize_labels(tmp_path):
    recipe = parse_recipe(recipe_text("synthetic:tiny-llama"), "<test>")
    labels = _dockerfile_labels(recipe, None, tmp_path)
    assert labels["ai.engineforge.recipe"] == "spine-test"
    assert not [name for name in labels if name.startswith("ai.engineforge.quantize.")]
