"""The load generator's client against its baseline, side by side in one run.

Each client runs in its own process: the current tree's `engineforge.loadgen` (aiohttp) and the
baseline's, taken with `git archive` from --baseline (default 0c6b9d4: the hand-written HTTP/1.1
client on asyncio + h11). The server is tests/doubles/openai_server.py in a third process.

1. Timing: against a server with known delays (TTFT 50 ms, ITL 10 ms, 20 tokens) at concurrency 1
   and 32, each client `--repeats` times, interleaved (a neighbour's burst hits both alike); the
   median over runs of each run's p50. "Error" is the client's figure minus the known delay; the
   server's own kept delays (GET /mock/timings: request read to token written) are printed beside
   it, so the part of the error that is the server's lateness on a loaded machine shows.
2. Cost: harness CPU per request and per streamed token, closed loop against an instant server
   (process CPU time of the harness process, user + system).
3. The highest request rate each sustains open loop (Poisson arrivals): sent >= 95 % of the
   schedule's rate, no errors, send lag p50 < 2 ms (asyncio timers round up to 1 ms).

    .venv/bin/python bench/loadgen_bench.py            # prints tables and a BENCHMARKS.md block
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RATE_TARGETS = (500, 1000, 1500, 2000, 3000, 4000)


# -- in the harness process (PYTHONPATH selects the client) --

def child(job: dict) -> dict:
    import engineforge.loadgen
    from engineforge.loadgen import BenchConfig, run_benchmark

    assert Path(engineforge.loadgen.__file__).is_relative_to(job["tree"]), engineforge.loadgen.__file__
    base = {"endpoint": job["url"], "model": "m", "prompts": ["hello"], "gpu_telemetry": False}
    config = BenchConfig(**(base | job["config"]))
    urllib.request.urlopen(job["url"] + "/mock/timings").read()  # forget earlier runs' delays
    cpu = time.process_time()
    result = run_benchmark(config)
    cpu = time.process_time() - cpu
    records = result.records
    sent = [r.start_s for r in records]
    return {"summary": result.summary, "cpu_s": cpu, "requests": config.requests + config.warmup_requests,
            "scheduled": [r.scheduled_s for r in records], "sent": sent,
            "server": json.load(urllib.request.urlopen(job["url"] + "/mock/timings"))}


# -- in the parent --

class Clients:
    def __init__(self, baseline: str, baseline_tree: str | None):
        if baseline_tree is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="loadgen-baseline-")
            baseline_tree = self._tmp.name
            archive = subprocess.run(["git", "-C", str(REPO), "archive", baseline, "engineforge"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", baseline_tree], input=archive, check=True)
        self.trees = {"aiohttp (current)": str(REPO), f"h11 baseline ({baseline})": str(Path(baseline_tree).resolve())}

    def run(self, name: str, url: str, **config) -> dict:
        tree = self.trees[name]
        job = json.dumps({"tree": tree, "url": url, "config": config})
        env = os.environ | {"PYTHONPATH": os.pathsep.join([tree, *filter(None, [os.environ.get("PYTHONPATH")])])}
        out = subprocess.run([sys.executable, __file__, "--child", job], env=env, check=True, capture_output=True,
                             text=True).stdout
        return json.loads(out.splitlines()[-1])


def timing(clients: Clients, url: str, repeats: int) -> list[dict]:
    rows = []
    for concurrency, requests in ((1, 20), (32, 96)):
        runs: dict[str, list[dict]] = {name: [] for name in clients.trees}
        for _ in range(repeats):
            for name in clients.trees:
                runs[name].append(clients.run(name, url, requests=requests, concurrency=concurrency,
                                              warmup_requests=concurrency, max_tokens=20))
        for name, results in runs.items():
            def median(key: str) -> float:
                return statistics.median(r["summary"][key] for r in results)

            def server(key: str) -> float:
                return statistics.median(statistics.median(r["server"][key]) * 1e3 for r in results)

            rows.append({"client": name, "concurrency": concurrency, "ttft_p50": median("ttft_ms_p50"),
                         "ttft_p90": median("ttft_ms_p90"), "itl_p50": median("itl_ms_p50"),
                         "itl_p90": median("itl_ms_p90"), "server_ttft_p50": server("ttft_s"),
                         "server_itl_p50": server("itl_s")})
    return rows


def cost(clients: Clients, url: str, requests: int) -> list[dict]:
    rows = []
    for name in clients.trees:
        for concurrency in (1, 32):
            for tokens in (1, 64):
                server = server_cpu()
                r = clients.run(name, url, requests=requests, concurrency=concurrency, max_tokens=tokens,
                                warmup_requests=concurrency)
                rows.append({"client": name, "concurrency": concurrency, "tokens": tokens,
                             "req_s": r["summary"]["request_throughput"], "cpu_us": r["cpu_s"] / r["requests"] * 1e6,
                             "server_us": (server_cpu() - server) / r["requests"] * 1e6,
                             "errors": r["summary"]["errors"]})
    return rows


def sustained(clients: Clients, url: str, seconds: float) -> dict[str, list[dict]]:
    found = {}
    for name in clients.trees:
        rows = []
        for target in RATE_TARGETS:
            requests = int(min(12000, max(500, target * seconds)))
            r = clients.run(name, url, requests=requests, concurrency=512, request_rate=float(target),
                            max_tokens=1, warmup_requests=8)
            s = r["summary"]
            schedule_rate = (requests - 1) / (r["scheduled"][-1] - r["scheduled"][0])  # the Poisson draw's own rate
            achieved = (requests - 1) / (max(r["sent"]) - min(r["sent"]))
            ok = achieved >= 0.95 * schedule_rate and s["errors"] == 0 and s["send_lag_ms_p50"] < 2
            rows.append({"target": target, "schedule": schedule_rate, "achieved": achieved,
                         "lag_p50": s["send_lag_ms_p50"], "lag_p99": s["send_lag_ms_p99"],
                         "cpu_us": r["cpu_s"] / r["requests"] * 1e6, "sustained": ok})
            if len(rows) >= 2 and not rows[-1]["sustained"] and not rows[-2]["sustained"]:
                break  # two misses in a row: past the limit, not a neighbour's burst
        found[name] = rows
    return found


def server_cpu() -> float:
    """CPU seconds of the test server (the child of this process running openai_server.py)."""
    return sum(sum(p.cpu_times()[:2]) for p in psutil.Process().children()
               if any("openai_server.py" in part for part in p.cmdline()))


def machine() -> str:
    return (f"{platform.node()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="0c6b9d4", help="Git revision of the baseline client.")
    parser.add_argument("--baseline-tree", help="A directory holding the baseline's engineforge/ (instead of git archive).")
    parser.add_argument("--repeats", type=int, default=3, help="Timing runs per client and concurrency.")
    parser.add_argument("--requests", type=int, default=1000, help="Requests per cost run.")
    parser.add_argument("--seconds", type=float, default=3.0, help="Length of each request-rate step.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    sys.path.insert(0, str(REPO))  # tests/doubles (not in a harness process: there PYTHONPATH picks engineforge)
    from tests.doubles.openai_server import mock_server

    clients = Clients(args.baseline, args.baseline_tree)
    load_at_start = os.getloadavg()
    print(f"# Load generator ({date.today()}, {machine()}, load average {load_at_start[0]:.2f} at start)\n")
    with mock_server(50.0, 10.0) as url:
        print(f"Timing, TTFT 50 ms / ITL 10 ms, 20 tokens, median of {args.repeats} interleaved runs "
              "(error = measured - known; server = the delay the server really kept):\n")
        print("| client | concurrency | TTFT p50 ms (error) | TTFT p90 ms | server TTFT p50 ms | ITL p50 ms (error) "
              "| ITL p90 ms | server ITL p50 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for r in timing(clients, url, args.repeats):
            print(f"| {r['client']} | {r['concurrency']} | {r['ttft_p50']:.2f} ({r['ttft_p50'] - 50:+.2f}) | "
                  f"{r['ttft_p90']:.2f} | {r['server_ttft_p50']:.2f} | {r['itl_p50']:.2f} ({r['itl_p50'] - 10:+.2f}) | "
                  f"{r['itl_p90']:.2f} | {r['server_itl_p50']:.2f} |")
    with mock_server(0.0, 0.0) as url:
        print("\nCost against an instant server (closed loop):\n")
        print("| client | concurrency | tokens/request | requests/s | harness CPU µs/request | server CPU µs/request |")
        print("|---|---|---|---|---|---|")
        rows = cost(clients, url, args.requests)
        for r in rows:
            print(f"| {r['client']} | {r['concurrency']} | {r['tokens']} | {r['req_s']:.0f} | {r['cpu_us']:.0f} | "
                  f"{r['server_us']:.0f} |")
        print()
        for name in clients.trees:
            per_token = {c: (next(r["cpu_us"] for r in rows if (r["client"], r["concurrency"], r["tokens"]) == (name, c, 64))
                             - next(r["cpu_us"] for r in rows if (r["client"], r["concurrency"], r["tokens"]) == (name, c, 1))) / 63
                         for c in (1, 32)}
            print(f"- {name}: harness CPU per streamed token {per_token[1]:.1f} µs (c=1), {per_token[32]:.1f} µs (c=32)")
        print("\nOpen loop, Poisson arrivals, cap 512 in flight, 1 output token:\n")
        print("| client | target req/s | schedule req/s | sent req/s | send lag p50 ms | send lag p99 ms | harness CPU µs/req | sustained |")
        print("|---|---|---|---|---|---|---|---|")
        steps = sustained(clients, url, args.seconds)
        for name, rows in steps.items():
            for r in rows:
                print(f"| {name} | {r['target']} | {r['schedule']:.0f} | {r['achieved']:.0f} | {r['lag_p50']:.2f} | "
                      f"{r['lag_p99']:.2f} | {r['cpu_us']:.0f} | {'yes' if r['sustained'] else 'no'} |")
        print()
        for name, rows in steps.items():
            best = max((r["target"] for r in rows if r["sustained"]), default=0)  # a miss below it was a neighbour
            print(f"- {name}: highest sustained request rate {best} req/s")
    print(f"\nload average: {load_at_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
