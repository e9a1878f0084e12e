"""The GPU check every change can run, in one go on a GPU machine (no Prefect or MLflow there: the
stage-level path, the real download -> build -> validate stage functions on a private store).

1. The default GPU recipe (transformers runtime, bf16, TinyLlama-1.1B shape, vocab 32000) validated
   offline at concurrency 1 and 32: every figure present, the roofline fraction included.
2. A-B-...-A on one server process: the stage's load generator (A, aiohttp) and an independent client
   (B, bench/independent_client.py: httpx + threads) on the same prompts and output lengths, in turn
   (`--pairs N` A-B pairs, then a closing A); output tok/s, TTFT p50 and ITL mean agree when B's mean is
   within 5 % of A's, or, with several pairs, Welch's test at 95 % finds no difference (spreads reported).
Exit 1, loudly, on a missing figure or a disagreement beyond the tolerance.

    python bench/gpu_check.py --out /tmp/gpu-check [--device cpu --tiny]   # the CPU form is a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engineforge.child_environment import model_server_environment  # noqa: E402
from engineforge.loadgen import run_benchmark  # noqa: E402
from engineforge.loadgen.body import request_body  # noqa: E402
from engineforge.measure.intervals import SIGNIFICANCE, interval, welch_p  # noqa: E402
from engineforge.recipe_file import parse_recipe  # noqa: E402
from engineforge.runtimes import get_runtime  # noqa: E402
from engineforge.serving import LOOPBACK, free_port, running_servers  # noqa: E402
from engineforge.stages.validate import bench_config  # noqa: E402
from gpu_validate import TINYLLAMA_SHAPE, recipe_text, validated  # noqa: E402
import independent_client  # noqa: E402

REQUIRED = ("output_tokens_per_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "itl_ms_mean", "e2e_ms_p50")
COMPARED = ("output_tokens_per_s", "ttft_ms_p50", "itl_ms_mean")
TOLERANCE = 0.05


def check_stage(args, shape: str, failures: list[str]) -> tuple[list[dict], object]:
    rows, built = [], None
    for concurrency in args.concurrency:
        recipe = parse_recipe(recipe_text(concurrency, max(8, 4 * concurrency), args.max_tokens, args.device, shape))
        started = time.perf_counter()
        result = validated(recipe, args.out / "store", remeasure=True)
        figures, missing = result.outputs["figures"], result.outputs.get("missing", {})
        wanted = REQUIRED + (("roofline_fraction",) if args.device == "cuda" else ())
        for name in wanted:
            if not math.isfinite(figures.get(name, math.nan)):
                failures.append(f"c={concurrency}: {name} missing ({missing.get(name, 'not computed')})")
        rows.append({"concurrency": concurrency, "stage_s": round(time.perf_counter() - started, 1),
                     "server_env": result.outputs.get("server_env"), **figures})
        print(json.dumps({k: rows[-1][k] for k in ("concurrency", "stage_s", *wanted) if k in rows[-1]}), flush=True)
    return rows, recipe


def check_agreement(args, recipe) -> list[dict]:
    """A-B-...-A per concurrency on one server started as the validate stage starts it: each load's figures."""
    from engineforge.stages.build import build, build_key
    from engineforge.stages.context import RunContext
    from engineforge.stages.download import download

    runtime = get_runtime(recipe.runtime)
    ctx = RunContext(runtime=runtime, store_root=str(args.out / "store"), tracking_uri="", run_id="")
    model = download(recipe, ctx)
    served = str(build(recipe, model, ctx, build_key(recipe, model, runtime)).file("served_dir"))
    port = free_port()
    plan = runtime.serve_plan(recipe, served, LOOPBACK, port, args.device, str(args.out))
    rows = []
    with running_servers(plan, LOOPBACK, args.out / "aba-server.log", 600, model_server_environment(False)) as url:
        for concurrency in args.concurrency:
            requests = max(8, 4 * concurrency)
            config = bench_config(recipe, runtime, url, served).model_copy(
                update={"concurrency": concurrency, "requests": requests, "warmup_requests": min(concurrency, 4)})
            bodies = [request_body(config, config.sample(i)) for i in range(requests)]
            independent_client.run(config.url(), bodies[: config.warmup_requests], concurrency)  # warm-up, not counted
            runs = {"A": [], "B": []}
            for label in ["A", "B"] * args.pairs + ["A"]:  # A first and last: drift cannot favour one client
                figures = independent_client.run(config.url(), bodies, concurrency) if label == "B" \
                    else run_benchmark(config).summary
                runs[label].append({name: figures[name] for name in COMPARED})
                print(json.dumps({"concurrency": concurrency, "run": label, **runs[label][-1]}), flush=True)
                # Written after every load: what was measured survives a call cut off at its time limit.
                (args.out / "aba_runs.json").write_text(json.dumps([*rows, {"concurrency": concurrency, "runs": runs}]))
            rows.append({"concurrency": concurrency, "runs": runs})
    return rows


