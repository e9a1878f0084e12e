"""`engineforge server stop` and `tracking stop` facing a `server.json` an older engineforge wrote (URL
and pid only, no start time or command line): its pid may since belong to an unrelated process, so
while that pid lives nothing is signalled and the command says, in one line naming the file, how to
stop the server by hand; a dead pid's record is simply removed. Real processes and real /proc."""

from __future__ import annotations

import json
import sys
import time

import psutil
import pytest

from engineforge.processes import local_service
from engineforge.cli.app import main

COMMANDS = [("tracking", "ENGINEFORGE_TRACKING_HOME", "tracking server"), ("server", "ENGINEFORGE_PREFECT_HOME", "Prefect server")]


@pytest.fixture
def unrelated():
    """A process engineforge did not start, in its own process group (as a server would be)."""
    process = psutil.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize("command, variable, name", COMMANDS)
def test_an_old_record_naming_a_live_unrelated_pid_is_refused_in_one_line_and_nothing_is_signalled(
        command, variable, name, unrelated, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(variable, str(tmp_path))
    state = tmp_path / local_service.STATE_FILE
    state.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": unrelated.pid}))  # the old format
    assert main([command, "stop"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    assert err.startswith(f"error: {state} was written by an older engineforge (pid {unrelated.pid}, ")
    assert f"kill -TERM -{unrelated.pid}" in err and err.rstrip().endswith(f"then delete {state}")
    time.sleep(0.2)
    assert unrelated.poll() is None and unrelated.status() != psutil.STATUS_ZOMBIE  # never signalled
    assert json.loads(state.read_text())["pid"] == unrelated.pid  # kept: the operator decides


@pytest.mark.parametrize("command, variable, name", COMMANDS)
def test_a_start_that_would_replace_an_old_record_of_a_live_pid_refuses_too_and_starts_nothing(
        command, variable, name, unrelated, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(variable, str(tmp_path))
    state = tmp_path / local_service.STATE_FILE
    state.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": unrelated.pid}))
    assert main([command, "start"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {state} was written by an older engineforge") and err.count("\n") == 1, err
    assert not (tmp_path / local_service.LOG_FILE).exists()  # no server was started
    assert unrelated.poll() is None


@pytest.mark.parametrize("command, variable, name", COMMANDS)
def test_an_old_record_of_a_dead_pid_is_removed(command, variable, name, tmp_path, monkeypatch, capsys):
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    monkeypatch.setenv(variable, str(tmp_path))
    state = tmp_path / local_service.STATE_FILE
    state.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": gone.pid}))
    assert main([command, "stop"]) == 0
    assert capsys.readouterr().out == f"no local {name} was running\n"
    assert not state.exists()
