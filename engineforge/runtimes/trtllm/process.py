"""Running one TensorRT-LLM command to completion with its output in a log file."""

from __future__ import annotations

import time
from pathlib import Path

from engineforge.errors import StageFailed
from engineforge.processes.serving import log_tail, start_owned, stop_process_group


def run_logged(argv: list[str], log_path: Path, timeout_s: float, stage: str, limit_name: str) -> None:
    """Run `argv` (its own process group) with stdout+stderr in `log_path`; StageFailed on a non-zero
    exit or past `timeout_s`, naming the command's last log lines."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = start_owned(argv, log)  # its own process group, which dies with this process
        deadline = time.monotonic() + timeout_s
        try:
            while process.poll() is None:
                if time.monotonic() > deadline:
                    raise StageFailed(stage, f"{argv[0]} ran past {limit_name}={timeout_s:.0f}; log: {log_path}")
                time.sleep(0.2)
        finally:
            stop_process_group(process)
    if process.returncode != 0:
        raise StageFailed(stage, f"{argv[0]} exited with code {process.returncode}: {log_tail(log_path)}; log: {log_path}")
