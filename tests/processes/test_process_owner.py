"""engineforge/processes/owner.py: an owner is judged only by a process that shares its pid namespace
(a container on the host network has the host's name and boot, and its own pids)."""

from __future__ import annotations

import os
import subprocess
import sys

from engineforge.processes.owner import Owner, boot_id


def test_the_boot_id_names_the_kernel_boot_and_this_pid_namespace():
    kernel, _, pids = boot_id().partition("-")
    assert len(kernel) == 16 and pids == str(os.stat("/proc/self/ns/pid").st_ino)


def test_an_owner_in_another_pid_namespace_is_never_judged_dead_one_of_another_boot_always_is():
    me = Owner.current()
    kernel = me.boot_id.partition("-")[0]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    pid = int(gone.stdout)  # exited: no process has this pid (or a reused one started later)
    assert Owner(me.host, me.boot_id, pid, me.started).is_dead()
    assert not Owner(me.host, f"{kernel}-1", pid, me.started).is_dead()  # its pids are not ours to look up
    assert Owner(me.host, f"{'0' * 16}-{me.boot_id.partition('-')[2]}", me.pid, me.started).is_dead()
    assert not Owner(me.host, me.boot_id, me.pid, me.started).is_dead()
