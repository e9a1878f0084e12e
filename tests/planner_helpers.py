"""Shared bits of the planner tests: the public config fixtures and recipes built around them."""

from __future__ import annotations

import json
from pathlib import Path

from engineforge.recipe.schema import Recipe

CONFIGS = Path(__file__).parent / "fixtures" / "model_configs"


def model_config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def recipe(source: str = "hf://org/model", parallel="auto", **sections) -> Recipe:
    """A trtllm recipe; `sections` are merged into the recipe data (build=..., serve=...)."""
    data = {"name": "planned", "model": {"source": source}, "runtime": "trtllm", "parallel": parallel}
    data.update(sections)
    return Recipe.model_validate(data)
