"""Stable text for the files the TensorRT-LLM runtimes write (the same text in runs and dry runs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from engineforge.errors import UserError

# Paths that reach a TensorRT-LLM command line: absolute or relative, no shell or option syntax.
PATH_PATTERN = re.compile(r"[A-Za-z0-9_./@+<>{}:-]+")


def yaml_text(data: dict[str, Any]) -> str:
    """Block-style YAML in the order given (readers compare files, so the order is part of it)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def checked_path(path: Path | str, what: str) -> str:
    """A path as a command-line word, refused if it could be read as an option or holds odd characters."""
    text = str(path)
    if not PATH_PATTERN.fullmatch(text) or text.startswith("-"):
        raise UserError(f"{what} {text!r}: a path for a TensorRT-LLM command may hold only letters, digits and "
                        "_ . / @ + - (move the store or model to such a path)")
    return text
