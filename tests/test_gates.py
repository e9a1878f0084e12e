"""Gates from the recipe against measured figures."""

from __future__ import annotations

import math

from rich.console import Console

from engineforge.gates import GATE_FIGURES, evaluate_gates
from engineforge.recipe import Gates

FIGURES = {"output_tokens_per_s": 120.0, "ttft_ms_p99": 80.0, "tpot_ms_p50": 12.0, "error_rate": 0.0,
           "token_agreement": 0.9}


def test_every_recipe_gate_reads_a_figure():
    assert set(GATE_FIGURES) == set(Gates.model_fields)


def test_unset_gates_are_not_checked():
    report = evaluate_gates(Gates(), FIGURES)
    assert report.results == [] and report.passed


def test_each_gate_direction_and_boundary():
    report = evaluate_gates(
        Gates(min_output_tokens_per_s=120, max_ttft_ms_p99=79.9, max_tpot_ms_p50=12, max_error_rate=0.0,
              min_token_agreement=0.95),
        FIGURES,
    )
    verdicts = {r.gate: r.passed for r in report.results}
    assert verdicts == {"min_output_tokens_per_s": True, "max_ttft_ms_p99": False, "max_tpot_ms_p50": True,
                        "max_error_rate": True, "min_token_agreement": False}
    assert not report.passed and [r.gate for r in report.failed] == ["max_ttft_ms_p99", "min_token_agreement"]
    ttft = report.results[1]
    assert (ttft.figure, ttft.op, ttft.target, ttft.measured) == ("ttft_ms_p99", "<=", 79.9, 80.0)


def test_missing_or_nan_figure_fails():
    report = evaluate_gates(Gates(min_token_agreement=0.5, max_ttft_ms_p99=100), {"ttft_ms_p99": math.nan})
    assert [(r.gate, r.measured, r.passed) for r in report.results] == [
        ("max_ttft_ms_p99", None, False), ("min_token_agreement", None, False)]


def test_tables_show_every_gate():
    report = evaluate_gates(Gates(min_output_tokens_per_s=200, max_error_rate=0.01), FIGURES)
    text = report.to_text()
    lines = text.splitlines()
    assert lines[0].split() == ["gate", "target", "measured", "result"]
    assert lines[1].split() == ["min_output_tokens_per_s", ">=", "200", "120", "FAIL"]
    assert lines[2].split() == ["max_error_rate", "<=", "0.01", "0", "pass"]
    console = Console(record=True, width=100)
    console.print(report.to_rich())
    rendered = console.export_text()
    assert "gates: failed" in rendered and "min_output_tokens_per_s" in rendered and "FAIL" in rendered
