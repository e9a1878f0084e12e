from pathlib import Path

import typer
from rich.console import Console

from engineforge.errors import UserError
from engineforge.recipe_file import RecipeError, load_recipe


def command(recipes: list[Path] = typer.Argument(..., help="Recipe YAML files to check.")) -> int:
    """Check recipes against the schema; print one line per problem (exit 2 if any)."""
    console = Console(highlight=False)
    problems: list[str] = []
    for path in recipes:
        try:
            recipe = load_recipe(path)
        except RecipeError as error:
            problems.extend(error.problems)
        else:
            console.print(f"{path}: ok ({recipe.name}, runtime {recipe.runtime})", markup=False)
    if problems:
        raise UserError("\n".join(problems))
    return 0
