"""Engine artifacts: upload and download throughput through a loopback `mlflow server` against `cp`.

Writes a servable-directory-shaped tree of random bytes (default 2 GiB: four weight shards and small
config files), starts `mlflow server` on loopback with a SQLite backend and proxied artifacts
(engineforge/artifacts/server.py, what `engineforge tracking start` runs), then in one run times:

- `cp -r` of the tree on the same disk (the baseline: the bytes, nothing else);
- upload: engineforge.artifacts.transfer.upload (sha256 of every file for MANIFEST.json, then one
  streamed PUT per file through the server into its artifacts destination on the same disk);
- download: transfer.download (GET per file into a temporary directory, sha256 check against
  MANIFEST.json, rename into place).

Each is printed as MB/s and as a ratio to `cp`. Checks free space first (about 4.2 x the size is
written: source, copy, server copy, download) and refuses to run without it.

    .venv/bin/python bench/artifact_bench.py [--gib 2] [--dir /tmp] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from engineforge.tracking import mlflow_runs
from engineforge.artifacts import server, transfer
from engineforge.processes.serving import free_port

SHARDS = 4


def write_tree(root: Path, total: int) -> None:
    served = root / "served"
    served.mkdir(parents=True)
    for name in ("config.json", "generation_config.json", "tokenizer.json"):
        (served / name).write_text(json.dumps({"name": name, "padding": "x" * 4096}))
    block = os.urandom(1 << 24)  # 16 MiB, repeated: random enough for a disk and an HTTP stream
    for index in range(SHARDS):
        with open(served / f"model-{index + 1:05d}-of-{SHARDS:05d}.safetensors", "wb") as handle:
            for _ in range(total // SHARDS // len(block)):
                handle.write(block)


def timed(action) -> float:
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    total = int(args.gib * 2**30)
    free = shutil.disk_usage(args.dir).free
    if free < total * 4.2:
        raise SystemExit(f"{args.dir} has {free / 2**30:.1f} GiB free; {args.gib} GiB needs {total * 4.2 / 2**30:.1f}: "
                         "pass a smaller --gib or another --dir")
    work = Path(tempfile.mkdtemp(prefix="artifact-bench-", dir=args.dir))
    try:
        source = work / "entry"
        write_tree(source, total)
        size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        uri = server.start(free_port(), directory=work / "tracking")
        client = mlflow_runs.client(uri)
        run_id = client.create_run(client.create_experiment("artifact-bench")).info.run_id
        seconds = {
            "cp": timed(lambda: subprocess.run(["cp", "-r", str(source), str(work / "copy")], check=True)),
            "upload": timed(lambda: transfer.upload(mlflow_runs.TrackedRun(uri, run_id), source, "engine", "build", "bench")),
            "download": timed(lambda: transfer.download(uri, f"runs:/{run_id}/engine", work / "pulled", "bench")),
        }
    finally:
        server.stop(work / "tracking")
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": date.today().isoformat(), "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "bytes": size, "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "mb_per_s": {k: round(size / v / 1e6, 1) for k, v in seconds.items()},
        "time_vs_cp": {k: round(v / seconds["cp"], 2) for k, v in seconds.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{size / 2**30:.2f} GiB, {report['machine']}, {report['date']}")
    for name in seconds:
        print(f"  {name:9s} {report['seconds'][name]:8.2f} s  {report['mb_per_s'][name]:8.1f} MB/s  "
              f"{report['time_vs_cp'][name]:6.2f} x cp")


if __name__ == "__main__":
    main()
