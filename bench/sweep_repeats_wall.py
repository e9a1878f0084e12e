"""Wall time of the CPU demo sweep at `sweep.repeats: 1` and `3`, cold, one after another, as a ratio (issue 27).

The acceptance asks `repeats: 3` for at most 3.3x the wall time of `repeats: 1`. Each pair runs the same code
(`git archive` of --ref into a scratch directory, so edits made meanwhile cannot change it) on the demo recipe
(recipes/tiny-llama-sweep.yaml with only `sweep.repeats` set), each run cold: a fresh directory, store and
SQLite MLflow store, `--ephemeral-prefect`, `DOCKER_HOST` at a socket nobody listens on (the package stage
skips the same way in every run). The load average (`uptime`) is taken before each run: on a shared machine
the ratio moves with the neighbours, so run several pairs (--pairs) and report each.

    .venv/bin/python bench/sweep_repeats_wall.py --pairs 2 --out bench/results/sweep_repeats_wall.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "recipes/tiny-llama-sweep.yaml"


def archived(ref: str, into: Path) -> Path:
    """The tree at `ref`, unpacked under `into`."""
    code = into / "code"
    code.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    return code


def one_run(code: Path, repeats: int, directory: Path) -> dict:
    directory.mkdir()
    recipe = yaml.safe_load((code / RECIPE).read_text())
    recipe["sweep"]["repeats"] = repeats
    (directory / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = os.environ | {"PYTHONPATH": str(code), "ENGINEFORGE_STORE": str(directory / "store"),
                        "MLFLOW_TRACKING_URI": f"sqlite:///{directory / 'mlflow.db'}",
                        "DOCKER_HOST": f"unix://{directory / 'no-docker.sock'}"}
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "engineforge.cli.app", "run", "recipe.yaml", "--ephemeral-prefect"],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=3000)
    wall = time.perf_counter() - started
    (directory / "out.txt").write_text(done.stdout)
    (directory / "err.txt").write_text(done.stderr)
    flat = " ".join(done.stdout.split())
    duration = re.search(r"sweep completed in ([\d.]+)s", flat)
    order = re.search(r"Measured in this order: (.*?)\.(?: |$)", flat)
    return {"repeats": repeats, "rc": done.returncode, "wall_s": round(wall, 1),
            "sweep_duration_s": float(duration.group(1)) if duration else None,
            "order": order.group(1) if order else None, "uptime_before": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="HEAD", help="the code to time (a git revision of this repository)")
    parser.add_argument("--pairs", type=int, default=1, help="repeats 1 then repeats 3, this many times")
    parser.add_argument("--baseline", help="also time repeats 3 with this revision's code after the pairs (e.g. main)")
    parser.add_argument("--out", type=Path, help="write the runs as JSON here")
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.ref], check=True,
                            capture_output=True, text=True).stdout.strip()
    pairs = []
    with tempfile.TemporaryDirectory(prefix="sweep-repeats-") as scratch:
        code = archived(args.ref, Path(scratch))
        for number in range(1, args.pairs + 1):
            runs = [one_run(code, repeats, Path(scratch) / f"pair{number}-r{repeats}") for repeats in (1, 3)]
            ratio = runs[1]["wall_s"] / runs[0]["wall_s"]
            pairs.append({"pair": number, "runs": runs, "ratio": round(ratio, 2)})
            for run in runs:
                print(f"pair {number} repeats {run['repeats']}: rc {run['rc']}, wall {run['wall_s']} s, sweep "
                      f"{run['sweep_duration_s']} s; before: {run['uptime_before']}", flush=True)
                if run["order"]:
                    print(f"  measured in this order: {run['order']}", flush=True)
            print(f"pair {number}: repeats 3 / repeats 1 = {ratio:.2f}x wall", flush=True)
        baseline = None
        if args.baseline:
            (Path(scratch) / "baseline").mkdir()
            baseline = one_run(archived(args.baseline, Path(scratch) / "baseline"), 3, Path(scratch) / "baseline-r3")
            baseline["ref"] = args.baseline
            print(f"baseline {args.baseline} repeats 3: rc {baseline['rc']}, wall {baseline['wall_s']} s, sweep "
                  f"{baseline['sweep_duration_s']} s; before: {baseline['uptime_before']}", flush=True)
    result = {"ref": args.ref, "commit": commit, "host": os.uname().nodename, "cpus": os.cpu_count(), "pairs": pairs,
              "baseline": baseline}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
