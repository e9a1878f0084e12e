"""Generated recipes, well-formed and hostile: `validate` either accepts one (and then so does the
JSON schema) or refuses it in lines of `file:line: ...`; never a traceback, never more than 2 s."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engineforge.recipe import safe_yaml
from engineforge.recipe.schema import Recipe
from engineforge.recipe_checks import check_recipe_text
from engineforge.recipe.file import RecipeError

SCHEMA = Recipe.model_json_schema(by_alias=True)
ORIGIN = "fuzz.yaml"


def _fields(section: dict) -> list[str]:
    return list(section.get("properties", {}))


SECTIONS = {name: _fields(SCHEMA["$defs"][ref["$ref"].rsplit("/", 1)[-1]])
            for name, prop in SCHEMA["properties"].items()
            for ref in [prop] + prop.get("anyOf", []) if "$ref" in ref}

numbers = st.one_of(
    st.integers(-3, 10_000), st.integers(10**20, 10**80), st.booleans(), st.floats(),
    st.sampled_from([0, 1, 2, 4, 8, 128, 1024, 10**39]),
)
words = st.one_of(st.text(max_size=8), st.sampled_from(["auto", "cpu", "fp8", "llama", "mixtral", "..", "a/b", ""]))
scalars = st.one_of(numbers, words, st.none())
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(words, scalars, max_size=3))
sources = st.one_of(st.sampled_from(["synthetic:tiny", "synthetic:fuzz", "hf://org/model", "hf://bad", "./nowhere", "s3://x"]),
                    st.text(max_size=20))


@st.composite
def recipe_data(draw) -> dict:
    data = {"name": draw(st.one_of(st.sampled_from(["fuzz", "a.b", "Bad Name"]), words)),
            "model": {"source": draw(sources)}}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4, unique=True)):
        fields = draw(st.lists(st.sampled_from(SECTIONS[section] or ["x"]), max_size=4, unique=True))
        data[section] = {field: draw(values) for field in fields}
    if draw(st.booleans()):
        data["parallel"] = draw(st.sampled_from(["auto", "most", {"tensor": "auto", "gpus_per_node": 16}]))
    if draw(st.booleans()):
        data[draw(words)] = draw(values)  # an unknown top-level key
    return data


HOSTILE = [
    "!!int abc", "!!python/object/apply:os.system ['true']", "&a [*a]", "*nowhere", "[" * 40 + "]" * 40,
    "{a: " * 40 + "}" * 40, "? [a, b]\n: c", "<<: {a: 1}", "2024-13-45", "1" * 5000, "0x" + "f" * 80, "1e99999",
    ".nan", "-.inf", "\t", "\x00", "\ufeff", "{", "- a", "'unterminated", "name: again", "~", "!!binary aGk=",
    "|\n  text", ">-\n  folded", "a: &x 1\nb: *x",
]


@st.composite
def recipe_text(draw) -> str:
    lines = yaml.safe_dump(draw(recipe_data()), sort_keys=False, allow_unicode=True).splitlines()
    for _ in range(draw(st.integers(0, 3))):  # splice hostile text into the well-formed document
        at = draw(st.integers(0, len(lines)))
        indent = " " * draw(st.sampled_from([0, 2, 4]))
        key = draw(st.sampled_from(["", "name: ", "build: ", "x: ", "- "]))
        lines.insert(at, indent + key + draw(st.sampled_from(HOSTILE)))
    return "\n".join(lines) + "\n"


# The first layout check imports the planner; do it before the clock runs.
check_recipe_text("name: warm\nmodel:\n  source: synthetic:tiny\nparallel: auto\n", ORIGIN, None)


@settings(max_examples=1000, deadline=timedelta(seconds=2), database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=recipe_text())
def test_no_generated_recipe_gives_a_traceback(text):
    try:
        recipe = check_recipe_text(text, ORIGIN, Path("/nonexistent-fuzz-base"))
    except RecipeError as error:
        assert error.problems and all(line.startswith(f"{ORIGIN}:") and line.split(":")[1].isdigit()
                                      for line in error.problems), error.problems
        assert all("\n" not in line for line in error.problems)
        return
    import jsonschema

    jsonschema.validate(safe_yaml.load(text)[0], SCHEMA)  # what validate accepts, the schema accepts
    assert recipe.name
