"""Sharding throughput and memory: `engineforge shard` vs `cp` of the same files, side by side.

Generates a multi-file synthetic bf16 Llama checkpoint (default about 4.4 GB: hidden 4096,
11 layers, vocab 32000, 1 GB shards), then alternately copies its weight files with `cp` and
shards it with `engineforge shard --tp 2 --pp 2` in both modes: the default (no output hashing)
and `--hash` (sha256 of every rank file in the report); each in a child process, so its peak RSS
is the sharder's alone. All are timed until the data is on disk: the sharder fsyncs its files before
renaming the output into place, so every run is followed by `sync`. CPU time is printed too: on a
shared machine it is the figure that does not depend on other people's load. Both read the source from the page
cache (it was just written). Prints each mode's ratio against the target (<= 1.25x), peak RSS
against 1 GiB + 2 x the largest tensor, and the 1-minute load average around every run.
Deletes everything it wrote unless --keep.

    .venv/bin/python bench/shard_bench.py [--dir /tmp] [--layers 11] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engineforge.recipe.schema import SyntheticModel
from engineforge.sources.synthetic import write_synthetic_model

GiB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where to write (source, copy, checkpoint)")
    parser.add_argument("--layers", type=int, default=11, help="decoder layers (11 gives about 4.4 GB)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--source", type=Path, help="use this checkpoint instead of generating one (it is not deleted)")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # child mode: write the model, exit
    args = parser.parse_args()
    if args.generate:
        write_synthetic_model(bench_spec(args.layers), args.generate, "bfloat16")
        return

    root = Path(tempfile.mkdtemp(prefix="shard-bench-", dir=args.dir))
    try:
        run(root, args)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def bench_spec(layers: int) -> SyntheticModel:
    return SyntheticModel(
        architecture="llama", hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers,
        num_attention_heads=32, num_key_value_heads=8, vocab_size=32000, max_shard_size="1GB", seed=0,
    )


def run(root: Path, args) -> None:
    source = args.source or root / "hf"
    started = time.perf_counter()
    if not args.source:
        # In a child process: a child forked from a large parent inherits its RSS high-water
        # mark (ru_maxrss), which would then be misread as the sharder's.
        subprocess.run([sys.executable, __file__, "--generate", str(source), "--layers", str(args.layers)], check=True)
    weights = sorted(source.glob("*.safetensors"))
    source_bytes = sum(p.stat().st_size for p in weights)
    largest = largest_tensor_bytes(weights)
    print(f"source: {len(weights)} files, {source_bytes / 1e9:.2f} GB, largest tensor {largest / 2**20:.0f} MiB "
          f"(generated in {time.perf_counter() - started:.0f} s)")
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GiB:.0f} GiB RAM, python {platform.python_version()}")

    copies, plain, hashed, loads = [], [], [], []
    for attempt in range(args.repeats):
        loads.append(os.getloadavg()[0])
        # cp is timed twice per round and the faster kept: a cp right after another large write runs slower
        # (seen: 1.3-2.5 s CPU against 1.1 s), and the baseline should be cp at its best.
        copies.append(min((timed_copy(weights, root / "copy") for _ in range(2)), key=lambda run: run["wall_s"]))
        # Alternate the order of the two modes so neither always follows cp.
        modes = [(plain, False), (hashed, True)][:: 1 if attempt % 2 == 0 else -1]
        for results, hash_outputs in modes:
            results.append(timed_shard(source, root / "ckpt", args.workers, hash_outputs))
        loads.append(os.getloadavg()[0])
        print(f"run {attempt + 1}: cp {describe(copies[-1])}; shard {describe(plain[-1])}; "
              f"shard --hash {describe(hashed[-1])}; load average {loads[-2]:.1f} -> {loads[-1]:.1f}")

    rss_target = GiB + 2 * largest
    print(f"output: {plain[-1]['output_bytes'] / 1e9:.2f} GB in {plain[-1]['files']} rank files (tp=2 pp=2, {args.workers} workers)")
    print(f"1-minute load average around the runs: {min(loads):.1f} to {max(loads):.1f}")
    cp_s, cp_min, cp_cpu = summary(copies)
    print(f"cp+sync: median {cp_s:.2f} s wall, best {cp_min:.2f} s, median CPU {cp_cpu:.2f} s")
    for label, runs in (("shard (default, no hash)", plain), ("shard --hash", hashed)):
        wall, best, cpu = summary(runs)
        peak = max(r["peak_rss"] for r in runs)
        print(f"{label}: median {wall:.2f} s wall = {wall / cp_s:.2f}x cp (target <= 1.25x), best {best:.2f} s = "
              f"{best / cp_min:.2f}x best cp, median CPU {cpu:.2f} s, peak RSS {peak / 2**20:.0f} MiB "
              f"(target <= {rss_target / 2**20:.0f} MiB)")
    ratios = [s["wall_s"] / c["wall_s"] for s, c in zip(plain, copies)]
    print(f"default mode, per-run ratio to the cp of the same round: {', '.join(f'{r:.2f}x' for r in ratios)} "
          f"(median {statistics.median(ratios):.2f}x)")


def summary(runs: list[dict]) -> tuple[float, float, float]:
    """(median wall, best wall, median CPU) seconds."""
    return (statistics.median(r["wall_s"] for r in runs), min(r["wall_s"] for r in runs),
            statistics.median(r["cpu_s"] for r in runs))


def describe(run: dict) -> str:
    return f"{run['wall_s']:.2f} s wall, {run['cpu_s']:.2f} s CPU, {run['peak_rss'] / 2**20:.0f} MiB peak RSS"


def largest_tensor_bytes(files: list[Path]) -> int:
    from engineforge.checkpoint.safetensors_format import read_header

    return max(t.nbytes for path in files for t in read_header(path).values())


def run_child(command: list[str]) -> dict:
    """Run a command until its output is on disk (then `sync`): wall and CPU seconds, peak RSS, stdout.

    ru_maxrss (KiB on Linux) from wait4 is the child's own high-water mark, interpreter included;
    it also counts this small parent's RSS at fork time, so it errs high.
    """
    os.sync()
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    os.sync()
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{command[0]} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss * 1024, "stdout": output}


def timed_copy(files: list[Path], target: Path) -> dict:
    target.mkdir()
    result = run_child(["cp", *map(str, files), str(target)])
    shutil.rmtree(target)
    return result


def timed_shard(source: Path, target: Path, workers: int, hash_outputs: bool) -> dict:
    command = [sys.executable, "-m", "engineforge.cli.app", "shard", str(source), "--tp", "2", "--pp", "2",
               "--workers", str(workers), "--out", str(target), "--json", *(["--hash"] if hash_outputs else [])]
    result = run_child(command)
    report = json.loads(result["stdout"])
    if any((f["sha256"] is not None) != hash_outputs for f in report["files"]):
        raise SystemExit(f"shard {'with' if hash_outputs else 'without'} --hash reported the wrong sha256 fields")
    shutil.rmtree(target)
    return result | {"output_bytes": report["output_bytes"], "files": len(report["files"])}


if __name__ == "__main__":
    main()
