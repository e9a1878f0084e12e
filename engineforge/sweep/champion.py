"""The champion: the best passing variant, crowned only when it beats the others beyond their noise.

Every variant that passed its gates and measured the objective is a candidate. The best mean leads;
each other candidate is tested against it with Welch's t-test at 95 % over their repeats. When none
can be told apart from the leader, the verdict is `significant`. Otherwise the leader and those that
cannot be told apart from it are a tie (`no_clear_winner`), settled by a stated rule: fewer GPUs, then
the lower TTFT p99, then the name. With one measurement per variant nothing can be tested (`untested`):
the best number wins, as before repeats existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engineforge.measure.intervals import TEST_NAME, differ, welch_p
from engineforge.sweep.table import VariantRecord, minimises, to_markdown

SIGNIFICANT, NO_CLEAR_WINNER, UNTESTED, NONE = "significant", "no_clear_winner", "untested", "none"
TIE_RULE = "fewer GPUs, then the lower TTFT p99, then the name"
TIE_LATENCY = "ttft_ms_p99"


@dataclass(frozen=True)
class Verdict:
    champion: VariantRecord | None
    kind: str  # significant | no_clear_winner | untested | none (no variant passed every gate)
    objective: str
    tied: list[str] = field(default_factory=list)  # the variants that cannot be told apart (champion among them)
    runner_up: str | None = None  # the second-best mean among the candidates
    p_value: float | None = None  # Welch's, leader against runner-up

    @property
    def name(self) -> str | None:
        return self.champion.name if self.champion else None

    def table(self, records: list[VariantRecord], notes: list[str] = ()) -> str:
        """The comparison table in markdown, this verdict under it."""
        return to_markdown(records, self.name, self.objective, self.sentence(), list(notes))

    def sentence(self) -> str:
        """The verdict as the table, the summary and the CLI say it."""
        p = f"p = {self.p_value:.3g}" if self.p_value is not None else "p not computable"
        if self.kind == NONE:
            return "champion: none (no variant passed every gate)"
        if self.kind == UNTESTED:
            why = ("it is the only variant that passed" if self.runner_up is None
                   else "one measurement per variant; sweep.repeats 2 or more tests it")
            return f"champion: **{self.name}**, not tested against the noise ({why})"
        if self.kind == SIGNIFICANT:
            return f"verdict: significant; champion: **{self.name}**, ahead of {self.runner_up} beyond the noise ({TEST_NAME}, {p})"
        return (f"verdict: no clear winner; {', '.join(self.tied)} cannot be told apart on {self.objective} "
                f"({TEST_NAME}, leader against {self.runner_up}: {p}); picked **{self.name}** by the rule {TIE_RULE}: "
                "it is the one packaged and aliased champion")


def decide(records: list[VariantRecord], objective: str) -> Verdict:
    sign = 1.0 if minimises(objective) else -1.0
    candidates = [r for r in records if r.passed and math.isfinite(r.interval(objective).mean)]
    if not candidates:
        return Verdict(None, NONE, objective)
    ranked = sorted(candidates, key=lambda r: (sign * r.interval(objective).mean, r.gpus, r.name))
    leader, others = ranked[0], ranked[1:]
    runner_up = others[0].name if others else None
    if not others or all(r.n < 2 for r in ranked):
        return Verdict(leader, UNTESTED, objective, [leader.name], runner_up)
    samples = leader.interval(objective).values
    p_runner_up = welch_p(samples, others[0].interval(objective).values)
    tied = [leader] + [r for r in others if not differ(samples, r.interval(objective).values)]
    if len(tied) == 1:
        return Verdict(leader, SIGNIFICANT, objective, [leader.name], runner_up, p_runner_up)
    chosen = min(tied, key=lambda r: (r.gpus, _or_inf(r.interval(TIE_LATENCY).mean), r.name))
    return Verdict(chosen, NO_CLEAR_WINNER, objective, [r.name for r in tied], runner_up, p_runner_up)


def _or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf
