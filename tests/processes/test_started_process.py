"""A server's state file records the process it started (pid, start time, command line); `stop` may
signal the pid only while it is still that process. Real processes: a pid that now belongs to an
unrelated process (here: another live process put in the record) is refused."""

import subprocess
import sys

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
