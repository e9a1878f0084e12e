"""Seeded trials of the sweep's statistics against the served double (tests/doubles/openai_server.py).

One trial (a seed) measures three variants, each repeat on a freshly started double that draws its speed
factor from N(1, SPREAD = 3 %): `base` and `twin` at the nominal TPOT, `slower` 20 % above it. Each repeat is a
real load through engineforge's load generator over HTTP (`measure.measurement.measure`), the repeats become a
`VariantRecord` as the validate stage combines them (every figure the mean, each repeat's figures kept), and
the verdicts come from `sweep.champion.decide` on the objective TPOT p50, as a sweep's would.

Why TPOT: the double keeps its token deadlines, so a request's TPOT is the server's drawn inter-token delay
plus only the client's timing jitter; its true mean over server starts is NOMINAL_TPOT_MS exactly. (Throughput
would add the client's per-request overhead, a bias of its own.) Each start's drawn factor is kept, so
`Trial.errors` shows what the HTTP path added to each measurement: it must stay well below SPREAD. On a
shared machine another process can hold the double back for tens of milliseconds (an error of 25 % and more
on a 60 ms load); the double notices (`MockServer.late_s`) and such a load is measured again (`one_load`).

Used by tests/sweep/test_verdict_on_served_double.py (a few seeds) and bench/verdict_on_served_double.py (200).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass

from engineforge.loadgen import BenchConfig
from engineforge.measure.intervals import combine
from engineforge.measure.measurement import measure
from engineforge.sweep.champion import Verdict, decide
from engineforge.sweep.table import VariantRecord
from tests.doubles.openai_server import served, speed_factor, url

NOMINAL_TPOT_MS = 20.0  # the true mean of every server start's inter-token delay
SPREAD = 0.03  # the speed factor's standard deviation: 3 % of the mean per server start
APART = 1.2  # `slower`'s TPOT against the nominal: 20 % apart
REPEATS = 3
OBJECTIVE = "tpot_ms_p50"
VARIANTS = {"base": NOMINAL_TPOT_MS, "twin": NOMINAL_TPOT_MS, "slower": APART * NOMINAL_TPOT_MS}
TOKENS, REQUESTS = 4, 4  # a load: 4 requests at once, 3 inter-token delays each
LATE_S, RETRIES = 0.002, 20  # a load whose double wrote a token later than this is measured again


@dataclass(frozen=True)
class Trial:
    seed: int
    records: dict[str, VariantRecord]
    factors: dict[str, list[float]]  # each server start's drawn speed factor, per variant
    loads: int = 0  # loads run, those measured again included

    @property
    def errors(self) -> list[float]:
        """Each measurement against its server's drawn delay, relative: the HTTP path's timing error."""
        return [figures[OBJECTIVE] / (VARIANTS[name] * factor) - 1
                for name, record in self.records.items() for figures, factor in zip(record.repeats, self.factors[name])]

    @property
    def covered(self) -> bool:
        """`base`'s 95 % interval covers the true mean."""
        return self.records["base"].interval(OBJECTIVE).covers(NOMINAL_TPOT_MS)

    @property
    def identical(self) -> Verdict:
        return decide([self.records["base"], self.records["twin"]], OBJECTIVE)

    @property
    def apart(self) -> Verdict:
        return decide([self.records["base"], self.records["slower"]], OBJECTIVE)


def one_load(tpot_ms: float, seed: int) -> tuple[dict[str, float], float, int]:
    """A fresh server start and one load against it: (the load's figures, the server's speed factor, the loads
    it took). A load during which the machine held the double back (a token went out more than LATE_S after
    its deadline, by the double's own clock: another process had the CPU) measured the machine, not the drawn
    delay: it is measured again on a fresh start with the same draw, at most RETRIES times."""
    for attempt in range(1, RETRIES + 1):
        with served(ttft_ms=1.0, itl_ms=tpot_ms, spread=SPREAD, seed=seed) as server:
            config = BenchConfig(endpoint=url(server), model="mock", prompts=["a"], requests=REQUESTS,
                                 concurrency=REQUESTS, warmup_requests=0, max_tokens=TOKENS, gpu_telemetry=False)
            figures = measure(config).figures
        if server.late_s <= LATE_S:
            return figures, server.factor, attempt
    raise RuntimeError(f"{RETRIES} loads in a row were held back more than {LATE_S * 1000:.0f} ms: the machine is too busy")


def variant(name: str, repeats: list[dict[str, float]]) -> VariantRecord:
    """The repeats as the validate stage leaves them (engineforge/stages/validate._combined)."""
    means = {figure: stats.mean for figure, stats in combine(repeats).items()}
    return VariantRecord(name, 1, means, "passed", repeats=repeats)


def trial(seed: int) -> Trial:
    """Every variant's repeats round-robin (sweep.order interleaved), each on a fresh start (`start_seed`)."""
    loads: dict[str, list[tuple[dict[str, float], float, int]]] = {name: [] for name in VARIANTS}
    for repeat in range(REPEATS):
        for index, (name, tpot) in enumerate(VARIANTS.items()):
            loads[name].append(one_load(tpot, start_seed(seed, index, repeat)))
    return Trial(seed, {name: variant(name, [figures for figures, _, _ in done]) for name, done in loads.items()},
                 {name: [factor for _, factor, _ in done] for name, done in loads.items()},
                 sum(attempts for done in loads.values() for _, _, attempts in done))


def drawn(seed: int, spread: float = SPREAD) -> Trial:
    """The trial as the noise alone makes it: each repeat the delay its server start draws, no HTTP in between
    (the reference the measured verdicts should agree with; at another spread, what the statistics would do)."""
    factors = {name: [speed_factor(spread, start_seed(seed, index, repeat)) for repeat in range(REPEATS)]
               for index, name in enumerate(VARIANTS)}
    return Trial(seed, {name: variant(name, [{OBJECTIVE: VARIANTS[name] * f} for f in factors[name]])
                        for name in VARIANTS}, factors)


def outcomes(trial: Trial) -> tuple[str, str, bool]:
    """What a trial decides: the verdicts apart and identical, and whether the interval covered."""
    return trial.apart.kind, trial.identical.kind, trial.covered


def start_seed(seed: int, variant_index: int, repeat: int) -> int:
    return seed * 100 + variant_index * 10 + repeat


@contextmanager
def quick_gil_handover():
    """The double's threads share this process with the client: hand the GIL over quickly (as the double's own
    process does), so a woken server thread writes its token on time."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
