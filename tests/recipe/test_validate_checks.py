"""`engineforge validate` checks what `run` checks, without doing any work: the model it points at
and the layout that model allows, each as `file:line: field: message` and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from engineforge.cli.app import main

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "model_configs"


def model_dir(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text((CONFIGS / f"{name}.json").read_text())
    return directory


def validate(tmp_path: Path, capsys, text: str) -> tuple[int, str]:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip()


def trtllm(source: str, parallel: str) -> str:
    return f"name: checked\nmodel:\n  source: '{source}'\nruntime: trtllm\nparallel:\n{parallel}"


def test_a_missing_local_model_directory(tmp_path, capsys):
    code, err = validate(tmp_path, capsys, f"name: a\nmodel:\n  source: {tmp_path / 'nowhere'}\n")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'recipe.yaml'}:3: model.source: ")
    assert "config.json" in err and len(err.splitlines()) == 1


def test_a_local_directory_without_config_json(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = validate(tmp_path, capsys, "name: a\nmodel:\n  source: empty\n")  # relative to the recipe
    assert code == 2 and f"recipe.yaml:3: model.source: " in err and "config.json" in err


@pytest.mark.parametrize("parallel, expected", [
    ("  tensor: 3\n", "32 attention heads do not split over tp 3"),
    ("  pipeline: 40\n  gpus_per_node: 64\n", "pp 40 exceeds the 32 layers"),
    ("  tensor: 2\n  expert: 2\n", "ep 2 needs a mixture-of-experts model"),
])
def test_a_layout_that_does_not_divide_the_model(tmp_path, capsys, parallel, expected):
    code, err = validate(tmp_path, capsys, trtllm(model_dir(tmp_path, "llama-3.1-8b"), parallel))
    assert code == 2 and ":5: parallel: tensor=" in err and expected in err, err


def test_experts_that_do_not_split(tmp_path, capsys):
    code, err = validate(tmp_path, capsys, trtllm(model_dir(tmp_path, "mixtral-8x7b"), "  tensor: 6\n  expert: 3\n  gpus_per_node: 6\n"))
    assert code == 2 and "8 experts do not split over ep 3" in err, err


def test_a_layout_that_does_not_fit_the_memory_model(tmp_path, capsys):
    code, err = validate(tmp_path, capsys, trtllm(model_dir(tmp_path, "llama-3.1-70b"), "  tensor: 1\n  gpus_per_node: 1\n"))
    assert code == 2 and ":5: parallel: tensor=1 pipeline=1 expert=1 does not work" in err and "short" in err, err


def test_a_synthetic_shape_is_checked_too(tmp_path, capsys):
    code, err = validate(tmp_path, capsys, "name: a\nmodel:\n  source: synthetic:tiny\nparallel:\n  tensor: 8\n")
    assert code == 2 and ":4: parallel: " in err and "4 attention heads do not split over tp 8" in err, err


def test_a_layout_that_fits_passes(tmp_path, capsys):
    code, err = validate(tmp_path, capsys, trtllm(model_dir(tmp_path, "llama-3.1-70b"), "  tensor: 4\n"))
    assert code == 0, err


def test_validate_reports_the_same_as_run(tmp_path, capsys):
    text = trtllm(model_dir(tmp_path, "llama-3.1-8b"), "  tensor: 3\n")
    _, validated = validate(tmp_path, capsys, text)
    assert main(["run", str(tmp_path / "recipe.yaml"), "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == validated
