"""MANIFEST.json: what a logged directory holds, so a download is checked before anything reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engineforge.artifacts.store import sha256_file
from engineforge.versions import package_version

MANIFEST = "MANIFEST.json"
FORMAT = 1
TOOLS = ("engineforge", "mlflow", "prefect", "torch", "transformers", "tensorrt_llm")


def describe(directory: Path, stage: str, key: str) -> dict[str, Any]:
    """Every file under `directory` (size, sha256), the stage key and the tool versions of this host."""
    files = {}
    for path in _files(directory):
        files[path.relative_to(directory).as_posix()] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return {"format": FORMAT, "stage": stage, "key": key, "files": files,
            "tool_versions": {name: package_version(name) for name in TOOLS}}


def write(manifest: dict[str, Any], directory: Path) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def problems(directory: Path, key: str | None = None) -> list[str]:
    """What differs between `directory` and its MANIFEST.json (empty: every byte as logged)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"{MANIFEST} unreadable ({type(error).__name__})"]
    found = [] if key is None or manifest.get("key") == key else [f"{MANIFEST} is for key {manifest.get('key')}"]
    present = {path.relative_to(directory).as_posix(): path for path in _files(directory)}
    for name, record in files.items():
        path = present.pop(name, None)
        if path is None:
            found.append(f"{name}: missing")
        elif path.stat().st_size != record["size"]:
            found.append(f"{name}: {path.stat().st_size} bytes, {MANIFEST} says {record['size']}")
        elif sha256_file(path) != record["sha256"]:
            found.append(f"{name}: sha256 differs from {MANIFEST}")
    found += [f"{name}: not in {MANIFEST}" for name in sorted(present)]
    return found


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p != directory / MANIFEST)
