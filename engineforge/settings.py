"""Every `ENGINEFORGE_*` environment variable, declared once with its type, default and meaning.

Read through `settings()`, which reads the environment afresh at each call (a worker sets some for
the flow runs it starts; tests change them), the way Prefect declares its own `PREFECT_*` settings
(pydantic-settings). README's table of variables is `markdown_table()` (tests/test_settings.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "ENGINEFORGE_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, case_sensitive=True, frozen=True)

    STORE: Path = Field(Path(".engineforge/store"), description="The content-addressed store of stage outputs "
                        "(`--store` overrides it); shared storage lets workers reuse each other's results.")
    PREFECT_HOME: Path = Field(Path(".engineforge/prefect"), description="The state directory of the local Prefect "
                               "server `engineforge run` starts when `PREFECT_API_URL` is unset.")
    TRACKING_HOME: Path = Field(Path(".engineforge/tracking"), description="The state directory of "
                                "`engineforge tracking server` (a local `mlflow server`).")
    CACHE: Path = Field(Path("~/.cache/engineforge"), description="Downloaded wheels for serving images.")
    DEBIAN_MIRROR: str = Field("http://deb.debian.org/debian", description="The Debian mirror the base image is "
                               "bootstrapped from.")
    REGISTRY_USER: str | None = Field(None, description="User for pushing serving images (else the Prefect "
                                      "Secret block `engineforge-registry-user`).")
    REGISTRY_PASSWORD: SecretStr | None = Field(None, description="Password for pushing serving images (else the "
                                                "Prefect Secret block `engineforge-registry-password`).")
    MODEL_ROOTS: str | None = Field(None, description="Directories (`os.pathsep`-separated) local model and data "
                                    "paths of recipes must lie under; unset: no limit, empty: none allowed.")
    GPU_LIMIT: str = Field("", description="The Prefect global concurrency limit counting this host's GPUs "
                           "(empty: `gpu-<short hostname>`); `engineforge worker --limit-name` sets it.")
    GPU_STAGES: str = Field("", description="Comma-separated stages that take GPU slots even on a CPU "
                            "(rehearsing GPU scheduling, e.g. `validate`).")
    GPU_LOCK_DIR: str = Field("", description="Where the per-GPU lock files live (empty: "
                              "`<temporary directory>/engineforge-gpu-locks`).")
    CHECKOUT: str = Field("", description="The clone flow runs execute in (prefect.yaml's pull step); "
                          "`engineforge worker` sets it.")
    IMAGE: str = Field("", description="The worker image of Docker and Kubernetes work pools (prefect.yaml).")
    TEST_TRTLLM_VERSION: str = Field("", description="Tests only: pretend TensorRT-LLM of this version is "
                                     "installed (the runtimes' command lines run against tests/doubles/).")
    SOAK: bool = Field(False, description="Tests only: run the opt-in soak test (tests/reliability/test_soak.py).")


def settings() -> Settings:
    """The settings as the environment says now."""
    return Settings()


def variable(field: str) -> str:
    """The environment variable of a setting, for messages that say how to change it."""
    assert field in Settings.model_fields, field
    return PREFIX + field


def markdown_table() -> str:
    """README's table of variables."""
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        kind = str(field.annotation).replace("pydantic.types.", "").replace("pathlib.", "").replace(" | None", "")
        kind = kind.removeprefix("<class '").removesuffix("'>")
        default = "unset" if field.default is None else f"`{field.default}`" if field.default != "" else "empty"
        rows.append(f"| `{PREFIX}{name}` | {kind} | {default} | {field.description} |")
    return "\n".join(rows)


class HubSettings(BaseSettings):
    """huggingface_hub's own variables, read at each call: huggingface_hub reads them once, at its import
    (huggingface_hub/constants.py, 2.4.0), and a worker or a test may set them later."""

    model_config = SettingsConfigDict(env_prefix="HF_", case_sensitive=True, frozen=True)

    ENDPOINT: str | None = Field(None, description="A mirror of the Hugging Face hub (unset: the public hub).")
    TOKEN: SecretStr | None = Field(None, description="The token for gated and private repositories.")


def hub_settings() -> HubSettings:
    return HubSettings()
