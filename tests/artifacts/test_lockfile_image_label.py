"""The image label `ai.engineforge.lock-sha256` (stamped before packaging) equals the lock file's
`core_sha256` (written after packaging and registering)."""

from engineforge.artifacts import lockfile
from engineforge.recipe.file import parse_recipe
from engineforge.stage_result import StageResult
from tests.conftest import recipe_text


def result(stage: str, key: str | None = None) -> StageResult:
    return StageResult(stage=stage, status="ran", key=key, outputs={"revision": "abc", "files": {"config.json": "00"}})


def test_label_equals_the_lock_files_core_sha256():
    recipe = parse_recipe(recipe_text("synthetic:tiny-llama"), "<test>")
    plan = {"tp": 1, "pp": 1, "ep": 1}
    results = {"download": result("download", "d" * 64), "build": result("build", "b" * 64),
               "validate": result("validate", "v" * 64)}
    label = lockfile.core_digest(lockfile.lock_core(recipe, results, plan))  # what the flow hands the package stage
    results |= {"package": result("package", "p" * 64), "register": result("register", "r" * 64)}
    lock = lockfile.complete_lock(lockfile.lock_core(recipe, results, plan), results["package"])
    assert lock["core_sha256"] == label
    assert set(lock["stages"]) == {"download", "build", "validate", "package", "register"}  # still recorded


def test_the_core_digest_changes_with_what_it_covers():
    recipe = parse_recipe(recipe_text("synthetic:tiny-llama"), "<test>")
    core = lockfile.lock_core(recipe, {"build": result("build", "b" * 64)}, {"tp": 1})
    other = lockfile.lock_core(recipe, {"build": result("build", "c" * 64)}, {"tp": 1})
    assert lockfile.core_digest(core) != lockfile.core_digest(other)
