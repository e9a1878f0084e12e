"""A server's state file records the process it started (pid, start time, command line); `stop` may
signal the pid only while it is still that process. Real processes: a pid that now belongs to an
unrelated process (here: another live process put in the record) is refused."""

import subprocess
import sys

import psutil

from engineforge.processes.owner import is_started_process, started_process


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_the_recorded_process_is_recognised_and_an_unrelated_one_is_not():
    ours, unrelated = _sleeper(), subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        record = started_process(ours.pid)
        assert is_started_process(record)
        assert not is_started_process({**record, "pid": unrelated.pid})  # the pid reused by something else
        assert not is_started_process({**record, "create_time": record["create_time"] - 1})  # same pid, restarted
        assert not is_started_process({"pid": ours.pid})  # an old state file without the proof
        ours.kill()
        ours.wait()
        assert not is_started_process(record)  # gone
    finally:
        for process in (ours, unrelated):
            process.kill()
            process.wait()


def test_the_record_waits_out_an_exec_that_shows_no_command_line_yet(monkeypatch):
    """The kernel's moment between the exec's pipe closing and the new program's arguments cannot be made
    to happen on demand: psutil's reading is faked to show it (an empty command line, twice)."""
    ours = _sleeper()
    try:
        real, reads = psutil.Process.cmdline, []

        def cmdline(self):
            reads.append(self.pid)
            return [] if len(reads) <= 2 else real(self)

        monkeypatch.setattr(psutil.Process, "cmdline", cmdline)
        record = started_process(ours.pid)
        assert len(reads) == 3 and record["cmdline"] == real(psutil.Process(ours.pid)) != []
        monkeypatch.undo()
        assert is_started_process(record)
    finally:
        ours.kill()
        ours.wait()
