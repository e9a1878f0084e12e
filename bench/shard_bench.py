"""Sharding throughput and memory: `engineforge shard` vs `cp` of the same files, side by side.

Generates a multi-file synthetic bf16 Llama checkpoint (default about 4.4 GB: hidden 4096,
11 layers, vocab 32000, 1 GB shards), then alternately copies its weight files with `cp` and
shards it with `engineforge shard --tp 2 --pp 2` (in a child process, so its peak RSS is the
sharder's alone). Both are timed until the data is on disk: the sharder fsyncs its files before
renaming the output into place, so both are followed by `sync`. CPU time is printed too: on a
shared machine it is the figure that does not depend on other people's load. Both read the source from the page
cache (it was just written). Prints the ratio against the target (<= 1.25x) and peak RSS
against 1 GiB + 2 x the largest tensor. Deletes everything it wrote unless --keep.

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

from engineforge.recipe import SyntheticModel
from engineforge.synthetic import write_synthetic_model

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

    copies, shards = [], []
    for attempt in range(args.repeats):
        copies.append(timed_copy(weights, root / "copy"))
        shards.append(timed_shard(source, root / "ckpt", args.workers))
        print(f"run {attempt + 1}: cp {describe(copies[-1])}; shard {describe(shards[-1])}; "
              f"load average {os.getloadavg()[0]:.1f}")

    cp_s, shard_s = (statistics.median(r["wall_s"] for r in runs) for runs in (copies, shards))
    cp_cpu, shard_cpu = (statistics.median(r["cpu_s"] for r in runs) for runs in (copies, shards))
    peak = max(s["peak_rss"] for s in shards)
    rss_target = GiB + 2 * largest
    print(f"output: {shards[-1]['output_bytes'] / 1e9:.2f} GB in {shards[-1]['files']} rank files (tp=2 pp=2, {args.workers} workers)")
    print(f"wall time until on disk, median of {args.repeats}: cp+sync {cp_s:.2f} s, shard {shard_s:.2f} s, "
          f"ratio {shard_s / cp_s:.2f}x (target <= 1.25x)")
    cp_min, shard_min = (min(r["wall_s"] for r in runs) for runs in (copies, shards))
    print(f"wall time, best of {args.repeats} (least disturbed by other load): cp+sync {cp_min:.2f} s, "
          f"shard {shard_min:.2f} s, ratio {shard_min / cp_min:.2f}x")
    hash_cpu = statistics.median(s["hash_cpu_s"] for s in shards)
    print(f"CPU time (user+sys), median: cp {cp_cpu:.2f} s, shard {shard_cpu:.2f} s, of which the sha256 of its "
          f"output costs about {hash_cpu:.2f} s (hashing the written files again, separately)")
    print(f"peak RSS of the sharder: {peak / 2**20:.0f} MiB (target <= 1 GiB + 2 x largest tensor = {rss_target / 2**20:.0f} MiB)")


def describe(run: dict) -> str:
    return f"{run['wall_s']:.2f} s wall, {run['cpu_s']:.2f} s CPU, {run['peak_rss'] / 2**20:.0f} MiB peak RSS"


def largest_tensor_bytes(files: list[Path]) -> int:
    from engineforge.trtllm.safetensors_format import read_header

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


def timed_shard(source: Path, target: Path, workers: int) -> dict:
    command = [sys.executable, "-m", "engineforge.cli", "shard", str(source), "--tp", "2", "--pp", "2",
               "--workers", str(workers), "--out", str(target), "--json"]
    result = run_child(command)
    report = json.loads(result["stdout"])
    hashing = hashing_cost(sorted(target.glob("rank*.safetensors")), workers)
    shutil.rmtree(target)
    return result | {"output_bytes": report["output_bytes"], "files": len(report["files"]), "hash_cpu_s": hashing}


def hashing_cost(files: list[Path], workers: int) -> float:
    """CPU seconds to sha256 these files (as the sharder must for its report), for scale."""
    import hashlib
    import resource
    from concurrent.futures import ThreadPoolExecutor

    def digest(path: Path) -> str:
        sha, buffer = hashlib.sha256(), bytearray(4 << 20)
        with open(path, "rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                sha.update(memoryview(buffer)[:count])
        return sha.hexdigest()

    before = resource.getrusage(resource.RUSAGE_SELF)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(digest, files))
    after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


if __name__ == "__main__":
    main()
