"""Serving containers: Dockerfile, build context with a wheelhouse, build, smoke test, push.

    from engineforge.packaging import PackageInputs, package_model
    result = package_model(PackageInputs(...), out_dir)

Modules: spec (inputs/results), dockerfile (template rendering), context (build context),
wheelhouse (host-built wheels), base_image (defaults; engineforge's own debootstrap base),
daemon (Docker SDK client), build, smoke, audit (user/labels/secret scan), push, package (the
stage's sequence); worker_image (the CPU image a Docker work pool runs flow runs in) and pins (its
requirements pinned for the image's own Python). A runtime's deployment files (compose.yaml) come
from the runtime.
"""

from engineforge.packaging.package import PackagingFailed, package_model
from engineforge.packaging.spec import (
    MODEL_DIR_IN_IMAGE,
    PackageInputs,
    PackageResult,
    SmokeResult,
)

__all__ = ["MODEL_DIR_IN_IMAGE", "PackageInputs", "PackageResult", "PackagingFailed", "SmokeResult", "package_model"]
