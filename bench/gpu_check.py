"""The GPU check every change can run, in one go on a GPU machine (no Prefect or MLflow there: the
stage-level path, the real download -> [quantize ->] build -> validate stage functions on a private store).
Its parts (`--parts`, all by default):

- stage: the default GPU recipe (transformers runtime, bf16, TinyLlama-1.1B shape, vocab 32000) validated
  offline at each concurrency: every figure present, the roofline fraction included.
- fp8: the same recipe quantized to FP8 by ModelOpt (calibrated on the GPU) and served fake-quantized:
  every figure present, and the server restored the quantizers (its log says so and reads every key).
- agreement: A-B-...-A on one server process: the stage's load generator (A, aiohttp) and an independent
  client (B, bench/independent_client.py: httpx + threads) on the same prompts and output lengths, in turn
  (`--warm-loads N` unmeasured loads first, then `--pairs N` A-B pairs and a closing A). Each B is compared
  with the mean of the A before and after it, so a server that drifts over the loads cancels out; output tok/s,
  TTFT p50 and ITL mean agree when the mean of those paired ratios is within 5 % of 1, or, with several pairs,
  a paired t-test at 95 % on their logarithms finds no difference (per-pair ratios and intervals reported).
  Each load also records the client's CPU time over its wall time (a client near 1.0 is measuring itself).
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
from engineforge.measure.intervals import SIGNIFICANCE, interval  # noqa: E402
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
    from engineforge.tracking.mlflow_runs import TrackedRun
    from engineforge.stages.download import download

    runtime = get_runtime(recipe.runtime)
    ctx = RunContext(runtime=runtime, store_root=str(args.out / "store"), mlflow_run=TrackedRun("", ""))
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
            for label in ["A", "B"] * args.warm_loads:  # the server's warming loads, not compared
                print(json.dumps({"concurrency": concurrency, "warm": label, **_load(label, config, bodies)}), flush=True)
            runs = {"A": [], "B": []}
            for label in ["A", "B"] * args.pairs + ["A"]:  # A first and last: each B sits between two As
                runs[label].append(_load(label, config, bodies))
                print(json.dumps({"concurrency": concurrency, "run": label, **runs[label][-1]}), flush=True)
                # Written after every load: what was measured survives a call cut off at its time limit.
                (args.out / "aba_runs.json").write_text(json.dumps([*rows, {"concurrency": concurrency, "runs": runs}]))
            rows.append({"concurrency": concurrency, "runs": runs})
    return rows


def _load(label: str, config, bodies: list[dict]) -> dict[str, float]:
    """One load by client A (the stage's) or B (the independent one): the compared figures and the client's
    CPU time over the load's wall time (all the client's threads; the server is another process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    figures = independent_client.run(config.url(), bodies, config.concurrency) if label == "B" \
        else run_benchmark(config).summary
    return {name: figures[name] for name in COMPARED} | {
        "client_cpu_fraction": round((time.process_time() - cpu) / (time.perf_counter() - wall), 3)}


def paired_ratios(a: list[float], b: list[float]) -> list[float]:
    """Each B over the mean of the A measured just before and just after it (A-B-A-...-B-A)."""
    return [b_i / ((a[i] + a[i + 1]) / 2) for i, b_i in enumerate(b) if i + 1 < len(a)]


def judge(aba: list[dict], failures: list[str]) -> list[dict]:
    """Per concurrency and compared figure: the paired ratios of every server's loads (several files' levels at one
    concurrency pool their pairs: a pair never spans two servers), their geometric mean, its 95 % interval and the
    paired t-test's p (needs scipy, which a bare GPU machine may lack: then `--judge aba_runs.json` does it anywhere)."""
    rows = []
    for concurrency in sorted({level["concurrency"] for level in aba}):
        levels = [level["runs"] for level in aba if level["concurrency"] == concurrency]
        for name in COMPARED:
            a, b = ([[f[name] for f in runs[side]] for runs in levels] for side in ("A", "B"))
            ratios = [r for a_i, b_i in zip(a, b) for r in paired_ratios(a_i, b_i)]
            logs = interval(math.log(r) for r in ratios)
            gap = math.exp(logs.mean) - 1  # the geometric mean of the paired ratios, less 1
            p = paired_p(logs.values)
            row = {"concurrency": concurrency, "figure": name, "servers": len(levels), "A": a, "B": b,
                   "B_over_neighbouring_A": ratios, "B_vs_A": round(gap, 4),
                   "B_vs_A_ci95": None if logs.half_width is None else
                   [round(math.exp(logs.low) - 1, 4), round(math.exp(logs.high) - 1, 4)],
                   "paired_p": p}
            rows.append(row)
            print(json.dumps(row), flush=True)
            # Agreement: the paired gap within the tolerance, or (with pairs) no difference a paired t-test can see.
            if not (abs(gap) <= TOLERANCE or (p is not None and p >= SIGNIFICANCE)):
                failures.append(f"c={concurrency}: {name} B vs neighbouring A {gap:+.1%} over {logs.n} pairs "
                                f"(paired p={p if p is None else round(p, 3)})")
    return rows


def paired_p(log_ratios: tuple[float, ...]) -> float | None:
    """Two-sided p-value that the paired log ratios centre on 0 (scipy's one-sample t-test); None below two pairs."""
    if len(log_ratios) < 2:
        return None
    from scipy import stats

    p = float(stats.ttest_1samp(log_ratios, 0.0).pvalue)
    return p if math.isfinite(p) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="where to measure (required unless --judge)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--sweep-max-tokens", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=1, help="A-B pairs per concurrency, then a closing A "
                        "(1: A-B-A; more gives each client an interval and Welch's test)")
    parser.add_argument("--warm-loads", type=int, default=0, help="A-B loads before the measured ones at each "
                        "concurrency, not compared (a server still warming up drifts between loads)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the 2-layer shape at vocab 32000 (a CPU smoke run)")
    parser.add_argument("--judge", type=Path, nargs="+", help="judge aba_runs.json files measured elsewhere (one "
                        "server each; their pairs pooled per concurrency), measure nothing")
    args = parser.parse_args()
    failures: list[str] = []
    if args.judge:
        judge([level for path in args.judge for level in json.loads(path.read_text())], failures)
        return verdict(failures)
    if args.out is None:
        parser.error("--out is required to measure (or give --judge aba_runs.json)")
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
