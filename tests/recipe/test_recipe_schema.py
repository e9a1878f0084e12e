import json

import pytest

from engineforge.cli.app import main
from engineforge.recipe.file import RecipeError, load_recipe, parse_recipe
from tests.conftest import REPO

BAD_TYPE = """name: tiny
model:
  source: synthetic:tiny
parallel:
  tensor: two
"""
UNKNOWN_KEY = """name: tiny
model:
  source: synthetic:tiny
build:
  max_batch_size: 4
  max_batch: 8
"""
BROKEN_YAML = """name: tiny
model:
  source: [synthetic:tiny
"""


def test_embedded_default_recipe_loads():
    recipe = load_recipe(REPO / "recipes" / "tiny-llama.yaml")
    assert (recipe.name, recipe.runtime, recipe.model.source) == ("tiny-llama", "transformers", "synthetic:tiny-llama")
    assert recipe.parallel.tensor == 1 and recipe.validate_.requests == 8


@pytest.mark.parametrize(
    "text, expected",
    [
        (BAD_TYPE, 'x.yaml:5: parallel.tensor: must be an integer from 1 to 1024 or "auto"'),
        (UNKNOWN_KEY, "x.yaml:6: build.max_batch: unknown key"),
        (BROKEN_YAML, "x.yaml:4: invalid YAML"),
    ],
)
def test_errors_name_file_line_and_field(text, expected):
    with pytest.raises(RecipeError) as error:
        parse_recipe(text, origin="x.yaml")
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith(expected)


def test_parallel_auto_shorthand_and_defaults():
    recipe = parse_recipe("name: a\nmodel: {source: synthetic:a}\nparallel: auto\n")
    assert (recipe.parallel.tensor, recipe.parallel.pipeline, recipe.parallel.expert) == ("auto", "auto", "auto")


@pytest.mark.parametrize(
    "source, ok",
    [("hf://meta-llama/Llama-3.1-8B@main", True), ("hf://org/name", True), ("hf://noslash", False),
     ("s3://bucket/model", False), ("synthetic:Bad Name", False), ("./models/llama", True)],
)
def test_model_source_forms(source, ok):
    text = f"name: a\nmodel:\n  source: '{source}'\n"
    if ok:
        assert parse_recipe(text).model.source == source
    else:
        with pytest.raises(RecipeError, match=r"<recipe>:3: model.source"):
            parse_recipe(text)


def test_validate_command_reports_every_problem_without_traceback(tmp_path, capsys):
    paths = []
    for name, text in (("bad-type", BAD_TYPE), ("unknown-key", UNKNOWN_KEY), ("broken", BROKEN_YAML)):
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(text)
    assert main(["validate", *map(str, paths)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith(f"error: {tmp_path}") for line in err)
    assert "Traceback" not in "".join(err)


def test_validate_command_accepts_the_examples(capsys):
    assert main(["validate", str(REPO / "recipes" / "tiny-llama.yaml")]) == 0
    assert "ok (tiny-llama" in capsys.readouterr().out


def test_schema_command_prints_strict_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) >= {"name", "model", "runtime", "parallel", "build", "serve", "validate", "package", "tracking"}


def _schema() -> dict:
    from engineforge.recipe.schema import Recipe

    return Recipe.model_json_schema(by_alias=True)


def test_every_field_of_the_schema_has_a_description():
    schema = _schema()
    sections = {"Recipe": schema, **schema["$defs"]}
    missing = [f"{name}.{key}" for name, section in sections.items()
               for key, field in section.get("properties", {}).items() if not field.get("description")]
    assert missing == []


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda path: path.name)
def test_the_schema_accepts_every_example_recipe(path):
    import jsonschema
    import yaml

    assert main(["validate", str(path)]) == 0
    jsonschema.validate(yaml.safe_load(path.read_text()), _schema())


def test_the_schema_accepts_parallel_auto_and_refuses_what_validate_refuses():
    import jsonschema

    schema = _schema()
    jsonschema.validate({"name": "a", "model": {"source": "synthetic:a"}, "parallel": "auto"}, schema)
    for bad in ({"parallel": "most"}, {"build": {"max_seq_len": 10**23}}, {"build": {"max_batch_size": True}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"name": "a", "model": {"source": "synthetic:a"}, **bad}, schema)


def test_numbers_in_exponent_form_are_numbers():
    # PyYAML alone reads `1e3` as text; strict numbers would then refuse what a user meant as 1000.
    recipe = parse_recipe("name: a\nmodel: {source: synthetic:a}\nvalidate:\n  gates:\n    min_output_tokens_per_s: 1e3\n")
    assert recipe.validate_.gates.min_output_tokens_per_s == 1000.0
