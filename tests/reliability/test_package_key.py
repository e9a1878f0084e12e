"""Two recipes with equal inputs but different names get an image each: the name is in the package key."""

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stage_result import StageResult
from engineforge.stages.package import package_key

RECIPE = "name: {name}\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n"


def test_the_package_key_includes_the_recipe_name(no_docker):
    built = StageResult(stage="build", status="ran", key="b" * 64, path="/store/build/" + "b" * 64)
    runtime = get_runtime("transformers")
    first, second = (package_key(parse_recipe(RECIPE.format(name=name)), built, runtime) for name in ("alpha", "beta"))
    assert first != second
    assert first == package_key(parse_recipe(RECIPE.format(name="alpha")), built, runtime)
