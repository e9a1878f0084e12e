"""The packaging tests' one real package run: the tiny model, with a secret planted in its directory and in
the environment, built from engineforge's base image, smoke-tested and pushed (tests/packaging).

The run happens in a child process (`python tests/packaging_helpers.py ROOT REGISTRY`) so that the secret
is in that process's environment alone: tests/conftest_docker.py starts it beside the other tests, when
the base and worker images are built, and the test module's fixtures wait for it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from engineforge.packaging import MODEL_DIR_IN_IMAGE

SECRET = "hf_" + secrets.token_hex(16)  # planted in the environment and the model dir; must reach no layer
KEY = "e7" * 32
SERVE_ARGV = ["transformers", "serve", MODEL_DIR_IN_IMAGE, "--host", "0.0.0.0", "--port", "8000", "--device", "cpu",
              "--continuous-batching"]
LABELS = {
    "org.opencontainers.image.revision": "0" * 40,
    "ai.engineforge.lock-sha256": "1" * 64,
    "ai.engineforge.model-revision": "synthetic-seed-0",
    "ai.engineforge.note": 'quoted "value" with $DOLLAR',
}


def requirements() -> list[str]:
    """What the package stage installs for the tiny recipe (this checkout's transformers and torch), so the
    image shares its wheelhouse and dependency layers with the worker image's resolution of the same pins."""
    from engineforge.recipe.file import parse_recipe
    from engineforge.runtimes import get_runtime

    return get_runtime("transformers").image_requirements(parse_recipe("name: tiny-llama\nmodel:\n  source: synthetic:tiny-llama\n"))


def inputs_for(model_dir: Path, key: str, **overrides):
    from engineforge.packaging import PackageInputs

    values = dict(recipe_name="tiny-llama", runtime="transformers", key=key, model_dir=model_dir, serve_argv=SERVE_ARGV,
                  python_requirements=requirements(), labels=LABELS, smoke_timeout_s=300)
    values.update(overrides)
    return PackageInputs(**values)


def package_tiny(root: Path, registry: str) -> tuple[Path, object]:
    """Run the package in a child process whose environment holds SECRET as HF_TOKEN: (model dir, PackageResult)."""
    from engineforge.packaging.spec import PackageResult

    env = {**os.environ, "HF_TOKEN": SECRET}
    done = subprocess.run([sys.executable, __file__, str(root), registry], env=env, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the tiny package run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    ran = json.loads(done.stdout.splitlines()[-1])
    return Path(ran["model_dir"]), PackageResult.model_validate(ran["result"])


def _main(root: Path, registry: str) -> None:
    from engineforge.packaging import package_model
    from engineforge.sources.synthetic import write_synthetic_model
    from engineforge.recipe.schema import SyntheticModel

    secret = os.environ["HF_TOKEN"]
    model_dir = write_synthetic_model(SyntheticModel(), root / "packaged" / "model")  # the tiny-llama shape
    (model_dir / ".env").write_text(f"HF_TOKEN={secret}\n")  # the junk real model directories carry
    (model_dir / ".cache" / "huggingface").mkdir(parents=True)
    (model_dir / ".cache" / "huggingface" / "token").write_text(secret)
    result = package_model(inputs_for(model_dir, KEY, registry=registry), root / "package-out")
    print(json.dumps({"model_dir": str(model_dir), "result": result.model_dump(mode="json")}))


if __name__ == "__main__":
    _main(Path(sys.argv[1]), sys.argv[2])
