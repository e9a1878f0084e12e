"""Recipes that follow a moving hub revision (`hf://ORG/NAME@main`): which move, pinned copy, memory.

The revision watcher flow asks the hub (or `$HF_ENDPOINT`, a mirror) which commit the branch
points at, compares it with the commit last submitted for the recipe (a Prefect Variable), and
submits a copy of the recipe pinned to the new commit.
"""

from __future__ import annotations

import hashlib

import yaml

from engineforge.errors import UserError
from engineforge.recipe.schema import Recipe
from engineforge.sources.model_source import COMMIT, HubSource, parse_source

VARIABLE_PREFIX = "engineforge-last-built-"


def moving_source(recipe: Recipe) -> HubSource | None:
    """The hub source when its revision is a branch or tag (a commit sha never moves)."""
    if not recipe.model.source.startswith("hf://"):
        return None
    source = parse_source(recipe.model)
    return None if COMMIT.fullmatch(source.revision) else source


def pinned_recipe(text: str, commit: str) -> str:
    """The recipe text with `model.source` pinned to `commit`; everything else (comments too) kept."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    node = _mapping_value(_mapping_value(root, "model"), "source")
    if not isinstance(node, yaml.ScalarNode):
        raise UserError("model.source: expected a string to pin")
    repo = node.value[len("hf://"):].split("@", 1)[0]
    start, end = node.start_mark.index, node.end_mark.index
    return f'{text[:start]}"hf://{repo}@{commit}"{text[end:]}'


def variable_name(recipe_name: str) -> str:
    """Prefect Variable names allow lowercase letters, digits, - and _; recipe names also allow dots."""
    if "." not in recipe_name:
        return VARIABLE_PREFIX + recipe_name
    digest = hashlib.sha256(recipe_name.encode()).hexdigest()[:8]
    return f"{VARIABLE_PREFIX}{recipe_name.replace('.', '_')}-{digest}"


def _mapping_value(node, key: str):
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if key_node.value == key:
                return value
    raise UserError(f"{key}: not found in the recipe")
