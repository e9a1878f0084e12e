"""The GPU check every change can run, in one go on a GPU machine (no Prefect or MLflow there: the
stage-level path, the real download -> [quantize ->] build -> validate stage functions on a private store).
Its parts (`--parts`, all by default):

- stage: the default GPU recipe (transformers runtime, bf16, TinyLlama-1.1B shape, vocab 32000) validated
  offline at each concurrency: every figure present, the roofline fraction included.
- fp8: the same recipe quantized to FP8 by ModelOpt (calibrated on the GPU) and served fake-quantized:
  every figure present, and the server restored the quantizers (its log says so and reads every key).
- agreement: A-B-...-A on one server process: the stage's load generator (A, aiohttp) and an independent
  client (B, bench/independent_client.py: httpx + threads) on the same prompts and output lengths, in turn
  (`--pairs N` A-B pairs, then a closing A); output tok/s, TTFT p50 and ITL mean agree when B's mean is
  within 5 % of A's, or, with several pairs, Welch's test at 95 % finds no difference (spreads reported).
- sweep: a small sweep through the real sweep code (bench/sweep_gpu.py): every variant's figures
  present and the champion chosen on measured numbers.
Exit 1, loudly, on a missing figure, a disagreement beyond the tolerance or a champion without numbers.

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

from engineforge.processes.environment import model_server_environment  # noqa: E402
from engineforge.loadgen import run_benchmark  # noqa: E402
from engineforge.loadgen.body import request_body  # noqa: E402
from engineforge.measure.intervals import SIGNIFICANCE, interval, welch_p  # noqa: E402
from engineforge.recipe.file import parse_recipe  # noqa: E402
from engineforge.runtimes import get_runtime  # noqa: E402
from engineforge.processes.serving import LOOPBACK, free_port, running_servers  # noqa: E402
from engineforge.stages.validate import bench_config  # noqa: E402
from gpu_validate import TINYLLAMA_SHAPE, recipe_text, stage_results  # noqa: E402
import independent_client  # noqa: E402
import sweep_gpu  # noqa: E402

REQUIRED = ("output_tokens_per_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "itl_ms_mean", "e2e_ms_p50")
COMPARED = ("output_tokens_per_s", "ttft_ms_p50", "itl_ms_mean")
TOLERANCE = 0.05
PARTS = ("stage", "fp8", "agreement", "sweep")
TINY_SHAPE = ("    num_hidden_layers: 2\n    hidden_size: 64\n    intermediate_size: 128\n    num_attention_heads: 4\n"
              "    num_key_value_heads: 2\n    vocab_size: 32000\n")


def wanted(args) -> tuple[str, ...]:
    """The figures every measurement must have (the roofline fraction needs a GPU's peak)."""
    return REQUIRED + (("roofline_fraction",) if args.device == "cuda" else ())


def check_stage(args, shape: str, failures: list[str], quantize_format: str | None = None) -> list[dict]:
    """The validate stage at each concurrency (quantized first when `quantize_format` is given)."""
    rows, label = [], quantize_format or "bf16"
    for concurrency in args.concurrency:
        recipe = parse_recipe(recipe_text(concurrency, max(8, 4 * concurrency), args.max_tokens, args.device, shape,
                                          quantize_format))
        started = time.perf_counter()
        results = stage_results(recipe, args.out / "store", remeasure=True)
        result = results["validate"]
        figures, missing = result.outputs["figures"], result.outputs.get("missing", {})
        for name in wanted(args):
            if not math.isfinite(figures.get(name, math.nan)):
                failures.append(f"{label} c={concurrency}: {name} missing ({missing.get(name, 'not computed')})")
        row = {"model": label, "concurrency": concurrency, "stage_s": round(time.perf_counter() - started, 1),
               "server_env": result.outputs.get("server_env"), **figures}
        if "quantize" in results:
            row["quantize"] = results["quantize"].outputs["figures"]
            log = result.file("server_log").read_text(errors="replace")
            # The spawned server must load ModelOpt's quantizers, not serve the weights unquantized.
            if "Restored ModelOpt state" not in log or "UNEXPECTED" in log:
                failures.append(f"{label} c={concurrency}: the server did not restore the quantizers (see its log)")
            row["quantizers_restored"] = "Restored ModelOpt state" in log and "UNEXPECTED" not in log
        rows.append(row)
        shown = ("model", "concurrency", "stage_s", *wanted(args), "quantize", "quantizers_restored")
        print(json.dumps({k: row[k] for k in shown if k in row}), flush=True)
    return rows


def check_sweep(args, shape: str, failures: list[str]) -> dict:
    """The GPU sweep through the real expansion, stage functions, table and champion verdict."""
    recipe = parse_recipe(sweep_gpu.sweep_recipe(args.device, shape, args.sweep_max_tokens))
    records = sweep_gpu.measure(recipe, args.out / "store", args.out / "sweep")
    verdict = sweep_gpu.publish(records, recipe, args.out / "sweep")
    print(verdict.table(records), flush=True)
    for record in records:
        for name in wanted(args):
            if not math.isfinite(record.interval(name).mean):
                failures.append(f"sweep {record.name}: {name} missing")
    if verdict.champion is None or not math.isfinite(verdict.champion.interval(verdict.objective).mean):
        failures.append(f"sweep: no champion chosen on measured numbers ({verdict.sentence()})")
    return {"variants": [record.name for record in records], "verdict": verdict.sentence()}


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
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--sweep-max-tokens", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=1, help="A-B pairs per concurrency, then a closing A "
                        "(1: A-B-A; more gives each client an interval and Welch's test)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the 2-layer shape at vocab 32000 (a CPU smoke run)")
    parser.add_argument("--judge", type=Path, help="judge an aba_runs.json measured elsewhere, measure nothing")
    args = parser.parse_args()
    failures: list[str] = []
    if args.judge:
        judge(json.loads(args.judge.read_text()), failures)
        return verdict(failures)
    args.out.mkdir(parents=True, exist_ok=True)
    shape = TINY_SHAPE if args.tiny else TINYLLAMA_SHAPE
    report: dict = {"parts": args.parts}
    if "stage" in args.parts:
        report["stage"] = check_stage(args, shape, failures)
    if "fp8" in args.parts:
        report["fp8"] = check_stage(args, shape, failures, quantize_format="fp8")
    if "agreement" in args.parts:
        aba_runs = check_agreement(args, parse_recipe(recipe_text(1, 8, args.max_tokens, args.device, shape)))
        try:
            report["aba"] = judge(aba_runs, failures)
        except ImportError:  # measured, not judged: no verdict is printed for it
            print("scipy is not installed here: judge with `python bench/gpu_check.py --judge aba_runs.json`")
            return 3
    if "sweep" in args.parts:
        report["sweep"] = check_sweep(args, shape, failures)
    (args.out / "gpu_check.json").write_text(json.dumps({**report, "failures": failures}, indent=1, default=str))
    return verdict(failures)


def verdict(failures: list[str]) -> int:
    for failure in failures:
        print(f"FAIL {failure}", flush=True)
    print("gpu_check: " + ("FAILED" if failures else "passed"), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
