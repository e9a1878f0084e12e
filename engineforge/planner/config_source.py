"""The model's `config.json`, and nothing else: the planner runs before any weights are downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engineforge.errors import UserError


def load_model_config(recipe, base_dir: Path | None = None) -> dict[str, Any]:
    """config.json for `recipe.model.source`: fetched alone from the hub, read from a local directory
    (relative to `base_dir`, the recipe's directory), or built from the `synthetic:` spec."""
    source = recipe.model.source
    if source.startswith("hf://"):
        repo, _, revision = source[len("hf://"):].partition("@")
        return _from_hub(source, repo, revision or None)
    if source.startswith("synthetic:"):
        return _from_synthetic(recipe)
    from engineforge.sources import parse_source

    return _read_json(parse_source(recipe.model, base_dir).path / "config.json", source)


def _from_hub(source: str, repo: str, revision: str | None) -> dict[str, Any]:
    import httpx
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    try:
        path = hf_hub_download(repo, "config.json", revision=revision)
    except (HfHubHTTPError, EntryNotFoundError, httpx.HTTPError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise UserError(
            f"model.source {source}: cannot fetch config.json ({first_line}); check the name and revision, "
            "set HF_TOKEN for gated models, or point model.source at a local directory"
        ) from None
    return _read_json(Path(path), source)


def _from_synthetic(recipe) -> dict[str, Any]:
    from engineforge.synthetic import config_fields

    # The fields the synthetic stage writes, without importing transformers (and torch) here.
    return config_fields(recipe.model.synthetic, recipe.model.dtype)


def _read_json(path: Path, source: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"model.source {source}: no config.json at {path}; point it at a Hugging Face model directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"model.source {source}: cannot read {path} ({error.__class__.__name__}: {error})") from None
    if not isinstance(data, dict):
        raise UserError(f"model.source {source}: {path} is not a JSON object")
    return data
