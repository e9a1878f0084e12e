"""An image's Python requirements pinned to what this host runs, for the image's own interpreter.

The host resolves the wheelhouse with its own markers, and the image's Python is not the host's:
Debian bookworm's 3.11.2 needs `async-timeout` (redis: `python_full_version < "3.11.3"`) where
the host's 3.11.7 does not, and pip cannot evaluate markers for another interpreter. So the
dependency closure is walked here over the installed distributions' metadata, with the markers
evaluated in the image's environment (read from its python3): every distribution this host has is
pinned to its version, one only the image needs keeps its specifier.
"""

from __future__ import annotations

import importlib.metadata
import json

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# packaging.markers.default_environment(), computed by the image's python3 (which has no packaging).
MARKERS_SCRIPT = """
import json, os, platform, sys
v = sys.implementation.version
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": f"{v.major}.{v.minor}.{v.micro}" + ("" if v.releaselevel == "final" else v.releaselevel[0] + str(v.serial)),
    "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(), "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform,
}))
"""


def image_markers(client, image: str) -> dict[str, str]:
    """The environment markers of `image`'s python3 (one short container, no network)."""
    output = client.containers.run(image, ["python3", "-c", MARKERS_SCRIPT], remove=True, network_disabled=True)
    return json.loads(output)


def pinned_closure(requirements: list[str], markers: dict[str, str]) -> list[str]:
    """`name==version` for every distribution `requirements` need under `markers` that is installed
    here; `name<specifier>` for those that are not. Sorted by name."""
    pins: dict[str, str] = {}
    expanded: set[tuple[str, str]] = set()
    todo = [Requirement(line) for line in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            pins.setdefault(name, f"{name}{requirement.specifier}")
            continue
        pins[name] = f"{name}=={dist.version}"
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) in expanded:
                continue
            expanded.add((name, extra))
            for line in dist.requires or []:
                needed = Requirement(line)
                if needed.marker is None or needed.marker.evaluate({**markers, "extra": extra}):
                    todo.append(needed)
    return [pins[name] for name in sorted(pins)]
