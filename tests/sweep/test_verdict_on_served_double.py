"""The sweep's statistics end to end against the served double with seeded noise of known variance (3 % per
server start; tests/sweep/served_trials.py): real loads over HTTP through engineforge's load generator, the
repeats combined as the validate stage does, the verdict from `decide`. These test the statistics, not a
server. 30 seeds here (25-50 s); bench/verdict_on_served_double.py runs the acceptance's 200.

The seeds are fixed, so the drawn noise is the same every run; only the machine's timing jitter varies, and
the first test bounds it. On these seeds the drawn noise alone (no HTTP: `served_trials.drawn`) gives
coverage 27, apart 30 and identical 27 of 30; the floors below (24, 26, 24) leave three or four trials to
jitter, and the measured outcomes must equal the drawn ones in 22 seeds. When the bench was recorded, 200 seeds
agreed in 192 (the HTTP path's |error| p50 0.35 %); on 2026-12-06 evening, on the same kind of machine idle,
24, 24 and 26 of 30 agreed (|error| p50 0.49 %, a bias of +0.5 %) and the floor of 25 failed a whole-suite
run: see docs/notes/issue-22.md. The 200-seed figures are in BENCHMARKS.md."""

import statistics

import pytest

from engineforge.sweep.champion import NO_CLEAR_WINNER, SIGNIFICANT
from tests.sweep import served_trials

SEEDS = range(30)


@pytest.fixture(scope="module")
def trials():
    with served_trials.quick_gil_handover():
        return [served_trials.trial(seed) for seed in SEEDS]


def test_the_http_path_adds_much_less_than_the_drawn_noise(trials):
    errors = [abs(error) for t in trials for error in t.errors]
    assert len(errors) == len(SEEDS) * 3 * served_trials.REPEATS
    # a normal error's median |e| is 0.67 of its sd: below SPREAD / 2, the jitter's variance is under a seventh
    # of the noise's (a machine busy enough to stall the loads fails here, not in the rates below)
    assert statistics.median(errors) < served_trials.SPREAD / 2
    spread = statistics.stdev(f for t in trials for factors in t.factors.values() for f in factors)
    assert spread == pytest.approx(served_trials.SPREAD, rel=0.25)  # the double drew the noise it documents


def test_the_95_percent_interval_covers_the_true_mean_and_is_as_wide_as_the_noise(trials):
    assert sum(t.covered for t in trials) >= 24
    # not covered by making the interval wide: the noise implies a median half width of about
    # 4.3 (Student's t, 2 degrees of freedom) x 0.83 x 3 % / sqrt(3), some 6 % of the mean
    widths = [t.records["base"].interval(served_trials.OBJECTIVE).half_width for t in trials]
    assert 0.03 * served_trials.NOMINAL_TPOT_MS < statistics.median(widths) < 0.12 * served_trials.NOMINAL_TPOT_MS


def test_variants_20_percent_apart_are_told_apart_with_the_faster_as_champion(trials):
    verdicts = [t.apart for t in trials]
    assert sum(v.kind == SIGNIFICANT for v in verdicts) >= 26
    assert {v.name for v in verdicts if v.kind == SIGNIFICANT} == {"base"}


def test_identical_variants_give_no_clear_winner(trials):
    assert sum(t.identical.kind == NO_CLEAR_WINNER for t in trials) >= 24


def test_the_measured_verdicts_agree_with_the_drawn_noise_alone(trials):
    agree = [served_trials.outcomes(t) == served_trials.outcomes(served_trials.drawn(t.seed)) for t in trials]
    assert sum(agree) >= 22