def judge(aba: list[dict], failures: list[str]) -> list[dict]:
    """Per concurrency and compared figure: each client's mean, 95 % interval and Welch's p (needs scipy, which
    a bare GPU machine may lack: then `--judge aba_runs.json` does it anywhere)."""
    rows = []
    for level in aba:
        concurrency, runs = level["concurrency"], level["runs"]
        for name in COMPARED:
            a, b = (interval(f[name] for f in runs[side]) for side in ("A", "B"))
            gap = b.mean / a.mean - 1
            p = welch_p(a.values, b.values)
            row = {"concurrency": concurrency, "figure": name, "A": list(a.values), "B": list(b.values),
                   "A_mean": a.mean, "A_ci95": a.half_width, "B_mean": b.mean, "B_ci95": b.half_width,
                   "B_vs_A": round(gap, 4), "welch_p": p}
            rows.append(row)
            print(json.dumps(row), flush=True)
            # Agreement: the means within the tolerance, or (with pairs) no difference Welch can see at 95 %.
            if not (abs(gap) <= TOLERANCE or (p is not None and p >= SIGNIFICANCE)):
                failures.append(f"c={concurrency}: {name} B {b.mean:.4g} vs A {a.mean:.4g} ({gap:+.1%}, "
                                f"Welch p={p if p is None else round(p, 3)})")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--pairs", type=int, default=1, help="A-B pairs per concurrency, then a closing A "
                        "(1: A-B-A; more gives each client an interval and Welch's test)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the 2-layer shape at vocab 32000 (a CPU smoke run)")
    parser.add_argument("--skip-stage", action="store_true", help="only the client agreement (part 2)")
    parser.add_argument("--judge", type=Path, help="judge an aba_runs.json measured elsewhere, measure nothing")
    args = parser.parse_args()
    if args.judge:
        failures = []
        judge(json.loads(args.judge.read_text()), failures)
        print("\n".join(f"FAIL {failure}" for failure in failures) or "agree")
        return 1 if failures else 0
    args.out.mkdir(parents=True, exist_ok=True)
    shape = "    num_hidden_layers: 2\n    hidden_size: 64\n    intermediate_size: 128\n    num_attention_heads: 4\n" \
            "    num_key_value_heads: 2\n    vocab_size: 32000\n" if args.tiny else TINYLLAMA_SHAPE
    failures: list[str] = []
    if args.skip_stage:
        stage_rows, recipe = [], parse_recipe(recipe_text(1, 8, args.max_tokens, args.device, shape))
    else:
        stage_rows, recipe = check_stage(args, shape, failures)
    aba_runs = check_agreement(args, recipe)
    try:
        aba_rows = judge(aba_runs, failures)
    except ImportError:  # measured, not judged: no verdict is printed for it
        print("scipy is not installed here: judge with `python bench/gpu_check.py --judge aba_runs.json`", flush=True)
        return 3
    (args.out / "gpu_check.json").write_text(json.dumps({"stage": stage_rows, "aba": aba_rows, "failures": failures}, indent=1))
    for failure in failures:
        print(f"FAIL {failure}", flush=True)
    print("gpu_check: " + ("FAILED" if failures else "passed"), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
