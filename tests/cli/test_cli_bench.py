"""`engineforge bench` against the loopback mock server: figures, JSON, plots, sweep, gates, errors."""

from __future__ import annotations

import json

import pytest

from engineforge.cli.app import main
from tests.doubles.openai_server import mock_server


@pytest.fixture(scope="module")
def server():
    with mock_server(2.0, 1.0) as url:
        yield url


def bench(server, *args: str) -> int:
    return main(["bench", "--endpoint", server, "--model", "mock", "--requests", "4", "--output-len", "4", *args])


def test_run_writes_json_file_and_plots(server, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert bench(server, "--concurrency", "2", "--out", str(out), "--plots", str(tmp_path / "plots")) == 0
    data = json.loads(out.read_text())
    assert data["summary"]["completed"] == 4 and len(data["records"]) == 4
    assert (tmp_path / "plots" / "latency_cdf.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "ttft" in printed and "output_tokens_per_s" in printed


def test_json_flag_prints_only_the_results_to_stdout(server, tmp_path, capsys):
    """`--json` is a flag, as in plan/compare/validate: stdout is the JSON alone, the tables go to stderr."""
    dataset = tmp_path / "d.jsonl"
    dataset.write_text('{"task_id": 1, "prompt": "x", "output_tokens": 3}\n')
    assert bench(server, "--request-rate", "50", "--dataset", str(dataset), "--json") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert "ttft" in captured.err and data["summary"]["completed"] == 4
    assert data["config"]["request_rate"] == 50 and data["config"]["concurrency"] == 4
    assert {r["output_tokens"] for r in data["records"]} == {3}


def test_sweep(server, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert bench(server, "--sweep", "1,2", "--json", "--out", str(out), "--plots", str(tmp_path)) == 0
    captured = capsys.readouterr()
    assert [p["config"]["concurrency"] for p in json.loads(captured.out)["points"]] == [1, 2]
    assert json.loads(out.read_text()) == json.loads(captured.out)
    assert (tmp_path / "sweep.png").exists() and "sweep" in captured.err


def _recipe(tmp_path, gates: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: gated\nmodel:\n  source: synthetic:tiny\nvalidate:\n  gates:\n{gates}")
    return path


def test_gates_pass_and_fail(server, tmp_path, capsys):
    assert bench(server, "--recipe", str(_recipe(tmp_path, "    max_error_rate: 0\n"))) == 0
    failing = _recipe(tmp_path, "    max_error_rate: 0\n    max_ttft_ms_p99: 0.001\n")
    assert bench(server, "--recipe", str(failing)) == 1
    captured = capsys.readouterr()
    assert "max_ttft_ms_p99" in captured.out and "FAIL" in captured.out
    assert "gates failed: max_ttft_ms_p99" in captured.err


@pytest.mark.parametrize("args, message", [
    (["--api", "grpc"], "--api grpc"),
    (["--sweep", "1,2", "--request-rate", "3"], "--sweep and --request-rate"),
    (["--input-len", "8"], "--input-len needs the model's tokenizer"),
    (["--dataset", "missing.jsonl"], "no such file"),
    (["--request-rate", "0"], "request_rate"),
])
def test_usage_errors_exit_2(server, capsys, args, message):
    assert bench(server, *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
