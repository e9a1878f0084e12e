"""The model's `config.json`, and nothing else: the planner runs before any weights are downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engineforge.sources import hub
from engineforge.errors import UserError
from engineforge.model.shape import CONFIG_FILE, read_config


def load_model_config(recipe, base_dir: Path | None = None) -> dict[str, Any]:
    """config.json for `recipe.model.source`: fetched alone from the hub, read from a local directory
    (relative to `base_dir`, the recipe's directory), or built from the `synthetic:` spec."""
    from engineforge.sources.model_source import HubSource, SyntheticSource, parse_source

    source = parse_source(recipe.model, base_dir)
    origin = f"model.source {recipe.model.source}"
    if isinstance(source, HubSource):
        return read_config(_fetch_from_hub(source, origin), origin)
    if isinstance(source, SyntheticSource):
        from engineforge.sources.synthetic import config_fields

        # The fields the synthetic stage writes, without importing transformers (and torch) here.
        return config_fields(recipe.model.synthetic, recipe.model.dtype)
    from engineforge.checkpoint.hf_reader import check_model_dir

    return check_model_dir(source.path, origin)  # a local directory is untrusted: its files are checked too


def _fetch_from_hub(source, origin: str) -> Path:
    """The directory holding config.json fetched alone at the source's revision."""
    import httpx
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    hub.check_reachable()  # an unreachable hub is a network error, not a missing file
    try:
        return hub.download_file(source.repo, CONFIG_FILE, source.revision).parent
    except (HfHubHTTPError, EntryNotFoundError, httpx.HTTPError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise UserError(
            f"{origin}: cannot fetch {CONFIG_FILE} ({first_line}); check the name and revision, "
            "set HF_TOKEN for gated models, or point model.source at a local directory"
        ) from None
