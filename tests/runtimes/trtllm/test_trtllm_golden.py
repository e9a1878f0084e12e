"""Golden tests: `engineforge run RECIPE --dry-run --json` for every TensorRT-LLM example recipe.

The goldens (tests/golden/<recipe>.dry-run.json) hold every generated argv list and file text; they
are reviewed by hand against ../shared/trtllm-facts.md, and test_trtllm_contract.py checks the same
output against the facts mechanically. Regenerate after an intended change with
`ENGINEFORGE_UPDATE_GOLDENS=1 pytest tests/runtimes/trtllm/test_trtllm_golden.py` and review the diff.
"""

import json
import os
from pathlib import Path

import pytest
import yaml

from engineforge.cli.app import main
from engineforge.versions import TRTLLM_TEST_SWITCH as TEST_SWITCH

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden"
# One run each; a recipe with a sweep section is many runs (flows/sweep.py) and has no single plan.
RECIPES = [r for r in sorted((REPO / "recipes").glob("trtllm*.yaml")) if "sweep" not in yaml.safe_load(r.read_text())]


@pytest.fixture
def fixed_machine(monkeypatch, tmp_path):
    """A dry run reads the machine in two places; pin both (no GPU detected: the planner assumes its
    default card; 8 visible GPUs for trtllm-build --workers) and leave TensorRT-LLM uninstalled."""
    monkeypatch.setattr("engineforge.planner.planner.detect_gpus", lambda: None)
    monkeypatch.setattr("engineforge.runtimes.trtllm.engine.visible_gpus", lambda: 8)
    monkeypatch.delenv(TEST_SWITCH, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.chdir(tmp_path)


def dry_run(recipe: Path, capsys, *flags: str) -> str:
    assert main(["run", str(recipe), "--dry-run", *flags]) == 0
    return capsys.readouterr().out


def test_there_are_the_five_example_layouts():
    assert [r.stem for r in RECIPES] == ["trtllm-engine-llama-tp4", "trtllm-engine-mixtral-ep2", "trtllm-llama-1gpu",
                                         "trtllm-llama-disagg", "trtllm-llama-fp8", "trtllm-llama-tp4-pp2"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.stem)
def test_dry_run_json_matches_its_golden_and_is_stable(recipe, fixed_machine, capsys, tmp_path):
    text = dry_run(recipe, capsys, "--json")
    golden = GOLDEN / f"{recipe.stem}.dry-run.json"
    if os.environ.get("ENGINEFORGE_UPDATE_GOLDENS"):
        golden.write_text(text)
    assert json.loads(text) == json.loads(golden.read_text())
    assert dry_run(recipe, capsys, "--json") == text  # same recipe, same machine: same bytes
    assert list(tmp_path.iterdir()) == []  # nothing run, nothing written (no store, no MLflow database)


def test_text_dry_run_shows_commands_and_files(fixed_machine, capsys):
    text = dry_run(REPO / "recipes" / "trtllm-engine-llama-tp4.yaml", capsys)
    assert "$ trtllm-build --checkpoint_dir '<shard>/checkpoint' --output_dir '<build>/served/engine'" in text
    assert "[shard]" in text and "rank3.safetensors" in text and "nothing is run" in text
