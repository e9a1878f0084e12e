import json
from pathlib import Path

import pytest
import yaml
from planner_helpers import CONFIGS, model_config, recipe

from engineforge.cli.app import main
from engineforge.errors import UserError
from engineforge.planner.config_source import load_model_config


def model_dir(tmp_path: Path, name: str) -> Path:
    """A local model directory holding only the public config.json (weights are never read)."""
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text((CONFIGS / f"{name}.json").read_text())
    return directory


def recipe_file(tmp_path: Path, source: str, **sections) -> Path:
    data = {"name": "planned", "model": {"source": source}, "runtime": "trtllm", "parallel": "auto", **sections}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_local_directory_config_is_read(tmp_path):
    assert load_model_config(recipe(source=str(model_dir(tmp_path, "mixtral-8x7b")))) == model_config("mixtral-8x7b")


def test_local_directory_without_config_json_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        load_model_config(recipe(source=str(tmp_path)))


def test_synthetic_source_config_comes_from_the_recipe_spec():
    synthetic = recipe(source="synthetic:tiny", model={"source": "synthetic:tiny", "dtype": "bfloat16",
                                                         "synthetic": {"num_hidden_layers": 3, "hidden_size": 96,
                                                                       "num_attention_heads": 6, "num_key_value_heads": 3}})
    config = load_model_config(synthetic)
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_key_value_heads"]) == (3, 96, 3)


def test_fake_hub_fetches_only_config_json_at_the_revision(tmp_path, monkeypatch):
    calls = []
    local = model_dir(tmp_path, "llama-3.1-8b") / "config.json"

    def fake_download(repo, filename, revision=None, **options):  # the public hub is out of reach from tests
        calls.append((repo, filename, revision))
        return str(local)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    config = load_model_config(recipe(source="hf://meta-llama/Llama-3.1-8B@0e9e39f"))
    assert calls == [("meta-llama/Llama-3.1-8B", "config.json", "0e9e39f")]
    assert config["num_hidden_layers"] == 32


def test_fake_hub_failure_is_a_one_line_user_error(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(repo, filename, revision=None, **options):  # what huggingface_hub raises with no network and no cache
        raise LocalEntryNotFoundError("Cannot find the requested files in the local cache.\nmore detail")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", offline)
    with pytest.raises(UserError) as error:
        load_model_config(recipe(source="hf://org/missing"))
    assert "hf://org/missing: cannot fetch config.json" in str(error.value)
    assert "\n" not in str(error.value)


def test_plan_command_prints_every_candidate_and_the_choice(tmp_path, capsys):
    path = recipe_file(tmp_path, str(model_dir(tmp_path, "llama-3.1-70b")))
    assert main(["plan", str(path), "--gpu", "h100", "--gpus", "8"]) == 0
    out = capsys.readouterr().out
    assert "8 x H100-SXM" in out
    assert "rejected: 64 attention heads do not split over tp 3" in out and "rejected: memory (short" in out
    assert "chosen: throughput: tp=2 pp=1 ep=1" in out


def test_plan_command_json(tmp_path, capsys):
    path = recipe_file(tmp_path, str(model_dir(tmp_path, "mixtral-8x7b")))
    assert main(["plan", str(path), "--gpu", "H200", "--gpus", "4", "--objective", "latency", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    first = data["candidates"][0]
    assert {"tp", "pp", "ep", "gpus", "memory_per_gpu_gib", "feasible", "reason"} <= set(first)
    assert data["chosen"] == first and data["objective"] == "latency"
    assert data["gpu"]["name"] == "H200" and data["gpus"] == 4
    assert any(not c["feasible"] and c["violations"] for c in data["candidates"])


def test_plan_command_with_no_feasible_layout_prints_the_table_then_exits_2(tmp_path, capsys):
    path = recipe_file(tmp_path, str(model_dir(tmp_path, "llama-3.1-70b")))
    assert main(["plan", str(path), "--gpu", "L40S", "--gpus", "1"]) == 2
    captured = capsys.readouterr()
    assert "memory (short" in captured.out
    assert captured.err.startswith("error: no feasible layout") and "short" in captured.err


@pytest.mark.parametrize(
    "arguments, message",
    [(["--gpu", "X100"], "unknown GPU; known: H100-SXM"), (["--objective", "cost"], "cost")],
)
def test_plan_command_bad_flags_exit_2(tmp_path, capsys, arguments, message):
    path = recipe_file(tmp_path, str(model_dir(tmp_path, "llama-3.1-8b")))
    assert main(["plan", str(path), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_plan_command_names_missing_config_fields(tmp_path, capsys):
    directory = tmp_path / "broken"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    assert main(["plan", str(recipe_file(tmp_path, str(directory))), "--gpu", "h100"]) == 2
    assert "missing num_hidden_layers, num_attention_heads, intermediate_size, vocab_size" in capsys.readouterr().err
