"""Repeated measurements of one figure: their mean, a 95 % confidence interval (Student's t over the repeats),
and whether two sets of repeats differ beyond their noise (Welch's t-test, unequal variances).

scipy.stats does the statistics (`t.interval`, `ttest_ind(equal_var=False)`): the reference implementations,
not a table of our own. One value has no spread to estimate: its interval is unknown (None), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
SIGNIFICANCE = 1 - CONFIDENCE  # a difference counts when Welch's p-value is below this
TEST_NAME = "Welch's t-test at 95%"
REPEATS_METRIC = "validate_repeats"  # how many measurements a run's figures are the mean of (absent: one)
CI_SUFFIX = "_ci95"  # <figure>_ci95: the half width of the figure's 95 % interval (MLflow metric, csv column)


@dataclass(frozen=True)
class Interval:
    """One figure over its repeats (finite values only, in the order measured)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n if self.values else math.nan

    @property
    def half_width(self) -> float | None:
        """The 95 % interval's half width (mean ± this); None below two values."""
        if self.n < 2:
            return None
        from scipy import stats

        sem = stats.sem(self.values)
        if sem == 0:  # identical repeats: no spread seen (scipy's interval would be NaN)
            return 0.0
        low, _ = stats.t.interval(CONFIDENCE, self.n - 1, loc=self.mean, scale=sem)
        return float(self.mean - low)

    @property
    def low(self) -> float:
        return self.mean - (self.half_width or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half_width or 0.0)

    def covers(self, value: float) -> bool:
        return self.half_width is not None and self.low <= value <= self.high

    def drifted(self) -> bool:
        """First and last repeat further apart than the interval's half width (the ± shown): a warming or
        degrading server."""
        width = self.half_width
        return width is not None and self.n >= 3 and abs(self.values[-1] - self.values[0]) > width


def interval(values: Iterable[float]) -> Interval:
    """The finite values as an Interval (a repeat that did not measure the figure is left out)."""
    return Interval(tuple(float(v) for v in values if v is not None and math.isfinite(v)))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value that `a` and `b` have the same mean; None when it cannot be computed
    (fewer than two values on a side, or scipy's NaN)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


def differ(a: Sequence[float], b: Sequence[float]) -> bool:
    """`a` and `b` differ beyond their noise (Welch's t-test at 95 %)."""
    p = welch_p(a, b)
    return p is not None and p < SIGNIFICANCE


def combine(repeats: Sequence[dict[str, float]]) -> dict[str, Interval]:
    """Every figure any repeat measured, over the repeats that measured it."""
    names = dict.fromkeys(name for figures in repeats for name in figures)
    return {name: interval(figures.get(name, math.nan) for figures in repeats) for name in names}


def conservative(figures: dict[str, float], repeats: Sequence[dict[str, float]],
                 directions: dict[str, str]) -> dict[str, float]:
    """`figures` with each figure in `directions` (figure -> ">=" floor or "<=" ceiling) replaced by the end of
    its 95 % interval a gate should judge: a floor the lower end, a ceiling the upper end. Unchanged without
    repeats."""
    if len(repeats) < 2:
        return dict(figures)
    stats = combine(repeats)
    judged = dict(figures)
    for name, direction in directions.items():
        if name in stats and stats[name].n:
            judged[name] = stats[name].low if direction == ">=" else stats[name].high
    return judged
