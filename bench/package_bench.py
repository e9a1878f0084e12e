"""Packaging: image size against its parts, rebuild with unchanged inputs, rebuild with a changed model.

Writes two synthetic Llama checkpoints that differ only in their seed (default about 240 MB of
float32 weights each: hidden 1024, 8 layers, vocab 32000), packages the first with the reference
runtime (`transformers serve`, CPU torch) from engineforge's base image, packages it again with
unchanged inputs, then packages the second. The smoke test is off here (the tests run it); what is
timed is `package_model` from call to return: context, wheelhouse lookup, build.

- Size: image size against base image + installed dependencies (the venv's file bytes, measured
  inside the image) + model files (bytes on the host). Target: overhead at most 5%.
- Unchanged inputs: wall time of the second call (it finds the image of the same stage key and
  context fingerprint and builds nothing) and whether it is the identical image; beside it, a
  `docker build` of the same context with a warm layer cache (what a rebuild costs when only file
  times changed: the context is sent and checksummed again). Target: under 5 s.
- Changed model: which layers the second image shares with the first. Target: every layer but
  the model's.

Needs a Docker daemon (.ci/services.sh). Deletes what it wrote unless --keep; images stay tagged
engineforge/package-bench:*.

    .venv/bin/python bench/package_bench.py [--dir /tmp] [--layers 8] [--hidden 1024] [--json] [--cold]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from engineforge.packaging import MODEL_DIR_IN_IMAGE, PackageInputs, package_model
from engineforge.packaging.base_image import ensure_base_image
from engineforge.packaging.build import build_image
from engineforge.packaging.context import context_fingerprint
from engineforge.packaging.daemon import connect
from engineforge.packaging.dockerfile import VENV_DIR
from engineforge.recipe.schema import SyntheticModel
from engineforge.sources.synthetic import write_synthetic_model

MB = 1e6
REQUIREMENTS = ["transformers[serving]==5.24.0", "torch==2.13.0"]
SERVE_ARGV = ["transformers", "serve", MODEL_DIR_IN_IMAGE, "--host", "0.0.0.0", "--port", "8000", "--device", "cpu", "--continuous-batching"]
TREE_BYTES = (
    "import os, sys; print(sum(os.lstat(os.path.join(d, f)).st_size"
    " for d, _, fs in os.walk(sys.argv[1]) for f in fs))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--cold", action="store_true", help="also time a build of the same context without the layer cache (minutes)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    client, reason = connect()
    if client is None:
        sys.exit(f"error: {reason}; start dockerd (bash .ci/services.sh)")
    root = Path(tempfile.mkdtemp(prefix="package-bench-", dir=args.dir))
    try:
        figures = run(client, root, args)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report(figures)
    if args.json:
        print(json.dumps(figures, indent=2))


def timed_package(model_dir: Path, key: str, out_dir: Path):
    inputs = PackageInputs(
        recipe_name="package-bench", key=key, model_dir=model_dir, serve_argv=SERVE_ARGV,
        python_requirements=REQUIREMENTS, smoke_test=False, image_repo="engineforge/package-bench",
    )
    started = time.perf_counter()
    result = package_model(inputs, out_dir)
    return result, time.perf_counter() - started


def run(client, root: Path, args) -> dict:
    base = ensure_base_image(client)
    spec = dict(hidden_size=args.hidden, intermediate_size=args.hidden * 2, num_hidden_layers=args.layers,
                num_attention_heads=16, num_key_value_heads=4, vocab_size=32000)
    model_a = write_synthetic_model(SyntheticModel(seed=0, **spec), root / "model-a")
    model_b = write_synthetic_model(SyntheticModel(seed=1, **spec), root / "model-b")

    first, first_s = timed_package(model_a, "ba" * 32, root / "first")
    again, again_s = timed_package(model_a, "ba" * 32, root / "again")
    started = time.perf_counter()
    warm_id = build_image(client, again.context_dir, again.image_tag, root / "warm-build.log",
                          labels={"ai.engineforge.context-fingerprint": context_fingerprint(again.context_dir)})
    warm_build_s = time.perf_counter() - started
    changed, changed_s = timed_package(model_b, "bb" * 32, root / "changed")
    # Last: its fresh layers become what the legacy builder's cache matches next.
    cold_build_s = cold_build(client, again.context_dir) if args.cold else None

    image = client.images.get(first.image_id)
    base_bytes = client.images.get(base).attrs["Size"]
    deps_bytes = int(client.containers.run(first.image_id, ["-c", TREE_BYTES, VENV_DIR], entrypoint="python3", remove=True))
    model_bytes = sum(p.stat().st_size for p in model_a.rglob("*") if p.is_file())
    parts = base_bytes + deps_bytes + model_bytes
    layers_a = image.attrs["RootFS"]["Layers"]
    layers_b = client.images.get(changed.image_id).attrs["RootFS"]["Layers"]
    shared = sum(1 for a, b in zip(layers_a, layers_b) if a == b)
    return {
        "date": date.today().isoformat(),
        "machine": f"{platform.node()} {platform.machine()} ({len(__import__('os').sched_getaffinity(0))} cores)",
        "docker": client.version()["Version"],
        "model_mb": round(model_bytes / MB, 1),
        "image_mb": round(image.attrs["Size"] / MB, 1),
        "base_mb": round(base_bytes / MB, 1),
        "deps_mb": round(deps_bytes / MB, 1),
        "image_bytes": image.attrs["Size"],
        "parts_bytes": parts,
        "overhead_pct": round(100 * (image.attrs["Size"] / parts - 1), 4),
        "context_mb": round(sum(p.stat().st_size for p in again.context_dir.rglob("*") if p.is_file()) / MB, 1),
        "first_package_s": round(first_s, 2),
        "unchanged_package_s": round(again_s, 2),
        "unchanged_reused": again.reused,
        "unchanged_same_image": again.image_id == first.image_id,
        "warm_cache_build_s": round(warm_build_s, 2),
        "warm_cache_same_image": warm_id == first.image_id,
        "cold_build_s": cold_build_s and round(cold_build_s, 1),
        "changed_model_package_s": round(changed_s, 2),
        "layers": len(layers_a),
        "layers_shared_after_model_change": shared,
        "only_model_layer_differs": shared == len(layers_a) - 1 and len(layers_a) == len(layers_b),
    }


def cold_build(client, context_dir: Path) -> float:
    """A build that uses no cached layer (pip install from the wheelhouse included); tags nothing."""
    started = time.perf_counter()
    for chunk in client.api.build(path=str(context_dir), nocache=True, rm=True, forcerm=True, decode=True):
        if "error" in chunk:
            raise SystemExit(f"error: cold build failed: {chunk['error']}")
    return time.perf_counter() - started


def report(f: dict) -> None:
    print(f"package bench, {f['date']}, {f['machine']}, Docker {f['docker']}")
    print(f"image {f['image_mb']} MB vs base {f['base_mb']} + deps {f['deps_mb']} + model {f['model_mb']} MB:"
          f" overhead {f['overhead_pct']}%"
          f" ({f['image_bytes'] - f['parts_bytes']:+,} bytes; target <= 5%)")
    print(f"first package_model {f['first_package_s']} s; unchanged inputs {f['unchanged_package_s']} s"
          f" (target < 5 s), reused: {f['unchanged_reused']}, same image: {f['unchanged_same_image']}")
    print(f"docker build of the same {f['context_mb']} MB context, warm layer cache: {f['warm_cache_build_s']} s,"
          f" same image: {f['warm_cache_same_image']}")
    if f["cold_build_s"] is not None:
        print(f"docker build of the same context without the layer cache: {f['cold_build_s']} s")
    print(f"changed model: {f['changed_model_package_s']} s, {f['layers_shared_after_model_change']}/{f['layers']} layers shared,"
          f" only the model layer differs: {f['only_model_layer_differs']}")


if __name__ == "__main__":
    main()
