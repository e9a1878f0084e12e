"""Concurrency sweep and the PNG plots."""

from __future__ import annotations

import json

import pytest

from engineforge.errors import UserError
from engineforge.loadgen import BenchConfig, run_benchmark
from engineforge.loadgen.sweep import parse_levels, run_sweep
from engineforge.measure.plots import cdf_title, latency_cdf, sweep_plot
from tests.doubles.openai_server import mock_server

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server():
    with mock_server(2.0, 1.0) as url:
        yield url


def test_sweep_runs_each_level(server, tmp_path):
    config = BenchConfig(endpoint=server, model="m", prompts=["a"], requests=2, max_tokens=3, request_rate=5.0)
    sweep = run_sweep(config, [1, 3])
    assert sweep.levels == [1, 3]
    assert [p.summary["requests"] for p in sweep.points] == [4, 12]  # at least 4 per slot
    assert all(p.config.request_rate is None for p in sweep.points)
    rows = sweep.table()
    assert [row["concurrency"] for row in rows] == [1, 3] and all(row["error_rate"] == 0 for row in rows)
    data = json.loads(sweep.write_json(tmp_path / "sweep.json").read_text())
    assert [point["config"]["concurrency"] for point in data["points"]] == [1, 3]
    png = sweep_plot(sweep, tmp_path / "plots" / "sweep.png")
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_latency_cdf_png(server, tmp_path):
    result = run_benchmark(BenchConfig(endpoint=server, model="m", prompts=["a"], requests=4, max_tokens=3))
    png = latency_cdf({"c=1": result}, tmp_path / "cdf.png")
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 10_000
    assert cdf_title({"c=1": result}).startswith("m · c=1: 4 requests · ")


@pytest.mark.parametrize("text", ["", "0,2", "1,1", "a,b"])
def test_bad_levels(text):
    with pytest.raises(UserError, match="--sweep"):
        parse_levels(text)


def test_levels():
    assert parse_levels("1, 4,16") == [1, 4, 16]


def test_the_latency_cdf_draws_the_recipes_latency_gates(server):
    from engineforge.measure.plots import cdf_figure
    from engineforge.recipe.schema import Gates

    result = run_benchmark(BenchConfig(endpoint=server, model="m", prompts=["a"], requests=4, max_tokens=3))
    within = result.summary["tpot_ms_p50"]  # a target inside the curves: drawn where it is
    figure = cdf_figure({"c=1": result, "c=2": result}, "tiny",
                        Gates(max_ttft_ms_p99=40_000.0, max_tpot_ms_p50=within, max_error_rate=0.1))
    assert figure.get_suptitle().startswith("tiny · 4 requests each (c=1, c=2) · ")
    axes = {axis.get_title(): axis for axis in figure.axes}
    drawn = {title: [line.get_label() for line in axis.lines if line.get_color() == "tab:red"] for title, axis in axes.items()}
    assert drawn["TTFT"][0] == "gate: p99 <= 40000 ms (beyond the axis)" and axes["TTFT"].get_xlim()[1] < 1000
    assert drawn["TPOT"][0] == f"gate: p50 <= {within:g} ms" and axes["TPOT"].get_xlim()[1] > within
    assert drawn["inter-token latency"] == drawn["end-to-end latency"] == []  # no gate there (error rate: no panel)
    assert [text.get_text() for text in axes["TTFT"].get_legend().get_texts()][-1] == drawn["TTFT"][0]
