"""Hostile and broken recipes meet `engineforge validate` (and `run`): one line each, exit 2, no traceback.

Each case is a file an attacker or an unlucky user could hand the CLI; before the bounded loader,
these gave RecursionError, ValueError tracebacks, quadratic time, or passed validation and
overflowed later.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engineforge.cli.app import main

BASE = "name: hostile\nmodel:\n  source: synthetic:tiny\n"
ONE_LINE = re.compile(r"^error: (?P<file>[^:]+):(?P<line>\d+): (?P<rest>.+)$")


def validate(tmp_path: Path, capsys, text: str | bytes, command: str = "validate") -> list[str]:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main([command, str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    for line in lines:
        match = ONE_LINE.match(line)
        assert match and match["file"] == str(path), line
    return lines


@pytest.mark.parametrize("text, expected", [
    ("a: " + "[" * 500 + "]" * 500 + "\n", ":1: nested more than 32 levels deep"),
    ("a: " + "{a: " * 50_000 + "}" * 50_000 + "\n", ":1: nested more than 32 levels deep"),
    ("a:\n" + "".join(" " * i + "- \n" for i in range(1000)), ":34: nested more than 32 levels deep"),
    ("a: [" + "1, " * 300_000 + "]\n", ":1: more than 20,000 values; a recipe holds a few hundred"),
    ("".join(f"k{i}: {i}\n" for i in range(40_000)), ":10001: more than 20,000 values; a recipe holds a few hundred"),
    (BASE + "name: other\n", ":4: name: duplicate key"),
    (BASE + "build:\n  max_batch_size: 4\n  max_batch_size: 8\n", ":6: build.max_batch_size: duplicate key"),
    (BASE + "build:\n  max_batch_size: !!int eight\n", ":5: build.max_batch_size: YAML tag !!int not allowed"),
    (BASE + "build: !!python/object:os.system {}\n", "YAML tag !!python/object:os.system not allowed"),
    (BASE + "validate:\n  prompts: !!set {a, b}\n", "YAML tag !!set not allowed"),
    (BASE + "build:\n  max_seq_len: " + "9" * 5000 + "\n", ":5: build.max_seq_len: number with 5,000 characters"),
    (BASE + "package:\n  base: 2024-13-45\n", ":5: package.base: not a valid date"),
    (BASE + "a: &a [1, *a]\n", "an alias refers to a value that contains it"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
     for p, c in zip("abcdefgh", "bcdefghi")), "expands to more than 20,000 values"),
    (b"name: \xff\xfe\n", ":1: not UTF-8 text"),
    ("name: a\n\tmodel: x\n", "invalid YAML"),
    ("- just\n- a list\n", ":1: a recipe is a YAML mapping"),
])
def test_broken_yaml_is_one_line_not_a_traceback(tmp_path, capsys, text, expected):
    lines = validate(tmp_path, capsys, text)
    assert len(lines) == 1 and expected in lines[0], lines


def test_a_recipe_over_1_mib_is_refused_before_parsing(tmp_path, capsys):
    lines = validate(tmp_path, capsys, BASE + "# " + "x" * (1 << 20) + "\n")
    assert lines == [f"error: {tmp_path / 'recipe.yaml'}:1: larger than 1024 KiB; a recipe is a small YAML file"]


def test_5000_unknown_keys_are_reported_in_21_lines(tmp_path, capsys):
    keys = "".join(f"typo_{i}: {i}\n" for i in range(5_000))
    lines = validate(tmp_path, capsys, BASE + keys)
    assert len(lines) == 21
    assert lines[0].endswith(":4: typo_0: unknown key; check its spelling against `engineforge schema`")
    assert lines[-1].endswith(":1: ... and 4,980 more problems in the same file")


@pytest.mark.parametrize("section, expected", [
    ("build:\n  max_seq_len: 99999999999999999999999\n",
     ":5: build.max_seq_len: must be an integer from 1 to 16777216 (got 99999999999999999999999)"),
    ("parallel:\n  gpus_per_node: " + str(10**39) + "\n", ":5: parallel.gpus_per_node: must be an integer from 1 to 128"),
    ("parallel:\n  tensor: 100000\n", ':5: parallel.tensor: must be an integer from 1 to 1024 or "auto"'),
    ("build:\n  max_batch_size: true\n", ":5: build.max_batch_size: must be an integer from 1 to 65536 (got True, a boolean)"),
    ("build:\n  max_batch_size: '8'\n", ':5: build.max_batch_size: must be an integer from 1 to 65536 (got "8")'),
    ("validate:\n  requests: 0\n", ":5: validate.requests: must be an integer from 1 to 1000000 (got 0)"),
    ("validate:\n  gates:\n    max_error_rate: .nan\n", ":6: validate.gates.max_error_rate: must be a number from 0 to 1"),
    ("validate:\n  gates:\n    min_output_tokens_per_s: .inf\n", "validate.gates.min_output_tokens_per_s: must be a number at least 0"),
    ("serve:\n  continuous_batching: 1\n", ":5: serve.continuous_batching: must be true or false"),
    ("validate:\n  max_tokens: 500\n", ":5: validate.max_tokens: 500 output tokens plus the longest prompt"),
    ("tracking:\n  experiment: ..\n", ":5: tracking.experiment: must match"),
    ("tracking:\n  experiment: ../../etc\n", ":5: tracking.experiment: must match"),
    ("tracking:\n  experiment: team/x\n", ":5: tracking.experiment: must match"),
])
def test_absurd_values_are_refused_with_the_range(tmp_path, capsys, section, expected):
    lines = validate(tmp_path, capsys, BASE + section)
    assert len(lines) == 1 and expected in lines[0], lines


def test_gpus_per_node_10_to_the_39_no_longer_reaches_dry_run(tmp_path, capsys):
    lines = validate(tmp_path, capsys, BASE + f"runtime: trtllm\nparallel:\n  gpus_per_node: {10**39}\n", command="run")
    assert "parallel.gpus_per_node: must be an integer from 1 to 128" in lines[0]


def test_synthetic_name_without_a_shape_is_an_error(tmp_path, capsys):
    lines = validate(tmp_path, capsys, "name: a\nmodel:\n  source: synthetic:llama-3.1-70b\n")
    assert lines[0].endswith(":3: model.source: synthetic:llama-3.1-70b: no model.synthetic section gives this "
                             "model's shape; add one (hidden_size, num_hidden_layers, ...: see `engineforge schema`) "
                             "or use synthetic:tiny-llama for the default tiny Llama")


def test_a_synthetic_name_with_its_shape_is_fine(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: a\nmodel:\n  source: synthetic:llama-3.1-70b\n  synthetic:\n    num_hidden_layers: 3\n")
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_local_model_outside_the_allowed_roots_is_refused(tmp_path, capsys, monkeypatch):
    model = tmp_path / "elsewhere" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    allowed = tmp_path / "models"
    allowed.mkdir()
    (allowed / "escape").symlink_to(model)  # a link out of the root is outside it
    monkeypatch.setenv("ENGINEFORGE_MODEL_ROOTS", f"{allowed}:{tmp_path / 'other'}")
    for source in (str(model), f"{allowed}/../elsewhere/model", str(allowed / "escape")):
        lines = validate(tmp_path, capsys, f"name: a\nmodel:\n  source: '{source}'\n")
        assert ":3: model.source: local paths on this host must be under ENGINEFORGE_MODEL_ROOTS" in lines[0]
    monkeypatch.setenv("ENGINEFORGE_MODEL_ROOTS", "")  # set but empty: no local directory at all
    lines = validate(tmp_path, capsys, f"name: a\nmodel:\n  source: '{model}'\n")
    assert "ENGINEFORGE_MODEL_ROOTS (none)" in lines[0]


def test_local_model_under_an_allowed_root_is_read(tmp_path, capsys, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("ENGINEFORGE_MODEL_ROOTS", str(tiny_model_dir.parent))
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: a\nmodel:\n  source: '{tiny_model_dir}'\n")
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_the_operators_tracking_uri_wins_over_the_recipes(monkeypatch, tmp_path):
    from engineforge.tracking import mlflow_runs
    from engineforge.recipe.file import parse_recipe

    recipe = parse_recipe(BASE + f"tracking:\n  uri: sqlite:///{tmp_path}/attacker/mlflow.db\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/operator.db")
    assert mlflow_runs.tracking_uri(recipe) == f"sqlite:///{tmp_path}/operator.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert mlflow_runs.tracking_uri(recipe) == f"sqlite:///{tmp_path}/attacker/mlflow.db"  # a user's own recipe, no operator


def test_engineforge_worker_pins_tracking_and_allows_no_local_models(monkeypatch, capsys):
    from engineforge.cli.worker import _operator_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ENGINEFORGE_MODEL_ROOTS", raising=False)
    assert _operator_settings() == {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db", "ENGINEFORGE_MODEL_ROOTS": ""}
    assert "local model directories: none allowed" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("ENGINEFORGE_MODEL_ROOTS", "/models")
    assert _operator_settings() == {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "ENGINEFORGE_MODEL_ROOTS": "/models"}


def test_a_calibration_file_outside_the_allowed_roots_is_refused(tmp_path, monkeypatch):
    from engineforge.errors import UserError
    from engineforge.quantize.calibration import dataset_path
    from engineforge.recipe.schema import CalibrationSpec

    secret = tmp_path / "secret.txt"
    secret.write_text("not for recipes\n")
    monkeypatch.setenv("ENGINEFORGE_MODEL_ROOTS", str(tmp_path / "models"))
    with pytest.raises(UserError, match="quantize.calibration.dataset .*must be under ENGINEFORGE_MODEL_ROOTS"):
        dataset_path(CalibrationSpec(dataset=str(secret)))
    monkeypatch.delenv("ENGINEFORGE_MODEL_ROOTS")
    assert dataset_path(CalibrationSpec(dataset=str(secret))) == secret  # no roots set: a user's own file


def test_the_experiment_name_error_lists_the_characters_it_allows(tmp_path, capsys):
    """It listed the recipe name's (lowercase only), which the experiment pattern is not."""
    lines = validate(tmp_path, capsys, BASE + "tracking:\n  experiment: ../x\n")
    assert lines[0].endswith("(letters, digits, space, . _ -, starting with a letter or digit)"), lines
