"""Recipes that follow a moving hub revision: which ones, pinning, and the Variable that remembers."""

import re

import pytest

from engineforge.sources import revisions
from engineforge.recipe.file import parse_recipe

RECIPE = """\
# keep this comment
name: follows-main
model:
  source: hf://acme/tiny-llama@main   # the branch moves
  dtype: float32
runtime: transformers
"""


def test_only_branches_and_tags_of_hub_models_move():
    assert revisions.moving_source(parse_recipe(RECIPE)).revision == "main"
    assert revisions.moving_source(parse_recipe(RECIPE.replace("@main", ""))).revision == "main"
    assert revisions.moving_source(parse_recipe(RECIPE.replace("@main", "@v1.0"))).revision == "v1.0"
    assert revisions.moving_source(parse_recipe(RECIPE.replace("@main", "@" + "a" * 40))) is None
    assert revisions.moving_source(parse_recipe(RECIPE.replace("hf://acme/tiny-llama@main", "synthetic:tiny"))) is None


def test_pinning_changes_only_the_source_and_keeps_comments():
    sha = "0123456789abcdef0123456789abcdef01234567"
    pinned = revisions.pinned_recipe(RECIPE, sha)
    assert parse_recipe(pinned).model.source == f"hf://acme/tiny-llama@{sha}"
    assert pinned.replace(f'"hf://acme/tiny-llama@{sha}"', "hf://acme/tiny-llama@main") == RECIPE
    flow_style = "name: x\nmodel: {source: 'hf://acme/tiny-llama', dtype: float32}\n"
    assert parse_recipe(revisions.pinned_recipe(flow_style, sha)).model.source == f"hf://acme/tiny-llama@{sha}"


@pytest.mark.parametrize("name", ["tiny-llama", "llama_3.1-8b", "a.b", "a_b"])
def test_variable_names_are_valid_and_distinct(name):
    assert re.fullmatch(r"[a-z0-9_-]+", revisions.variable_name(name))
    assert len({revisions.variable_name(n) for n in ("a.b", "a_b", "a-b")}) == 3
