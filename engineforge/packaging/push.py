"""Push to a registry with credentials from the environment (or a Prefect Secret); return the digest."""

from __future__ import annotations

import logging
import os

from engineforge.errors import StageFailed, UserError
from engineforge.settings import settings, variable

log = logging.getLogger(__name__)

USER_ENV, PASSWORD_ENV = variable("REGISTRY_USER"), variable("REGISTRY_PASSWORD")
# Prefect Secret blocks consulted when the environment has no credentials and a Prefect API is configured.
USER_SECRET = "engineforge-registry-user"
PASSWORD_SECRET = "engineforge-registry-password"
FIX = f"set {USER_ENV} and {PASSWORD_ENV} (or the Prefect Secret blocks {USER_SECRET} / {PASSWORD_SECRET})"


def registry_credentials() -> dict[str, str] | None:
    """{'username', 'password'} or None for an anonymous push. Never logged."""
    configured = settings()
    user = configured.REGISTRY_USER
    password = configured.REGISTRY_PASSWORD.get_secret_value() if configured.REGISTRY_PASSWORD else None
    if not (user and password) and os.environ.get("PREFECT_API_URL"):
        user, password = _prefect_secret(USER_SECRET), _prefect_secret(PASSWORD_SECRET)
    return {"username": user, "password": password} if user and password else None


def _prefect_secret(name: str) -> str | None:
    try:
        from prefect.blocks.system import Secret

        return Secret.load(name).get()
    except (ImportError, ValueError):
        return None


def classify_push_error(registry: str, message: str) -> Exception:
    lower = message.lower()
    if "no basic auth credentials" in lower:
        return UserError(f"registry {registry} asks for credentials and none were given: {FIX}")
    if any(s in lower for s in ("unauthorized", "authentication required", "denied", "401", "403")):
        return UserError(f"registry {registry} refused the credentials ({message.strip()[:160]}): {FIX}")
    if any(s in lower for s in ("connection refused", "no such host", "i/o timeout", "dial tcp")):
        return UserError(f"registry {registry} is not reachable ({message.strip()[:160]}): start it or fix package.registry")
    if "http response to https client" in lower:
        return UserError(f"registry {registry} speaks plain HTTP: add it to the daemon's insecure-registries or give it TLS")
    return StageFailed("package", f"push to {registry} failed: {message.strip()[:300]}")


def push_image(client, image: str, registry: str, repository: str, tag: str) -> tuple[str, str]:
    """Tag `image` as registry/repository:tag, push it, return (registry/repository@digest, digest)."""
    target = f"{registry}/{repository}"
    import docker.errors

    client.api.tag(image, target, tag)
    digest = None
    try:
        for chunk in client.api.push(target, tag=tag, stream=True, decode=True, auth_config=registry_credentials()):
            if "error" in chunk:
                raise classify_push_error(registry, (chunk.get("errorDetail") or {}).get("message") or chunk["error"])
            digest = (chunk.get("aux") or {}).get("Digest") or digest
    except docker.errors.APIError as error:
        raise classify_push_error(registry, error.explanation or str(error)) from None
    if not digest:
        raise StageFailed("package", f"push of {target}:{tag} reported no digest")
    log.info("pushed %s:%s as %s", target, tag, digest)
    return f"{target}@{digest}", digest
