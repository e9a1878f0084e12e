"""How a fake-quantized model is served: ModelOpt's restoring server script, copied into the served directory.

The script travels with the model (the build stage copies it beside the weights), so the validate stage
and a serving image run the same file, and the image needs transformers and ModelOpt, not engineforge.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from pathlib import Path

SERVER_SCRIPT = Path(__file__).with_name("fakequant_server.py")
SERVER_FILE = "engineforge_fakequant_server.py"  # its name in the served directory


@functools.cache
def server_script_sha256() -> str:
    """Part of the build key: a changed script is a changed build. Read when a key is made, not at import."""
    return hashlib.sha256(SERVER_SCRIPT.read_bytes()).hexdigest()


def copy_server(served_dir: Path) -> None:
    shutil.copyfile(SERVER_SCRIPT, served_dir / SERVER_FILE)


def server_argv(served_dir: Path) -> list[str]:
    """The command up to the model directory; "python" is resolved beside the running interpreter
    (engineforge/processes/serving.py) or is the image's."""
    return ["python", str(served_dir / SERVER_FILE), str(served_dir)]
