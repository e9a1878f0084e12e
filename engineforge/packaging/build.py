"""`docker build` through the Docker SDK, streamed to a log file and to logging."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

from engineforge.errors import StageFailed

log = logging.getLogger(__name__)
STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")

ProgressCallback = Callable[[int, int, str], None]


def build_image(
    client, context_dir: Path, tag: str, log_path: Path, on_step: ProgressCallback | None = None,
    labels: dict[str, str] | None = None, buildargs: dict[str, str] | None = None,
) -> str:
    """Build context_dir as `tag` (extra `labels` on top, the Dockerfile's ARGs from `buildargs`);
    return the image id. `Step n/m` lines go to on_step."""
    image_id = None
    last_lines: list[str] = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as out:
        stream = client.api.build(
            path=str(context_dir), tag=tag, rm=True, forcerm=True, pull=False, decode=True, labels=labels,
            buildargs=buildargs,
        )
        for chunk in stream:
            if "error" in chunk:
                message = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                out.write(f"ERROR: {message}\n")
                step = next((line for line in reversed(last_lines) if STEP.match(line)), "the build")
                raise StageFailed("package", f"docker build of {tag} failed at {step!r}: {message.strip()}; full log in {log_path}")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            text = chunk.get("stream") or chunk.get("status") or ""
            if text:
                out.write(text if text.endswith("\n") else text + "\n")
                for line in text.strip().splitlines():
                    last_lines = (last_lines + [line])[-50:]
                    match = STEP.match(line)
                    if match:
                        log.info("%s", line)
                        if on_step:
                            on_step(int(match.group(1)), int(match.group(2)), match.group(3))
    if image_id is None:
        image_id = client.images.get(tag).id
    return image_id
