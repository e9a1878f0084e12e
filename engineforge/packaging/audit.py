"""Checks on a built image: who it runs as, its labels, and that no secret is in it.

`find_secrets` streams `docker save` output (config, history, every layer's files and names)
and reports where any of the given secret values occurs.
"""

from __future__ import annotations

import os
import tarfile

from engineforge.settings import hub_settings, settings

# Other tools' secrets, read from their own variables; engineforge's own (the registry password, the hub
# token) come from where engineforge reads them, its settings.
OTHER_SECRET_ENV = (
    "HUGGING_FACE_HUB_TOKEN", "NGC_API_KEY", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
)
MIN_SECRET_LEN = 8
CHUNK = 1 << 20


def secrets_in_environment() -> list[str]:
    """The secret values this process holds, which must never reach an image."""
    own = [secret.get_secret_value() for secret in (settings().REGISTRY_PASSWORD, hub_settings().TOKEN) if secret]
    return [value for value in own + [os.environ.get(name, "") for name in OTHER_SECRET_ENV] if len(value) >= MIN_SECRET_LEN]


def image_user(client, image: str) -> str:
    return client.images.get(image).attrs["Config"].get("User") or "root"


def image_labels(client, image: str) -> dict[str, str]:
    return client.images.get(image).attrs["Config"].get("Labels") or {}


class _StreamReader:
    """A file-like view of the generator `Image.save()` returns."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _scan_stream(stream, needles: list[bytes], where: str, found: list[str]) -> None:
    overlap = max(len(n) for n in needles) - 1
    tail = b""
    while chunk := stream.read(CHUNK):
        window = tail + chunk
        for needle in needles:
            if needle in window:
                found.append(where)
                return
        tail = window[-overlap:] if overlap else b""


def find_secrets(client, image: str, secrets: list[str]) -> list[str]:
    """Places (history, config, layer file) in `image` that contain any of `secrets`."""
    needles = [s.encode() for s in secrets if s]
    if not needles:
        return []
    found: list[str] = []
    for entry in client.api.history(image):
        if any(n.decode() in (entry.get("CreatedBy") or "") + (entry.get("Comment") or "") for n in needles):
            found.append(f"history: {entry.get('CreatedBy', '')[:80]}")
    saved = tarfile.open(fileobj=_StreamReader(client.images.get(image).save(chunk_size=CHUNK)), mode="r|")
    for member in saved:
        if not member.isfile():
            continue
        handle = saved.extractfile(member)
        if member.name.endswith(".tar"):
            _scan_layer(tarfile.open(fileobj=handle, mode="r|"), member.name, needles, found)
        else:
            _scan_stream(handle, needles, f"image file {member.name}", found)
    return found


def _scan_layer(layer: tarfile.TarFile, layer_name: str, needles: list[bytes], found: list[str]) -> None:
    for entry in layer:
        where = f"layer {layer_name}: /{entry.name}"
        if any(n in entry.name.encode() or n in (entry.linkname or "").encode() for n in needles):
            found.append(where)
        if entry.isfile():
            _scan_stream(layer.extractfile(entry), needles, where, found)
