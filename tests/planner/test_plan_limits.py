"""`engineforge plan` as a user meets it: a bounded pool, CPU recipes left alone, cards described
on the command line, rejected rows that say why, columns with units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from planner_helpers import CONFIGS

from engineforge.cli.app import main
from tests.conftest import REPO


def recipe_path(tmp_path: Path, parallel="auto") -> Path:
    model = tmp_path / "llama-3.1-70b"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text((CONFIGS / "llama-3.1-70b.json").read_text())
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "planned", "model": {"source": str(model)}, "runtime": "trtllm", "parallel": parallel}))
    return path


@pytest.mark.parametrize("flag", [["--gpus", "1000000"], ["--gpus", "0"], ["--gpus-per-node", "100000"]])
def test_the_pool_is_bounded(tmp_path, capsys, flag):
    assert main(["plan", str(recipe_path(tmp_path)), *flag]) == 2
    err = capsys.readouterr().err
    assert f"Invalid value for '{flag[0]}'" in err and "than or equal to" in err and "Traceback" not in err


def test_a_cpu_recipe_is_not_planned_onto_gpus(capsys):
    assert main(["plan", str(REPO / "recipes" / "tiny-llama.yaml")]) == 0
    out = capsys.readouterr().out
    assert "serves on the CPU (serve.device: cpu)" in out and "H100" not in out
    assert main(["plan", str(REPO / "recipes" / "tiny-llama.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["gpu"]["name"], data["gpus"], data["candidates"]) == ("cpu", 0, [])


def test_a_cpu_recipes_lock_file_records_no_gpu():
    from engineforge.planner import resolve_parallel
    from engineforge.recipe.file import load_recipe

    record = resolve_parallel(load_recipe(REPO / "recipes" / "tiny-llama.yaml"), {}).record()  # what lock_core stores
    assert (record["gpu"], record["gpus"], record["tp"], record["pp"], record["ep"]) == ("cpu", 0, 1, 1, 1)


def test_a_cpu_recipe_with_gpu_sizes_is_an_error(tmp_path, capsys):
    path = tmp_path / "cpu.yaml"
    path.write_text("name: cpu\nmodel:\n  source: synthetic:tiny\nserve:\n  device: cpu\nparallel:\n  tensor: 2\n")
    assert main(["validate", str(path)]) == 2
    assert "parallel: tensor=2 needs GPUs; serve.device cpu runs one process" in capsys.readouterr().err


def test_a_card_described_on_the_command_line(tmp_path, capsys):
    spec = "memory_gib=96,hbm_tb_s=4,bf16_tflops=900,name=X96"
    assert main(["plan", str(recipe_path(tmp_path)), "--gpu-spec", spec, "--gpus", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["gpu"]["name"], data["gpu"]["memory_bytes"], data["gpu"]["hbm_tb_s"]) == ("X96", 96 * 2**30, 4.0)
    card = tmp_path / "card.yaml"
    card.write_text("name: X96\nmemory_gib: 96\nhbm_tb_s: 4\nbf16_tflops: 900\n")
    assert main(["plan", str(recipe_path(tmp_path)), "--gpu-spec", str(card), "--gpus", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gpu"] == data["gpu"] | {"source": f"--gpu-spec {card}"}


@pytest.mark.parametrize("spec, message", [
    ("memory_gib=96", "--gpu-spec: missing hbm_tb_s, bf16_tflops"),
    ("memory_gib=1e9,hbm_tb_s=4,bf16_tflops=900", "--gpu-spec memory_gib=1e9: must be a number from 1 to 4096"),
    ("memory_gib=96,hbm_tb_s=4,bf16_tflops=900,cores=5", "--gpu-spec: unknown key cores"),
    ("nowhere.yaml", "--gpu-spec nowhere.yaml: not KEY=VALUE,... and not a readable YAML file"),
])
def test_a_bad_card_description_is_one_line(tmp_path, capsys, spec, message):
    assert main(["plan", str(recipe_path(tmp_path)), "--gpu-spec", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}" or err.startswith(f"error: {message}"), err
    assert len(err.splitlines()) == 1


def test_rejected_rows_say_why_and_columns_carry_units(tmp_path, capsys):
    assert main(["plan", str(recipe_path(tmp_path, {"tensor": 8}), ), "--gpu", "h100", "--gpus", "4"]) == 2
    out = capsys.readouterr().out
    assert "rejected: needs 8 GPUs (tp*pp), pool has 4" in out
    for title in ("weights GiB", "KV GiB", "mem/GPU GiB", "headroom GiB", "decode ms/token"):
        assert title in out
