"""Reading recipe YAML into a `Recipe`, with errors that point at file, line and field.

`safe_yaml.load` gives the data and its node tree (bounded: size, nesting, aliases; no tags, no
duplicate keys); the tree gives the line of every key so that a pydantic error location can be
shown as `file:line: field: message`.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engineforge.recipe import safe_yaml
from engineforge.errors import UserError
from engineforge.recipe.schema import EXPERIMENT_PATTERN, NAME_PATTERN, Recipe

_NAMED_FIELD = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)+): ")
MAX_PROBLEMS = 20  # per file: a file of 40,000 typos says so in 21 lines, not 40,000

# The allowed characters in words, for the patterns whose error names them.
PATTERN_WORDS = {
    NAME_PATTERN: "lowercase letters, digits, . _ -",
    EXPERIMENT_PATTERN: "letters, digits, space, . _ -, starting with a letter or digit",
}


class RecipeError(UserError):
    """One or more problems in a recipe, one line each: `file:line: field: message`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class RecipeLines:
    """Where each field of one recipe file is written, to prefix a problem with `file:line: field:`."""

    def __init__(self, origin: str, root: yaml.Node | None):
        self.origin, self.root = origin, root

    def problem(self, field: str, message: str) -> str:
        # A list index is ASCII digits; a key may be any digits ("¹" is a digit int() refuses).
        location = [int(part) if part.isascii() and part.isdigit() else part for part in field.split(".")] if field else []
        return f"{self.origin}:{_line_of(self.root, location)}: {_printable(field) or '(recipe)'}: {_printable(message)}"


