"""Who owns a record or a temporary directory, so that a later process can tell a live owner from a
dead one: host, boot id, pid and the process's start time (a reused pid has another start time,
a reboot another boot id). Only owners on this host can be judged; others are left alone.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from functools import lru_cache

import psutil


@lru_cache(maxsize=1)
def boot_id() -> str:
    """The kernel's boot, then `-` and this process's pid namespace: a container on the host network
    has the host's name and boot but its own pids, which no process outside it can judge."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            kernel = handle.read().strip().replace("-", "")[:16]
    except OSError:  # not Linux: the boot time stands in for it
        kernel = str(int(psutil.boot_time()))
    try:
        return f"{kernel}-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return kernel


def host() -> str:
    # Dots separate a token's fields, so they are not allowed in the host part.
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname().split(".")[0]) or "localhost"


def _started(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return -1  # alive, owned by someone else


@dataclass(frozen=True)
class Owner:
    host: str
    boot_id: str
    pid: int
    started: int  # the process's start time, whole seconds since the epoch

    @classmethod
    def current(cls) -> Owner:
        return cls(host(), boot_id(), os.getpid(), _started(os.getpid()) or 0)

    def token(self) -> str:
        return f"{self.host}.{self.boot_id}.{self.pid}.{self.started}"

    @classmethod
    def parse(cls, token: str) -> Owner | None:
        parts = token.split(".")
        if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), int(parts[3]))

    def is_dead(self) -> bool:
        """True only when certain: same host and another boot, or no such process, or a reused pid."""
        if self.host != host():
            return False
        kernel, _, pids = self.boot_id.partition("-")
        my_kernel, _, my_pids = boot_id().partition("-")
        if kernel != my_kernel:
            return True
        if pids != my_pids:  # another container's pids (or the host's, seen from one)
            return False
        started = _started(self.pid)
        if started is None:
            return True
        return started != -1 and abs(started - self.started) > 1


def started_process(pid: int, settle_s: float = 2.0) -> dict:
    """What a server's state file records of a process engineforge started, so that a later `stop`
    can prove the pid is still that process: its start time (exact, in the kernel's ticks) and its
    command line. Assumes `pid` is alive (just started).

    Popen returns as the exec closes its pipe, before the kernel has set up the new program's arguments:
    for that moment /proc shows an empty command line (a whole-suite run recorded one, and its server then
    read as not ours). Wait for the real one, up to `settle_s`."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + settle_s
    cmdline = process.cmdline()
    while not cmdline and time.monotonic() < deadline:
        time.sleep(0.01)
        cmdline = process.cmdline()
    return {"pid": pid, "create_time": process.create_time(), "cmdline": cmdline}


def is_started_process(record: dict) -> bool:
    """Whether `record` (`started_process`) still names the same live process: a pid reused by an
    unrelated process has another start time or command line, and must never be signalled."""
    try:
        process = psutil.Process(int(record["pid"]))
        return process.create_time() == record["create_time"] and process.cmdline() == record["cmdline"]
    except (KeyError, TypeError, ValueError, psutil.Error):
        return False
