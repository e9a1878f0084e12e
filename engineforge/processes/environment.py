"""The environment of the processes we start: no secrets they do not need, no code fetched unasked.

Model servers (validate's, the smoke test's, the images') load a local directory: they need no hub
token and no hub access. transformers 5.25 on CUDA would otherwise fetch "hub kernels" (code, e.g.
kernels-community/rotary) at load time and, offline, stop with "could not verify publisher trust
status" (seen on an H200 host without network). `serve.hub_kernels: true` opts back in.
"""

from __future__ import annotations

import os
import re

SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY", re.IGNORECASE)


def scrubbed_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the variables whose names say they hold secrets."""
    return {**{name: value for name, value in os.environ.items() if not SECRET_NAME.search(name)}, **extra}


def model_server_environment(hub_kernels: bool) -> dict[str, str]:
    """What a model server runs with, on top of the scrubbed environment: hub kernels off (transformers
    reads USE_HUB_KERNELS: transformers/integrations/hub_kernels.py) and the hub offline, unless the
    recipe asked for hub kernels, which need the hub."""
    if hub_kernels:
        return {"USE_HUB_KERNELS": "YES", "HF_HUB_DISABLE_TELEMETRY": "1"}
    return {"USE_HUB_KERNELS": "NO", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
