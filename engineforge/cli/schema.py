import json

from engineforge.recipe.schema import Recipe


def command() -> int:
    """Print the recipe JSON Schema (for editor completion and validation)."""
    print(json.dumps(Recipe.model_json_schema(by_alias=True), indent=2))
    return 0
