"""`python -m engineforge.packaging base-image`: build (once) engineforge's offline base image.

Needs root, debootstrap and a Debian mirror (ENGINEFORGE_DEBIAN_MIRROR, default deb.debian.org);
prints the image tag. Exit 2 on a user error (no daemon, no debootstrap, not root).
"""

from __future__ import annotations

import logging
import sys

from engineforge.errors import UserError


def main(argv: list[str]) -> int:
    from engineforge.packaging.base_image import ensure_base_image
    from engineforge.packaging.daemon import connect

    if argv != ["base-image"]:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    client, reason = connect()
    try:
        if client is None:
            raise UserError(f"{reason}: start dockerd or set DOCKER_HOST")
        print(ensure_base_image(client))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
