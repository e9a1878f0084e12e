"""What the package stage is given and what it returns (pydantic, so manifests serialise)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engineforge.recipe.schema import NAME_PATTERN
from engineforge.runtime_traits import RUNTIMES

# Where the servable model sits inside every image; serve_argv refers to it.
MODEL_DIR_IN_IMAGE = "/opt/engineforge/model"
# Reference checks follow the Docker grammar loosely but never let shell or Dockerfile syntax through.
IMAGE_REF_PATTERN = r"[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?"
REPOSITORY_PATTERN = r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
REGISTRY_PATTERN = r"[A-Za-z0-9.-]+(:[0-9]{1,5})?"
LABEL_KEY_PATTERN = r"[a-z0-9][a-z0-9._-]*"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageInputs(Frozen):
    """Everything that determines the image. The stage's content key already hashes these."""

    recipe_name: str = Field(..., pattern=NAME_PATTERN)
    runtime: Literal[RUNTIMES] = "transformers"  # type: ignore[valid-type]
    key: str = Field(..., pattern=r"^[0-9a-f]{8,128}$", description="Content key of the package stage (hex).")
    model_dir: Path = Field(..., description="Servable model directory; copied into its own, last layer.")
    serve_argv: list[str] = Field(..., min_length=1, description=f"Entrypoint; the model is at {MODEL_DIR_IN_IMAGE}.")
    port: int = Field(8000, ge=1, le=65535)
    base_image: str | None = Field(None, description="ref[@sha256:...] (the runtime's image_base); default: the engineforge base image.")
    image_repo: str | None = Field(None, description="Default engineforge/<recipe_name>.")
    registry: str | None = Field(None, description="host[:port] to push to; no push when unset.")
    python_requirements: list[str] = Field(default_factory=list, description="Installed from a host-built wheelhouse.")
    labels: dict[str, str] = Field(default_factory=dict)
    environment: dict[str, str] = Field(
        default_factory=dict, description="ENV of the image (the model server's: hub kernels and hub access)."
    )
    gpu: bool = Field(False, description="Smoke-test with GPU device requests (the runtime's image_gpu).")
    smoke_test: bool = True
    smoke_timeout_s: int = Field(600, ge=1, description="How long the container may take to answer /health.")
    smoke_prompt: str = "The capital of France is"
    require_daemon: bool = Field(False, description="Raise instead of returning status 'skipped' when no daemon answers.")

    @field_validator("base_image")
    @classmethod
    def _base_ref(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(IMAGE_REF_PATTERN, value, flags=re.IGNORECASE):
            raise ValueError(f"base image {value!r} is not an image reference like NAME[:TAG][@sha256:DIGEST]")
        return value

    @field_validator("image_repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(REPOSITORY_PATTERN, value):
            raise ValueError(f"image repository {value!r} must be lowercase path components like engineforge/tiny-llama")
        return value

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(REGISTRY_PATTERN, value):
            raise ValueError(f"registry {value!r} must be host[:port], e.g. 127.0.0.1:5000")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(LABEL_KEY_PATTERN, name):
                raise ValueError(f"label name {name!r} must be lowercase letters, digits and . _ -")
            if not text.isprintable():
                raise ValueError(f"label {name!r} must be one printable line")
        return value

    @field_validator("serve_argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if any(not arg.isprintable() for arg in value):
            raise ValueError("serve_argv entries must be printable single lines")
        return value

    @property
    def repository(self) -> str:
        return self.image_repo or f"engineforge/{self.recipe_name}"

    @property
    def image_tag(self) -> str:
        """`<repo>:<recipe>-<short key>`: the same inputs always name the same tag."""
        return f"{self.repository}:{self.recipe_name}-{self.key[:12]}"


class SmokeResult(Frozen):
    passed: bool
    details: str
    health_seconds: float | None = None
    completion: str | None = None
    logs: Path | None = Field(None, description="Container logs, kept for the MLflow run.")


class PackageResult(Frozen):
    status: Literal["built", "skipped"]
    reason: str | None = None
    dockerfile: Path
    context_dir: Path
    base_image: str
    image_tag: str
    image_id: str | None = None
    size_bytes: int | None = None
    build_log: Path | None = None
    reused: bool = Field(False, description="An image with the same stage key and context fingerprint existed; no build ran.")
    smoke: SmokeResult | None = None
    pushed_ref: str | None = Field(None, description="registry/repo@sha256:... as pushed")
    digest: str | None = None
