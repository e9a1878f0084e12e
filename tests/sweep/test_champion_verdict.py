"""The verdict on seeded noise of known variance (these test the statistics, not a server): the 95 % interval
covers the true mean, a 20 % difference is told apart with three repeats, and identical variants are a tie."""

import csv
import io

import numpy as np
import pytest

from engineforge.measure.intervals import interval
from engineforge.sweep.champion import NO_CLEAR_WINNER, SIGNIFICANT, UNTESTED, decide
from engineforge.sweep.table import VariantRecord, to_csv

TRUE_MEAN, NOISE_SD = 1000.0, 40.0  # tok/s; a 4 % standard deviation per measurement
SEEDS = range(200)


def measured(name: str, values, gpus: int = 1, ttft: float = 50.0, gates: str = "passed") -> VariantRecord:
    repeats = [{"output_tokens_per_s": float(v), "ttft_ms_p99": ttft} for v in values]
    return VariantRecord(name, gpus, {"output_tokens_per_s": float(np.mean(values)), "ttft_ms_p99": ttft}, gates,
                         repeats=repeats if len(repeats) > 1 else [])


def noisy(seed: int, mean: float, repeats: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, NOISE_SD, repeats)


def test_the_95_percent_interval_covers_the_true_mean_in_90_to_99_percent_of_seeds():
    covered = sum(interval(noisy(seed, TRUE_MEAN)).covers(TRUE_MEAN) for seed in SEEDS)
    assert 0.90 * len(SEEDS) <= covered <= 0.99 * len(SEEDS)


def test_variants_20_percent_apart_are_told_apart_with_three_repeats():
    verdicts = [decide([measured("slow", noisy(seed, TRUE_MEAN)), measured("fast", noisy(seed + 1000, 1.2 * TRUE_MEAN))],
                       "output_tokens_per_s") for seed in SEEDS]
    told_apart = [v for v in verdicts if v.kind == SIGNIFICANT]
    assert len(told_apart) >= 0.90 * len(SEEDS)
    assert {v.name for v in told_apart} == {"fast"}


def test_identical_variants_are_no_clear_winner():
    verdicts = [decide([measured("a", noisy(seed, TRUE_MEAN)), measured("b", noisy(seed + 1000, TRUE_MEAN))],
                       "output_tokens_per_s") for seed in SEEDS]
    assert sum(v.kind == NO_CLEAR_WINNER for v in verdicts) >= 0.90 * len(SEEDS)


def test_a_tie_is_settled_by_fewer_gpus_then_lower_latency_and_the_verdict_says_so():
    tied = [measured("tp2", [1010.0, 990.0, 1000.0], gpus=2, ttft=10.0), measured("tp1-slow", [1000.0, 1020.0, 980.0], ttft=90.0),
            measured("tp1-quick", [1005.0, 985.0, 995.0], ttft=40.0), measured("behind", [500.0, 510.0, 490.0])]
    verdict = decide(tied, "output_tokens_per_s")
    assert (verdict.kind, verdict.name) == (NO_CLEAR_WINNER, "tp1-quick")
    assert set(verdict.tied) == {"tp2", "tp1-slow", "tp1-quick"}
    assert f"{', '.join(verdict.tied)} cannot be told apart on output_tokens_per_s" in verdict.sentence()
    assert "fewer GPUs, then the lower TTFT p99" in verdict.sentence() and "Welch's t-test at 95%" in verdict.sentence()


def test_a_leader_beyond_the_noise_is_significant_and_names_the_test_and_runner_up():
    verdict = decide([measured("a", [1000.0, 1010.0, 990.0]), measured("b", [1200.0, 1210.0, 1190.0]),
                      measured("failed", [5000.0, 5000.0, 5000.0], gates="failed")], "output_tokens_per_s")
    assert (verdict.kind, verdict.name, verdict.runner_up) == (SIGNIFICANT, "b", "a")
    assert verdict.p_value < 0.05 and "ahead of a beyond the noise (Welch's t-test at 95%, p = " in verdict.sentence()


def test_one_measurement_each_is_untested_and_the_best_number_wins_as_before():
    verdict = decide([measured("a", [1000.0]), measured("b", [1001.0])], "output_tokens_per_s")
    assert (verdict.kind, verdict.name) == (UNTESTED, "b") and "one measurement per variant" in verdict.sentence()
    table = verdict.table([measured("a", [1000.0]), measured("b", [1001.0])])
    assert "±" not in table.split("\n\n")[0]  # no interval from one value


def test_the_table_shows_mean_plus_minus_half_width_and_n():
    records = [measured("a", [684.0, 633.0, 474.0]), measured("b", [1000.0, 1010.0, 990.0])]
    table = decide(records, "output_tokens_per_s").table(records)
    assert "| a | 1 | 597.0 ± 272.1 | 597.0 ± 272.1 |" in table
    assert "| 3 | - | - | passed |" in table and "half width of its 95 % confidence interval" in table
    rows = {row["variant"]: row for row in csv.DictReader(io.StringIO(to_csv(records, "b")))}
    assert rows["a"]["n"] == "3" and float(rows["a"]["output_tokens_per_s"]) == 597.0
    assert float(rows["a"]["output_tokens_per_s_ci95"]) == pytest.approx(interval([684.0, 633.0, 474.0]).half_width)
    assert rows["a"]["output_tokens_per_s_repeats"] == "684.0;633.0;474.0" and rows["a"]["ttft_ms_p99_ci95"] == "0.0"
    assert rows["a"]["predicted_output_tokens_per_s_per_gpu_ci95"] == ""  # a prediction is one number


def test_a_prediction_is_judged_against_the_measured_interval():
    inside = measured("inside", [1000.0, 1100.0, 900.0])
    outside = measured("outside", [1000.0, 1010.0, 990.0])
    for record in (inside, outside):
        record.figures["predicted_output_tokens_per_s_per_gpu"] = 1100.0
    table = decide([inside, outside], "output_tokens_per_s").table([inside, outside])
    assert "| 1,100.0 | +10%, inside | 3 |" in table
    high = interval([1000.0, 1010.0, 990.0]).high
    assert f"| 1,100.0 | +10%, {(1100.0 - high) / high:.0%} outside | 3 |" in table
