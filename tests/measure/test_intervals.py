"""The statistics of repeated measurements, against published values and scipy's own functions."""

import math

import pytest
from scipy import stats

from engineforge.measure.intervals import combine, conservative, differ, interval, welch_p

T_975_DF2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom (any t table: 4.303)


def test_the_interval_of_three_repeats_is_the_t_interval_of_a_textbook():
    repeats = interval([684.0, 633.0, 474.0])  # the three consecutive H200 loads
    sample_sd = math.sqrt(((684 - 597) ** 2 + (633 - 597) ** 2 + (474 - 597) ** 2) / 2)
    assert (repeats.n, repeats.mean) == (3, 597.0)
    assert repeats.half_width == pytest.approx(T_975_DF2 * sample_sd / math.sqrt(3))
    assert repeats.covers(597.0 + 0.99 * repeats.half_width) and not repeats.covers(597.0 + 1.01 * repeats.half_width)


def test_one_value_has_no_interval_and_unmeasured_repeats_are_left_out():
    assert interval([684.0]).half_width is None and not interval([684.0]).covers(684.0)
    assert interval([684.0, float("nan"), None, 633.0]).values == (684.0, 633.0)
    assert interval([]).n == 0 and math.isnan(interval([]).mean)
    assert interval([5.0, 5.0, 5.0]).half_width == 0.0  # identical repeats: no spread seen, not NaN
    assert combine([{"a": 1.0, "b": 2.0}, {"a": 3.0}])["b"].values == (2.0,)


@pytest.mark.parametrize("a, b", [
    ([1851.0, 1702.0, 1555.0], [1189.0, 1240.0, 1301.0]),
    ([684.0, 633.0, 474.0], [650.0, 610.0, 560.0]),
    ([10.0, 11.0, 12.0, 13.0], [10.5, 11.5]),
])
def test_welch_p_is_scipys_unequal_variance_t_test(a, b):
    assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert differ(a, b) == (stats.ttest_ind(a, b, equal_var=False).pvalue < 0.05)


def test_fewer_than_two_values_on_a_side_cannot_be_tested():
    assert welch_p([1.0], [2.0, 3.0]) is None and not differ([1.0], [2.0, 3.0])


def test_drift_is_a_first_to_last_change_beyond_the_interval():
    assert interval([1851.0, 1700.0, 1500.0, 1350.0, 1189.0]).drifted()  # the CPU server, slowing down
    assert not interval([1000.0, 1100.0, 900.0, 1000.0]).drifted()
    assert not interval([1000.0, 1100.0]).drifted()  # two repeats: first and last are all there is


def test_gates_judge_a_floor_on_the_lower_end_and_a_ceiling_on_the_upper_end():
    repeats = [{"output_tokens_per_s": v, "ttft_ms_p99": t} for v, t in ((684.0, 90.0), (633.0, 100.0), (474.0, 110.0))]
    means = {"output_tokens_per_s": 597.0, "ttft_ms_p99": 100.0, "errors": 0.0}
    judged = conservative(means, repeats, {"output_tokens_per_s": ">=", "ttft_ms_p99": "<=", "error_rate": "<="})
    assert judged["output_tokens_per_s"] == pytest.approx(interval([684.0, 633.0, 474.0]).low)
    assert judged["ttft_ms_p99"] == pytest.approx(interval([90.0, 100.0, 110.0]).high) and judged["errors"] == 0.0
    assert "error_rate" not in judged  # not measured stays not measured
    assert conservative(means, repeats[:1], {"ttft_ms_p99": "<="}) == means  # one measurement: its own figure
