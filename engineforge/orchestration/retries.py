"""Which failures a retry can fix. A full disk, a read-only or forbidden path, an HTTP 4xx (a missing
repository, a bad token) or bad input fail the same way on every attempt: retrying them only delays
the error by the retry delays. Timeouts, 5xx, 408/429 and dropped connections can pass.
"""

from __future__ import annotations

import errno

from engineforge.errors import EngineForgeError

PERMANENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG})
PASSING_HTTP = frozenset({408, 425, 429})
# What a busy server answers to a request that can be sent again later (`engineforge submit` waits
# these out); narrower than can_pass: a 500 from the API is a fault to report, not to wait out.
BUSY_SERVER_HTTP = frozenset({408, 429, 502, 503, 504})


def can_pass(error: BaseException) -> bool:
    """False when `error`, or an error it was raised from, cannot go away by itself."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, EngineForgeError) and not current.retryable:
            return False
        if isinstance(current, OSError) and current.errno in PERMANENT_ERRNOS:
            return False
        status = _http_status(current)
        if status is not None and 400 <= status < 500 and status not in PASSING_HTTP:
            return False
        current = current.__cause__ or current.__context__
    return True


def _http_status(error: BaseException) -> int | None:
    # httpx.HTTPStatusError and requests.HTTPError (huggingface_hub's errors) both carry `.response`.
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None
