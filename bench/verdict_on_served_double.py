"""The sweep's statistics against the served double, over many seeds (issue 27's acceptance).

Each seed is one trial of tests/sweep/served_trials.py: three variants (`base`, `twin` at the nominal TPOT,
`slower` 20 % above), three repeats each, round-robin, each repeat a load through engineforge's load generator
over HTTP against a freshly started double whose speed factor is drawn from N(1, 3 %). Reported: how often
`base`'s 95 % interval covered the true mean (asked: 90-99 %), how often `base` against `slower` was
`significant` with `base` champion (asked: >= 90 %), how often `base` against `twin` was `no_clear_winner`
(asked: >= 90 %), each also on the drawn noise alone (no HTTP: what the measured figures should reproduce;
also at --drawn-spreads), and the HTTP path's timing error against each server's drawn delay (it must stay
well below the 3 % noise, or the figures test the machine rather than the statistics). Single-threaded; about
3 minutes for 200 seeds on a busy 2-core VM.

    PYTHONPATH=. .venv/bin/python bench/verdict_on_served_double.py --seeds 200 \
        --out bench/results/verdict_on_served_double_<date>.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from engineforge.sweep.champion import NO_CLEAR_WINNER, SIGNIFICANT
from tests.sweep import served_trials


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def rates(trials: list[served_trials.Trial]) -> dict[str, int]:
    apart = [t.apart for t in trials]
    return {"covered": sum(t.covered for t in trials),
            "apart_significant": sum(v.kind == SIGNIFICANT and v.name == "base" for v in apart),
            "apart_wrong_champion": sum(v.kind == SIGNIFICANT and v.name != "base" for v in apart),
            "identical_no_clear_winner": sum(t.identical.kind == NO_CLEAR_WINNER for t in trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--drawn-spreads", type=float, nargs="*", default=[0.035, 0.04],
                        help="Also report the drawn noise alone (no HTTP) at these spreads: the statistics' power there.")
    args = parser.parse_args()
    load_before = uptime()
    started = time.perf_counter()
    with served_trials.quick_gil_handover():
        trials = [served_trials.trial(seed) for seed in range(args.seeds)]
    wall = time.perf_counter() - started
    errors = sorted(abs(error) for t in trials for error in t.errors)
    report = {
        "seeds": args.seeds, "spread": served_trials.SPREAD, "nominal_tpot_ms": served_trials.NOMINAL_TPOT_MS,
        "repeats": served_trials.REPEATS, "objective": served_trials.OBJECTIVE,
        "measured": rates(trials), "drawn_noise_alone": rates([served_trials.drawn(t.seed) for t in trials]),
        "verdicts_agreeing_with_drawn": sum(served_trials.outcomes(t) == served_trials.outcomes(served_trials.drawn(t.seed))
                                            for t in trials),
        "drawn_noise_alone_at": {str(spread): rates([served_trials.drawn(seed, spread) for seed in range(args.seeds)])
                                 for spread in args.drawn_spreads},
        "timing_error_abs_p50": statistics.median(errors), "timing_error_abs_p99": errors[int(0.99 * (len(errors) - 1))],
        "timing_error_abs_max": errors[-1], "measurements": len(errors),
        "loads_run": sum(t.loads for t in trials), "wall_s": wall,
        "cpus": os.cpu_count(), "load_before": load_before, "load_after": uptime(),
    }
    n = args.seeds
    print(f"{n} seeds, {report['measurements']} measurements over HTTP ({report['loads_run']} loads, the held back "
          f"measured again) in {wall:.1f} s ({load_before})")
    for source in ("measured", "drawn_noise_alone"):
        got = report[source]
        print(f"{source}: interval covers the true mean {got['covered']}/{n} ({got['covered'] / n:.1%}; asked 90-99 %); "
              f"20 % apart significant, faster champion {got['apart_significant']}/{n} ({got['apart_significant'] / n:.1%}; "
              f"asked >= 90 %; the slower significant: {got['apart_wrong_champion']}); identical no_clear_winner "
              f"{got['identical_no_clear_winner']}/{n} ({got['identical_no_clear_winner'] / n:.1%}; asked >= 90 %)")
    for spread, got in report["drawn_noise_alone_at"].items():
        print(f"drawn noise alone at spread {float(spread):.1%}: covered {got['covered']}/{n}, apart significant "
              f"{got['apart_significant']}/{n}, identical no_clear_winner {got['identical_no_clear_winner']}/{n}")
    print(f"seeds whose three outcomes equal the drawn noise's: {report['verdicts_agreeing_with_drawn']}/{n}")
    print(f"HTTP timing error against each server's drawn delay, |relative|: p50 {report['timing_error_abs_p50']:.2%}, "
          f"p99 {report['timing_error_abs_p99']:.2%}, max {report['timing_error_abs_max']:.2%} "
          f"(noise {served_trials.SPREAD:.0%} per start)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
