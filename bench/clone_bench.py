"""What giving the build entry its own copy of the weights costs, against the hard links it replaced.

    python bench/clone_bench.py [--mib 512] [--dir DIR]

Writes a file of random bytes in DIR (default: the store's filesystem, .engineforge/bench), then times
os.link, engineforge.artifacts.store.clone_file (a copy-on-write clone where the filesystem has FICLONE, else a
copy) and shutil.copyfile side by side, three rounds each, best of three; prints MiB/s and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from engineforge.artifacts.store import clone_file


def best_of(rounds: int, action, source: Path, target: Path) -> float:
    times = []
    for _ in range(rounds):
        target.unlink(missing_ok=True)
        os.sync()
        started = time.perf_counter()
        action(source, target)
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
        times.append(time.perf_counter() - started)
    target.unlink()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--dir", type=Path, default=Path(".engineforge/bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    source = args.dir / "weights.bin"
    with open(source, "wb") as handle:
        for _ in range(args.mib):
            handle.write(os.urandom(1 << 20))
    try:
        results = {name: best_of(3, action, source, args.dir / f"{name}.bin")
                   for name, action in (("hard link", os.link), ("clone_file", clone_file), ("copyfile", shutil.copyfile))}
    finally:
        source.unlink()
    filesystem = os.popen(f"df -T {args.dir} | tail -1").read().split()[1]
    print(f"{args.mib} MiB on {filesystem} at {args.dir}")
    for name, seconds in results.items():
        print(f"  {name:<11} {seconds * 1000:9.1f} ms  {args.mib / seconds:9.0f} MiB/s")
    print(f"  clone_file / copyfile = {results['clone_file'] / results['copyfile']:.2f}x")


if __name__ == "__main__":
    main()
