"""`engineforge bench --repeats N --cooldown S` against a real `transformers serve` (CPU, tiny synthetic model):
N loads, each figure as mean ± 95 % interval (Student's t, measure/intervals.py), n and per-repeat values."""

from __future__ import annotations

import json
import time

import pytest

from engineforge.cli.app import main
from engineforge.measure.intervals import interval


def bench(tiny_served, *args: str) -> int:
    url, model = tiny_served
    return main(["bench", "--endpoint", url, "--model", model, "--requests", "3", "--warmup", "1",
                 "--output-len", "4", "--concurrency", "2", *args])


@pytest.mark.integration
def test_repeats_report_mean_interval_n_and_values_of_real_loads(tiny_served, tmp_path, capsys):
    out = tmp_path / "repeats.json"
    started = time.monotonic()
    assert bench(tiny_served, "--repeats", "3", "--cooldown", "1", "--out", str(out), "--json",
                 "--plots", str(tmp_path)) == 0
    assert time.monotonic() - started >= 2  # two cooldowns between three repeats
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert json.loads(out.read_text()) == data
    assert len(data["repeats"]) == 3 and all(r["summary"]["completed"] == 3 for r in data["repeats"])
    throughput = data["intervals"]["output_tokens_per_s"]
    values = [r["summary"]["output_tokens_per_s"] for r in data["repeats"]]
    assert throughput["values"] == values and throughput["n"] == 3
    expected = interval(values)  # the sweep's interval code on the same values
    assert throughput["mean"] == pytest.approx(expected.mean) and throughput["ci95"] == pytest.approx(expected.half_width)
    assert throughput["ci95"] > 0
    assert "3 repeats" in captured.err and "±" in captured.err and "output_tokens_per_s" in captured.err
    assert (tmp_path / "latency_cdf.png").stat().st_size > 0


@pytest.mark.integration
def test_repeat_gates_fail_exit_1_against_the_server(tiny_served, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: gated\nmodel:\n  source: synthetic:tiny\nvalidate:\n  gates:\n"
                      "    min_output_tokens_per_s: 1000000000\n")
    assert bench(tiny_served, "--repeats", "2", "--recipe", str(recipe)) == 1
    assert "min_output_tokens_per_s" in capsys.readouterr().out


def test_repeat_gates_are_judged_on_the_conservative_end():
    """Throughput 90, 100, 110 (mean 100, interval 75.2-124.8): a floor of 95 passes on the mean but fails on
    the lower end; a TTFT ceiling of 110 (values 90, 100, 110) fails on the upper end."""
    from types import SimpleNamespace

    from engineforge.cli.bench_repeats import judged_gates
    from engineforge.recipe.schema import Gates

    measured = [SimpleNamespace(figures={"output_tokens_per_s": v, "ttft_ms_p99": v}, missing={}) for v in (90, 100, 110)]
    report = judged_gates(Gates(min_output_tokens_per_s=95, max_ttft_ms_p99=200), measured)
    by_gate = {r.gate: r for r in report.results}
    assert not by_gate["min_output_tokens_per_s"].passed
    assert by_gate["min_output_tokens_per_s"].measured == pytest.approx(100 - 24.8408, abs=1e-3)  # t(0.975, 2) * 10/sqrt(3)
    assert by_gate["max_ttft_ms_p99"].passed
    assert not judged_gates(Gates(max_ttft_ms_p99=110), measured).results[0].passed


def test_repeats_with_a_concurrency_sweep_is_refused_in_one_line(capsys):
    code = main(["bench", "--endpoint", "http://127.0.0.1:9", "--model", "m", "--sweep", "1,2", "--repeats", "2"])
    assert code != 0
    assert "--repeats with --sweep" in capsys.readouterr().err