def _printable(text: str) -> str:
    """One line, whatever a hostile key holds: newlines and control characters escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def load_recipe(path: str | Path) -> Recipe:
    return read_recipe_file(path)[0]


def read_recipe_file(path: str | Path) -> tuple[Recipe, RecipeLines]:
    """The recipe and where its fields are written (for checks that come after the schema's)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(safe_yaml.MAX_BYTES + 1)  # never more: the file may be huge, or /dev/zero
    except FileNotFoundError:
        raise RecipeError([f"{path}: no such recipe file"]) from None
    except OSError as error:
        raise RecipeError([f"{path}: cannot read recipe ({error.__class__.__name__}: {error.strerror or error})"]) from None
    if len(raw) > safe_yaml.MAX_BYTES:
        raise RecipeError([f"{path}:1: larger than {safe_yaml.MAX_BYTES // 1024} KiB; a recipe is a small YAML file"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise RecipeError([f"{path}:{line}: not UTF-8 text (byte {error.start}); save the recipe as UTF-8"]) from None
    return read_recipe(text, origin=str(path))


def parse_recipe(text: str, origin: str = "<recipe>") -> Recipe:
    return read_recipe(text, origin)[0]


def read_recipe(text: str, origin: str = "<recipe>") -> tuple[Recipe, RecipeLines]:
    try:
        data, root = safe_yaml.load(text)
    except safe_yaml.YamlProblem as problem:
        field = f" {problem.path}:" if problem.path else ""
        raise RecipeError([f"{origin}:{problem.line}:{field} {problem.message}"]) from None
    lines = RecipeLines(origin, root)
    if not isinstance(data, dict):
        raise RecipeError([f"{origin}:1: a recipe is a YAML mapping with at least `name` and `model.source`"])
    try:
        return Recipe.model_validate(data), lines
    except ValidationError as error:
        errors = error.errors()  # only the shown ones are looked up in the tree: 40,000 typos stay linear
        raise RecipeError(_capped([_describe(item, lines) for item in errors[:MAX_PROBLEMS]], len(errors), origin)) from None


def _capped(problems: list[str], total: int, origin: str) -> list[str]:
    """The first MAX_PROBLEMS of `total` problems, and a line saying how many more there are."""
    shown = problems[:MAX_PROBLEMS]
    return shown + ([f"{origin}:1: ... and {total - len(shown):,} more problems in the same file"] if total > len(shown) else [])


def recipe_hash(recipe: Recipe) -> str:
    """Hash of the resolved recipe (defaults filled in), stable across key order and comments."""
    return hashlib.sha256(yaml.safe_dump(recipe.to_data(), sort_keys=True).encode()).hexdigest()


def run_label(recipe: Recipe) -> str:
    """`tiny-llama-1a2b3c4d`: the recipe and the short hash of its content, naming its Prefect flow
    runs and MLflow runs so that runs of different versions of a recipe can be told apart."""
    return f"{recipe.name}-{recipe_hash(recipe)[:8]}"


def _describe(error: dict[str, Any], lines: RecipeLines) -> str:
    location = [part for part in error["loc"] if not _is_union_tag(part)]
    field = ".".join(str(part) for part in location)
    message = _message(error, location)
    named = _NAMED_FIELD.match(message)
    if named:  # a check across fields names the field it blames: `validate.max_tokens: ...`
        field = ".".join(filter(None, (field, named.group(1))))
        message = message[named.end():]
    return lines.problem(field, message)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member ("int", "function-before[...]") to the location; users never wrote it.
    return isinstance(part, str) and ("[" in part or part in {"int", "str", "float", "bool", "literal['auto']"})


def _line_of(node: yaml.Node | None, location: list[Any]) -> int:
    """Line of the deepest YAML node on the error's path (1-based)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
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


def _message(error: dict[str, Any], location: list[Any]) -> str:
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against `engineforge schema`"
    if kind == "missing":
        return "required; add it"
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than", "int_type", "float_type",
                "finite_number"}:
        return _range_message(kind, location, error.get("input"))
    if kind in {"bool_type", "bool_parsing"}:
        return "must be true or false"
    if kind == "string_type":
        return "must be a string (quote it)"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "must be a mapping of keys to values"
    if kind == "list_type":
        return "must be a list"
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}"
    if kind == "string_pattern_mismatch":
        pattern = context.get("pattern")
        return f"must match {pattern}" + (f" ({PATTERN_WORDS[pattern]})" if pattern in PATTERN_WORDS else "")
    return error["msg"]


def _range_message(kind: str, location: list[Any], value: Any) -> str:
    """`must be an integer from 1 to 2097152 (got 99999…)`: the allowed range, from the schema."""
    bounds = field_schema(tuple(str(part) for part in location))
    number = "an integer" if kind == "int_type" or bounds.get("type") == "integer" else "a number"
    low = bounds.get("minimum", bounds.get("exclusiveMinimum"))
    high = bounds.get("maximum", bounds.get("exclusiveMaximum"))
    if low is not None and high is not None:
        wanted = f"{number} from {low:g} to {high:g}" if number == "a number" else f"{number} from {low} to {high}"
    elif low is not None:
        wanted = f"{number} {'above' if 'exclusiveMinimum' in bounds else 'at least'} {low}"
    elif high is not None:
        wanted = f"{number} {'below' if 'exclusiveMaximum' in bounds else 'at most'} {high}"
    else:
        wanted = number
    shown = json.dumps(value) if isinstance(value, str) else repr(value)
    if isinstance(value, bool):
        shown += ", a boolean"
    return f"must be {wanted} (got {shown[:40]}{'…' if len(shown) > 40 else ''})"


def field_schema(location: tuple[str, ...]) -> dict[str, Any]:
    """The JSON schema of one field (its number bounds), following `$ref`s and optional unions."""
    schema = _recipe_schema()
    node: dict[str, Any] = schema
    for part in location:
        node = _resolve(schema, node)
        properties = node.get("properties", {})
        if part in properties:
            node = properties[part]
        elif isinstance(node.get("items"), dict) and part.isdigit():
            node = node["items"]
        else:
            return {}
    return _resolve(schema, node)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node:  # `int | None`, `int | "auto"`: the member that is not null or a word carries the bounds
            members = [member for member in node["anyOf"] if member.get("type") != "null" and "const" not in member]
            if len(members) != 1:
                return {key: value for key, value in node.items() if key != "anyOf"}
            node = {**{k: v for k, v in node.items() if k != "anyOf"}, **members[0]}
        else:
            return node


@lru_cache(maxsize=1)
def _recipe_schema() -> dict[str, Any]:
    return Recipe.model_json_schema(by_alias=True)
