"""Shared by the TensorRT-LLM tests: the test doubles on PATH with the test-only availability switch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from engineforge.versions import TRTLLM_TEST_SWITCH as TEST_SWITCH

DOUBLES = Path(__file__).resolve().parent / "doubles"
DOUBLE_VERSION = "1.2.1"  # the TensorRT-LLM version the doubles stand for unless a test names another


def use_doubles(monkeypatch, version: str = DOUBLE_VERSION) -> None:
    """Put tests/doubles (and this venv's python3 and transformers, which they run) first on PATH and
    turn on the test-only find_spec switch at `version`: the worker reports that TensorRT-LLM version and
    the doubles follow it (trtllm-serve checks option files against engineforge/trtllm/definitions/<version>.json).
    Without both, the runtimes report TensorRT-LLM missing."""
    path = os.pathsep.join([str(DOUBLES), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv(TEST_SWITCH, version)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def without_trtllm(monkeypatch) -> None:
    """A worker without TensorRT-LLM: no switch, no doubles on PATH."""
    monkeypatch.delenv(TEST_SWITCH, raising=False)
    kept = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p).resolve() != DOUBLES]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))
