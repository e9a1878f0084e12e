"""What a user sees before any run: `engineforge --version`, and help that reads as help."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engineforge.cli.app import COMMANDS, app

CONSOLE_SCRIPT = Path(sys.executable).with_name("engineforge")


def test_version_from_the_console_script():
    done = subprocess.run([str(CONSOLE_SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"engineforge {version('engineforge')}\n"


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_no_typer_placeholders(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "<list[" not in result.output
    assert "[OPTIONS] {" not in result.output  # typer 0.29 writes a required argument as {name}


def test_run_usage_names_the_recipe():
    output = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "Usage: engineforge run [OPTIONS] RECIPE" in output
    assert "STAGE" in output and "REFRESH" not in output  # the value a user types, not the parameter


def test_run_help_names_every_stage():
    from engineforge.stages.pipeline import NAMES  # the help text is written out so that `run` starts without importing them

    output = " ".join(CliRunner().invoke(app, ["run", "--help"]).output.replace("│", " ").split())
    assert f"Rerun a stage even if cached: {', '.join(NAMES)} or all." in output
