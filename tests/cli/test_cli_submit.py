"""`engineforge submit` before anything reaches a server: recipe errors, parameters, the server check."""

import pytest

from engineforge.cli.app import main
from engineforge.cli.submit import _parse_params
from engineforge.errors import UserError
from engineforge.orchestration.submission import deployment_name


def test_params_are_read_as_yaml():
    assert _parse_params(["refresh=[validate, build]", "n=3", "flag=true", "empty="]) == {
        "refresh": ["validate", "build"], "n": 3, "flag": True, "empty": ""}
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        _parse_params(["refresh"])


def test_a_bare_deployment_name_belongs_to_model_to_deployment():
    assert deployment_name("nightly") == "model-to-deployment/nightly"
    assert deployment_name("scheduled-recipe/example-recipes") == "scheduled-recipe/example-recipes"


def test_recipe_errors_come_first_and_match_validate(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad Name\nmodel:\n  source: synthetic:tiny\n")
    assert main(["validate", str(bad)]) == 2
    validated = capsys.readouterr().err
    assert main(["submit", str(bad)]) == 2
    assert capsys.readouterr().err == validated and f"{bad}:1: name:" in validated


def test_submit_needs_a_prefect_server(tmp_path, capsys, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    good = tmp_path / "good.yaml"
    good.write_text("name: good\nmodel:\n  source: synthetic:tiny\n")
    with temporary_settings(updates={PREFECT_API_URL: None}):
        assert main(["submit", str(good)]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err
