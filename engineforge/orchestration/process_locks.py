"""Locks on content keys that die with the process holding them (a Prefect `LockManager`).

Prefect's SERIALIZABLE transactions lock a cache key while one task run computes it, so that a
second worker wanting the same key waits and then reuses the result instead of computing it
again. Prefect's own FileSystemLockManager writes lock files with no expiry: a worker killed
mid-build would leave its key locked forever. These locks are `filelock` locks (flock) on files in
the store, which the kernel releases when the holder's process ends, however it ends.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from filelock import FileLock, Timeout


class ProcessLockManager:
    """Implements prefect.locking.protocol.LockManager with one flock per key."""

    def __init__(self, directory: Path, poll_s: float = 0.2):
        self.directory = Path(directory)
        self.poll_s = poll_s
        self._held: dict[str, tuple[str, FileLock]] = {}
        self._guard = threading.Lock()

    def _path(self, key: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f"{key.replace(os.sep, '_')}.lock"

    def _try(self, key: str) -> FileLock | None:
        # A new lock object each time: filelock's are re-entrant, these must exclude this process too.
        lock = FileLock(self._path(key), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        if self.is_lock_holder(key, holder):
            return True
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while (lock := self._try(key)) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_s)
        with self._guard:
            self._held[key] = (holder, lock)
        return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.acquire_lock, key, holder, acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        with self._guard:
            held = self._held.get(key)
            if held is None or held[0] != holder:
                raise ValueError(f"no lock held by {holder} for key {key}")
            del self._held[key]
        held[1].release()

    def is_locked(self, key: str) -> bool:
        if key in self._held:
            return True
        lock = self._try(key)
        if lock is None:
            return True
        lock.release()
        return False

    def is_lock_holder(self, key: str, holder: str) -> bool:
        held = self._held.get(key)
        return held is not None and held[0] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_s)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.wait_for_lock, key, timeout)
