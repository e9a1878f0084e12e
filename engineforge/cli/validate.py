from pathlib import Path

import typer
from rich.console import Console

from engineforge.errors import UserError
from engineforge.recipe_checks import check_recipes
from engineforge.trtllm.support import blackwell_field


def command(recipes: list[Path] = typer.Argument(..., help="Recipe YAML files to check.")) -> int:
    """Check recipes against the schema; print one line per problem (exit 2 if any)."""
    console = Console(highlight=False)
    loaded, problems = check_recipes(recipes)
    for path, recipe in loaded:
        target = f", TensorRT-LLM {recipe.trtllm.version}" if recipe.trtllm else ""
        console.print(f"{path}: ok ({recipe.name}, runtime {recipe.runtime}{target})", markup=False)
        if field := blackwell_field(recipe):  # no GPU is known here: plan --gpu and the worker's run refuse it
            console.print(f"{path}: note: {field} nvfp4 needs a Blackwell GPU (B200, GB200); a Hopper or older "
                          "worker refuses it before any work (engineforge plan --gpu NAME checks a card)", markup=False,
                          soft_wrap=True)
    if problems:
        raise UserError("\n".join(problems))
    return 0
