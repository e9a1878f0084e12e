"""Reading recipe YAML into a `Recipe`, with errors that point at file, line and field.

`yaml.safe_load` gives the data; `yaml.compose` (also safe: it builds nodes, never objects)
gives the line of every key so that a pydantic error location can be shown as `file:line`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engineforge.errors import UserError
from engineforge.recipe import Recipe


class RecipeError(UserError):
    """One or more problems in a recipe, one line each: `file:line: field: message`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError([f"{path}: no such recipe file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError([f"{path}: cannot read recipe ({error.__class__.__name__}: {error})"]) from None
    return parse_recipe(text, origin=str(path))


def check_recipes(paths: list[Path]) -> tuple[list[tuple[Path, Recipe]], list[str]]:
    """Load every recipe: the good ones, and one line per problem in the others (what `validate` prints)."""
    loaded: list[tuple[Path, Recipe]] = []
    problems: list[str] = []
    for path in paths:
        try:
            loaded.append((Path(path), load_recipe(path)))
        except RecipeError as error:
            problems.extend(error.problems)
    return loaded, problems


def parse_recipe(text: str, origin: str = "<recipe>") -> Recipe:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "1"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError([f"{origin}:{line}: invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise RecipeError([f"{origin}:1: a recipe is a YAML mapping with at least `name` and `model.source`"])
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError([_describe(error_item, root, origin) for error_item in error.errors()]) from None


def recipe_hash(recipe: Recipe) -> str:
    """Hash of the resolved recipe (defaults filled in), stable across key order and comments."""
    return hashlib.sha256(yaml.safe_dump(recipe.to_data(), sort_keys=True).encode()).hexdigest()


def _describe(error: dict[str, Any], root: yaml.Node, origin: str) -> str:
    location = [part for part in error["loc"] if not _is_union_tag(part)]
    field = ".".join(str(part) for part in location) or "(recipe)"
    line = _line_of(root, location)
    return f"{origin}:{line}: {field}: {_message(error)}"


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member ("int", "function-before[...]") to the location; users never wrote it.
    return isinstance(part, str) and ("[" in part or part in {"int", "str", "float", "bool", "literal['auto']"})


def _line_of(node: yaml.Node | None, location: list[Any]) -> int:
    """Line of the deepest YAML node on the error's path (1-based)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            key, node = match
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _message(error: dict[str, Any]) -> str:
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against `engineforge schema`"
    if kind == "missing":
        return "required; add it"
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "must be an integer"
    if kind in {"float_type", "float_parsing"}:
        return "must be a number"
    if kind in {"bool_type", "bool_parsing"}:
        return "must be true or false"
    if kind == "string_type":
        return "must be a string"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "must be a mapping of keys to values"
    if kind == "list_type":
        return "must be a list"
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"must match {context.get('pattern')} (lowercase letters, digits, . _ -)"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        return error["msg"].replace("Input should be", "must be")
    return error["msg"]
