"""What `run` checks before any work, checked by `engineforge validate` too, with file and line.

The schema (recipe/schema.py) sees one recipe alone; these checks look at what it points to without doing
any work: the local model directory (under the worker's allowed roots) and its config.json, a
synthetic model's shape, and the parallel layout against the model and the planner's memory model.
Hub models are not fetched here: their layout is checked when `run` fetches config.json.
"""

from __future__ import annotations

from pathlib import Path

from engineforge.errors import UserError
from engineforge.recipe.schema import DEFAULT_SYNTHETIC_NAMES, Recipe
from engineforge.recipe.file import RecipeError, RecipeLines, read_recipe, read_recipe_file
from engineforge.runtime_traits import runtime_traits


def check_recipe_file(path: str | Path) -> Recipe:
    """The recipe, or RecipeError with one line per problem: the schema's, then these checks'."""
    recipe, lines = read_recipe_file(path)
    return _checked(recipe, lines, Path(path).resolve().parent)


def check_recipe_text(text: str, origin: str, base_dir: Path | None) -> Recipe:
    recipe, lines = read_recipe(text, origin)
    return _checked(recipe, lines, base_dir)


def check_recipes(paths: list[Path]) -> tuple[list[tuple[Path, Recipe]], list[str]]:
    """Every recipe checked: the good ones, and one line per problem in the others (what `validate` prints)."""
    loaded: list[tuple[Path, Recipe]] = []
    problems: list[str] = []
    for path in paths:
        try:
            loaded.append((Path(path), check_recipe_file(path)))
        except RecipeError as error:
            problems.extend(error.problems)
    return loaded, problems


def _checked(recipe: Recipe, lines: RecipeLines, base_dir: Path | None) -> Recipe:
    problems = [lines.problem(field, message) for field, message in problems_of(recipe, base_dir)]
    if problems:
        raise RecipeError(problems)
    return recipe


def problems_of(recipe: Recipe, base_dir: Path | None) -> list[tuple[str, str]]:
    """(field, message) for each problem; the TensorRT-LLM options, the model source, then the layout it allows."""
    return trtllm_problems(recipe) + _model_problems(recipe, base_dir) + _curated_problems(recipe, base_dir)


def _curated_problems(recipe: Recipe, base_dir: Path | None) -> list[tuple[str, str]]:
    """sweep.curated's directory and its configs for the model and GPU (engineforge/trtllm/curated.py)."""
    if recipe.sweep is None or recipe.sweep.curated is None:
        return []
    from engineforge.trtllm.curated import starting_points

    try:
        starting_points(recipe, base_dir)
    except UserError as error:
        field, _, message = str(error).partition(": ")
        return [(field, message)]
    return []


def trtllm_problems(recipe: Recipe) -> list[tuple[str, str]]:
    """Every LLM API options file the recipe would write, checked against its TensorRT-LLM version's
    definitions (engineforge.trtllm.definitions): a key set in trtllm.llm_api is blamed there, any
    other on the version that does not define what engineforge writes."""
    if not runtime_traits(recipe.runtime).llm_api:  # only the PyTorch backend writes LLM API options files
        return []
    from engineforge.trtllm.definitions import problems
    from engineforge.trtllm.options import emitted_options

    try:
        files = emitted_options(recipe)
    except UserError as error:
        return [("build.kv_cache_dtype", str(error).removeprefix("build.kv_cache_dtype "))]
    set_here = recipe.trtllm.options()
    found: list[tuple[str, str]] = []
    for options in files.values():  # disaggregated roles share most options: each problem once
        for problem in problems(options, recipe.trtllm.version):
            path, message = problem.split(": ", 1)
            blamed = (f"trtllm.llm_api.{path}", message) if path.split(".")[0] in set_here else ("trtllm.version", problem)
            if blamed not in found:
                found.append(blamed)
    return found


def _model_problems(recipe: Recipe, base_dir: Path | None) -> list[tuple[str, str]]:
    config, problem = _model_config(recipe, base_dir)
    if problem:
        return [("model.source", problem)]
    if config is None:
        return []
    from engineforge.model.shape import UnsupportedModel
    from engineforge.planner import resolve_parallel

    try:
        resolve_parallel(recipe, config)
    except UnsupportedModel as error:  # the planner cannot size this config.json
        return [("model.source", str(error))]
    except UserError as error:
        return [("parallel", str(error).removeprefix("parallel: "))]
    return []


def _model_config(recipe: Recipe, base_dir: Path | None) -> tuple[dict | None, str | None]:
    """The model's config.json when it can be had without work (no hub), else None; or the problem."""
    source = recipe.model.source
    if source.startswith("hf://"):
        return None, None
    name = source.removeprefix("synthetic:")
    if name != source and "synthetic" not in recipe.model.model_fields_set and name not in DEFAULT_SYNTHETIC_NAMES:
        return None, (f"{source}: no model.synthetic section gives this model's shape; add one (hidden_size, "
                      f"num_hidden_layers, ...: see `engineforge schema`) or use synthetic:tiny-llama for the default tiny Llama")
    from engineforge.planner import load_model_config

    try:
        return load_model_config(recipe, base_dir), None
    except UserError as error:
        return None, str(error).removeprefix(f"model.source {source}: ")
