"""engineforge/packaging/pins.py over this venv's real distributions: the closure follows the image's
markers (Debian bookworm's Python 3.11.2), not the host's, and an extra's requirements only with it."""

from __future__ import annotations

import importlib.metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from engineforge.packaging.pins import pinned_closure

BOOKWORM = {**default_environment(), "python_full_version": "3.11.2", "python_version": "3.11"}
LATER = {**BOOKWORM, "python_full_version": "3.11.7"}


def test_a_requirement_only_the_image_python_needs_is_kept_with_its_specifier():
    # redis requires async-timeout>=4.0.3 for python_full_version < "3.11.3" (its metadata, read here).
    (needed,) = [Requirement(line) for line in importlib.metadata.requires("redis") if line.startswith("async-timeout")]
    assert "3.11.3" in str(needed.marker)
    on_bookworm, on_later = pinned_closure(["redis"], BOOKWORM), pinned_closure(["redis"], LATER)
    assert f"redis=={importlib.metadata.version('redis')}" in on_bookworm
    assert all(not pin.startswith("async-timeout") for pin in on_later)
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()}
    expected = f"async-timeout=={installed['async-timeout']}" if "async-timeout" in installed else f"async-timeout{needed.specifier}"
    assert [pin for pin in on_bookworm if pin.startswith("async-timeout")] == [expected]


def test_every_installed_distribution_is_pinned_and_an_extra_brings_its_own_requirements():
    plain, serving = pinned_closure(["transformers"], BOOKWORM), pinned_closure(["transformers[serving]"], BOOKWORM)
    for pins in (plain, serving):
        names = [pin.split("==")[0] for pin in pins]
        assert names == sorted(names) and all("==" in pin for pin in pins)
        for pin in pins:
            name, version = pin.split("==")
            assert importlib.metadata.version(name) == version
    assert set(plain) < set(serving)
    assert any(pin.startswith("uvicorn==") for pin in serving) and not any(pin.startswith("uvicorn==") for pin in plain)
