"""Render the serving image's Dockerfile from engineforge/templates/Dockerfile.j2."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from engineforge import __version__
from engineforge.packaging.base_image import trtllm_version_of
from engineforge.packaging.spec import MODEL_DIR_IN_IMAGE, PackageInputs

VENV_DIR = "/opt/engineforge/venv"
USER = "engineforge"
UID = 10001
SOURCE_URL = "https://github.com/engineforge/engineforge"


def dockerfile_quote(value: str) -> str:
    """A double-quoted Dockerfile word: no variable expansion, no line break."""
    if not value.isprintable():
        raise ValueError(f"label value {value!r} must be one printable line")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def created_timestamp() -> str:
    """RFC 3339; SOURCE_DATE_EPOCH (the reproducible-builds convention) pins it."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def image_labels(inputs: PackageInputs, base_image: str, created: str | None = None) -> dict[str, str]:
    """OCI and engineforge labels; the caller's labels win over these defaults.

    `created` is kept from an earlier image of the same stage key, so unchanged inputs rebuild
    the identical image (same id) instead of a copy that differs only in its timestamp.
    """
    labels = {
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.revision": "unknown",
        "org.opencontainers.image.title": inputs.recipe_name,
        "org.opencontainers.image.base.name": base_image,
        "ai.engineforge.recipe": inputs.recipe_name,
        "ai.engineforge.runtime": inputs.runtime,
        "ai.engineforge.stage-key": inputs.key,
        "ai.engineforge.version": __version__,
    }
    trtllm = trtllm_version_of(base_image)
    if trtllm:
        labels["ai.engineforge.tensorrt-llm-version"] = trtllm
    labels.update(inputs.labels)
    labels.setdefault("org.opencontainers.image.created", created or created_timestamp())
    return dict(sorted(labels.items()))


def render_dockerfile(inputs: PackageInputs, base_image: str, created: str | None = None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("engineforge", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["dockerfile_quote"] = dockerfile_quote
    env.filters["exec_form"] = json.dumps
    return env.get_template("Dockerfile.j2").render(
        engineforge_version=__version__,
        recipe=inputs.recipe_name,
        runtime=inputs.runtime,
        base=base_image,
        requirements=bool(inputs.python_requirements),
        venv=VENV_DIR,
        user=USER,
        uid=UID,
        model_dir=MODEL_DIR_IN_IMAGE,
        port=inputs.port,
        start_period_s=inputs.smoke_timeout_s,
        labels=image_labels(inputs, base_image, created),
        environment=" ".join(f"{name}={dockerfile_quote(value)}" for name, value in sorted(inputs.environment.items())),
        entrypoint=list(inputs.serve_argv),
    )
