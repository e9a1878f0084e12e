from pathlib import Path

import typer
from rich.console import Console

from engineforge.errors import UserError
from engineforge.recipe_checks import check_recipes


def command(recipes: list[Path] = typer.Argument(..., help="Recipe YAML files to check.")) -> int:
    """Check recipes against the schema; print one line per problem (exit 2 if any)."""
    console = Console(highlight=False)
    loaded, problems = check_recipes(recipes)
    for path, recipe in loaded:
        target = f", TensorRT-LLM {recipe.trtllm.version}" if recipe.trtllm else ""
        console.print(f"{path}: ok ({recipe.name}, runtime {recipe.runtime}{target})", markup=False)
    if problems:
        raise UserError("\n".join(problems))
    return 0
