"""`python -m engineforge.packaging base-image|worker-image`: build (once) engineforge's own images.

base-image: the offline Debian base (needs root, debootstrap and a Debian mirror:
ENGINEFORGE_DEBIAN_MIRROR, default deb.debian.org). worker-image: the CPU worker image of Docker
work pools, over that base (docker/worker-cpu.Dockerfile). Prints the image tag; exit 2 on a user
error (no daemon, no debootstrap, not root).
"""

from __future__ import annotations

import logging
import sys

from engineforge.errors import UserError


def main(argv: list[str]) -> int:
    from engineforge.packaging.base_image import ensure_base_image
    from engineforge.packaging.daemon import connect
    from engineforge.packaging.worker_image import ensure_worker_image

    builders = {"base-image": ensure_base_image, "worker-image": ensure_worker_image}
    if len(argv) != 1 or argv[0] not in builders:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    client, reason = connect()
    try:
        if client is None:
            raise UserError(f"{reason}: start dockerd or set DOCKER_HOST")
        print(builders[argv[0]](client))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
