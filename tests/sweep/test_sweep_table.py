"""The comparison table, the champion choice and the two plots, from variant records."""

import csv
import io
import math
import re

from PIL import Image

from engineforge.sweep.champion import decide
from engineforge.sweep.plots import frontier, pareto, pareto_figure, prediction
from engineforge.sweep.table import PP_FOOTNOTE, VariantRecord, to_csv, to_markdown


def record(name, gpus, tok_s, ttft_p99, gates="passed", tpot=20.0, **more):
    figures = {"output_tokens_per_s": tok_s, "ttft_ms_p99": ttft_p99, "ttft_ms_p50": ttft_p99 / 2,
               "tpot_ms_p50": tpot, **more}
    return VariantRecord(name=name, gpus=gpus, figures=figures, gates=gates, run_id=f"run-{name}")


def test_derived_figures_per_gpu_per_user_and_prediction_error():
    r = record("tp4", 4, 400.0, 100.0, tpot=25.0, predicted_output_tokens_per_s_per_gpu=120.0)
    assert r.figure("output_tokens_per_s_per_gpu") == 100.0
    assert math.isnan(r.figure("tokens_per_s_per_user"))  # measured by the load generator, not derived from TPOT
    assert math.isclose(r.figure("prediction_error"), 0.2)
    assert math.isnan(r.figure("gpu_util_pct_mean"))  # not measured stays unknown, never 0
    assert record("m", 1, 50.0, 10.0, tokens_per_s_per_user=7.0).figure("tokens_per_s_per_user") == 7.0


def test_champion_is_the_best_passing_variant_not_the_best_overall():
    records = [record("fast-but-late", 1, 900.0, 5000.0, gates="failed"), record("a", 1, 300.0, 50.0),
               record("b", 2, 800.0, 60.0)]
    assert decide(records, "output_tokens_per_s_per_gpu").champion.name == "b"  # 400 per GPU beats 300
    assert decide(records, "ttft_ms_p99").champion.name == "a"  # latencies: lowest wins
    assert decide(records, "output_tokens_per_s").champion.name == "b"


def test_a_tie_goes_to_fewer_gpus_and_no_passing_variant_means_no_champion():
    assert decide([record("tp2", 2, 400.0, 50.0), record("tp1", 1, 200.0, 50.0)], "output_tokens_per_s_per_gpu").champion.name == "tp1"
    assert decide([record("x", 1, 1.0, 1.0, gates="failed"), record("y", 1, 1.0, 1.0, gates="not measured")],
                  "output_tokens_per_s").champion is None


def test_csv_and_markdown_hold_every_variant_with_verdict_and_footnote():
    records = [record("a", 1, 300.0, 50.0, predicted_output_tokens_per_s_per_gpu=330.0, tokens_per_s_per_user=50.0),
               record("b", 2, 800.0, 60.0, gates="failed")]
    records[0].predicted_gpu = "H200"
    rows = list(csv.DictReader(io.StringIO(to_csv(records, "a"))))
    assert [(r["variant"], r["gates"], r["champion"]) for r in rows] == [("a", "passed", "True"), ("b", "failed", "False")]
    assert [r["predicted_gpu"] for r in rows] == ["H200", ""]
    assert float(rows[1]["output_tokens_per_s_per_gpu"]) == 400.0 and rows[0]["gpu_util_pct_mean"] == ""
    text = decide(records, "output_tokens_per_s_per_gpu").table(records)
    assert "| a (champion) | 1 | 300.0 | 300.0 | 50.0 | 25.0 | 50.0 |" in text
    assert "| b | 2 | 800.0 | 400.0 |" in text and PP_FOOTNOTE in text
    assert "| 330.0 | +10% | 1 | - | H200 | passed |" in text and "| - | - | 1 | - | - | failed |" in text  # the GPU it was predicted for
    assert "champion: none" in decide(records[1:], "output_tokens_per_s_per_gpu").table(records)
    assert PP_FOOTNOTE not in decide(records[1:], "output_tokens_per_s_per_gpu").table(records[1:])  # no predictions


def test_frontier_keeps_only_undominated_points():
    points = [(10, 100), (20, 150), (15, 90), (30, 140), (5, 50)]
    assert frontier(points, lower_x_better=True) == [(5, 50), (10, 100), (20, 150)]
    assert frontier(points, lower_x_better=False) == [(20, 150), (30, 140)]


def test_plots_are_written_as_png(tmp_path):
    records = [record("a", 1, 300.0, 50.0, predicted_output_tokens_per_s_per_gpu=280.0),
               record("b", 2, 800.0, 60.0, gates="failed")]
    for path in (pareto(records, "a", tmp_path / "p.png", "t"), prediction(records, tmp_path / "q.png")):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300


def test_the_pareto_plot_names_its_recipe_and_request_counts_draws_the_gate_and_marks_failed_variants():
    records = [record("a", 1, 300.0, 50.0, completed=16.0), record("b", 2, 800.0, 60.0, gates="failed", completed=8.0)]
    figure = pareto_figure(records, "a", "tiny-sweep", ttft_gate_ms=55.0)
    assert re.fullmatch(r"tiny-sweep · requests per measurement: a 16, b 8 · \d{4}-\d\d-\d\d", figure._suptitle.get_text())
    latency, per_user = figure.axes
    assert [line.get_xdata()[0] for line in latency.lines if line.get_linestyle() == ":"] == [55.0]
    assert "failed a gate" in latency.get_legend_handles_labels()[1] and "gate: " not in str(per_user.get_legend_handles_labels())


def test_no_prediction_plot_without_a_prediction(tmp_path):
    """It was empty axes holding one sentence; the table's notes say why nothing was predicted."""
    assert prediction([record("b", 2, 800.0, 60.0)], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_a_gateless_variant_can_be_champion_but_a_failed_or_unmeasured_one_cannot():
    verdict = decide([record("fast-but-failed", 1, 900.0, 50.0, gates="failed"), record("gateless", 1, 300.0, 50.0, gates="none"),
                      record("crashed", 1, 1000.0, 50.0, gates="not measured")], "output_tokens_per_s")
    assert verdict.name == "gateless"


def test_a_p99_from_few_requests_says_so_with_its_request_count():
    few, many = record("few", 1, 300.0, 50.0, completed=16.0), record("many", 1, 300.0, 50.0, completed=400.0)
    text = to_markdown([few, many], "many", "output_tokens_per_s", "verdict")
    assert "| requests |" in text.splitlines()[0]
    assert "p99 from fewer than 100 requests per measurement" in text and text.endswith("not a stable tail: few (16).\n")


def test_the_table_shows_itl_and_how_bursty_the_streams_were():
    bursty = record("bursty", 1, 300.0, 50.0, itl_ms_p50=5.0, chunks_per_request=2.0, tokens_per_chunk=4.0)
    steady = record("steady", 1, 300.0, 50.0)  # not measured: shown as -, never 0
    text = decide([bursty, steady], "output_tokens_per_s").table([bursty, steady])
    header = text.splitlines()[0]
    assert "| TPOT p50 ms | ITL p50 ms | E2E p50 ms | chunks per request | tokens per chunk |" in header
    assert "| 20.0 | 5.0 | - | 2.0 | 4.0 |" in text and "| 20.0 | - | - | - | - |" in text
