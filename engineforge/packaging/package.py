"""The package stage's logic: context -> image -> smoke test -> secret scan -> push."""

from __future__ import annotations

import logging
from pathlib import Path

from engineforge.errors import StageFailed, UserError
from engineforge.packaging.audit import find_secrets, secrets_in_environment
from engineforge.packaging.base_image import (
    DEFAULT_BASE,
    ensure_base_image,
    image_python,
    missing_base_hint,
)
from engineforge.packaging.build import ProgressCallback, build_image
from engineforge.packaging.context import (
    check_model_dir,
    context_fingerprint,
    write_context,
)
from engineforge.packaging.daemon import connect, daemon_address
from engineforge.packaging.push import push_image
from engineforge.packaging.smoke import smoke_test
from engineforge.packaging.spec import PackageInputs, PackageResult
from engineforge.packaging.wheelhouse import ensure_wheelhouse

log = logging.getLogger(__name__)
MANIFEST = "package.json"
FINGERPRINT_LABEL = "ai.engineforge.context-fingerprint"
KEY_LABEL = "ai.engineforge.stage-key"


class PackagingFailed(StageFailed):
    """The image was built but must not ship (smoke test failed, secret found); `.result` says what exists."""

    def __init__(self, cause: str, result: PackageResult):
        super().__init__("package", cause)
        self.result = result

    def __reduce__(self):  # StageFailed's would call this __init__ with (stage, cause, user_error)
        return (type(self), (self.cause, self.result))


def package_model(inputs: PackageInputs, out_dir: Path, on_step: ProgressCallback | None = None) -> PackageResult:
    """Build, smoke-test and push the serving image; without a daemon, render the context and skip."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_model_dir(Path(inputs.model_dir))
    base = inputs.base_image or DEFAULT_BASE.tag
    context_dir = out_dir / "context"
    common = dict(context_dir=context_dir, base_image=base, image_tag=inputs.image_tag)

    client, reason = connect()
    if client is None:
        if inputs.require_daemon:
            raise UserError(f"{reason}: start dockerd or point DOCKER_HOST at a daemon to build {inputs.image_tag}")
        dockerfile = write_context(inputs, base, context_dir, wheelhouse=None)
        log.warning("package skipped: %s; Dockerfile and context (without the wheelhouse) in %s", reason, context_dir)
        return _record(out_dir, PackageResult(status="skipped", reason=reason, dockerfile=dockerfile, **common))

    require_base_image(client, base)
    wheelhouse = ensure_wheelhouse(inputs.python_requirements, image_python(base)) if inputs.python_requirements else None
    earlier = _earlier_labels(client, inputs)
    dockerfile = write_context(inputs, base, context_dir, wheelhouse, created=earlier.get("org.opencontainers.image.created"))
    fingerprint = context_fingerprint(context_dir)
    build_log = out_dir / "logs" / "build.log"
    reused = earlier.get(FINGERPRINT_LABEL) == fingerprint
    if reused:
        image_id = client.images.get(inputs.image_tag).id
        build_log.parent.mkdir(parents=True, exist_ok=True)
        build_log.write_text(f"reused {inputs.image_tag} ({image_id}): same stage key and context fingerprint {fingerprint}\n")
    else:
        image_id = build_image(client, context_dir, inputs.image_tag, build_log, on_step, labels={FINGERPRINT_LABEL: fingerprint})
    built = dict(dockerfile=dockerfile, image_id=image_id, build_log=build_log, reused=reused,
                 size_bytes=client.images.get(image_id).attrs["Size"], **common)

    smoke = None
    if inputs.smoke_test:
        smoke = smoke_test(client, image_id, inputs.port, inputs.gpu, inputs.smoke_timeout_s,
                           inputs.smoke_prompt, out_dir / "logs" / "container.log")
        if not smoke.passed:
            result = _record(out_dir, PackageResult(status="built", smoke=smoke, **built))
            raise PackagingFailed(f"smoke test of {inputs.image_tag} failed: {smoke.details}; container logs in {smoke.logs}; the image was not pushed", result)

    leaks = find_secrets(client, image_id, secrets_in_environment())
    if leaks:
        result = _record(out_dir, PackageResult(status="built", smoke=smoke, **built))
        raise PackagingFailed(f"image {inputs.image_tag} holds a secret from the environment ({leaks[0]}); remove it from the model directory or build inputs; the image was not pushed", result)

    result = _record(out_dir, PackageResult(status="built", smoke=smoke, **built))  # kept if the push fails
    if inputs.registry:
        repository, tag = inputs.image_tag.rsplit(":", 1)
        pushed_ref, digest = push_image(client, image_id, inputs.registry, repository, tag)
        result = _record(out_dir, result.model_copy(update={"pushed_ref": pushed_ref, "digest": digest}))
    return result


def require_base_image(client, base: str) -> None:
    """Make sure the daemon has `base`: build engineforge's own, pull others, or say how to get it."""
    import docker.errors

    try:
        client.images.get(base)
        return
    except docker.errors.ImageNotFound:
        pass
    if base == DEFAULT_BASE.tag:
        ensure_base_image(client)
        return
    try:
        client.images.pull(base)
    except docker.errors.APIError as error:
        detail = (error.explanation or str(error)).splitlines()[0][:160]
        raise UserError(f"base image {base} is not available to the daemon at {daemon_address()} and could not be pulled ({detail}): {missing_base_hint(base)}") from None


def _earlier_labels(client, inputs: PackageInputs) -> dict[str, str]:
    """Labels of the image already tagged for this stage key ({} if none): its created time is kept,
    so unchanged inputs give the identical image, and its fingerprint says whether to build at all."""
    import docker.errors

    try:
        labels = client.images.get(inputs.image_tag).attrs["Config"].get("Labels") or {}
    except docker.errors.ImageNotFound:
        return {}
    return labels if labels.get(KEY_LABEL) == inputs.key else {}


def _record(out_dir: Path, result: PackageResult) -> PackageResult:
    (out_dir / MANIFEST).write_text(result.model_dump_json(indent=2) + "\n")
    return result
