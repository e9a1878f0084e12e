"""The shared machinery of the background servers, on real processes: a start records the process's
identity, `stop` signals only that process (never a pid reused by another one), an interrupted or
failed start leaves nothing behind, and nothing started holds the caller's secrets (/proc)."""

import json
import sys
import time

import psutil
import pytest

from engineforge.processes import local_service
from engineforge.errors import UserError
from engineforge.processes.serving import LOOPBACK, free_port

SECRETS = {"HF_TOKEN": "hf_secret", "REGISTRY_PASSWORD": "hunter2"}


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", LOOPBACK, str(port)]


def start(directory, port, timeout_s=30.0):
    url = f"http://{LOOPBACK}:{port}"
    return local_service.start(directory, http_server(port), url, f"{url}/", timeout_s, "the test server did not start")


def test_a_started_server_has_no_secrets_and_stops_by_its_record(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    record = start(tmp_path, free_port())
    process = psutil.Process(record["pid"])
    assert not set(SECRETS) & set(process.environ())
    assert local_service.running_record(tmp_path, lambda url: True) == record
    assert local_service.holds_secrets(record) is False
    assert local_service.stop(tmp_path) is True
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    assert local_service.read_record(tmp_path) is None
    assert local_service.stop(tmp_path) is False


def test_stop_never_signals_a_pid_that_now_names_another_process(tmp_path):
    # An unrelated process under the recorded pid: same pid, another start time and command line.
    unrelated = psutil.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        stale = {"url": "http://127.0.0.1:1", "pid": unrelated.pid, "create_time": unrelated.create_time() - 5,
                 "cmdline": ["mlflow", "server"]}
        (tmp_path / local_service.STATE_FILE).write_text(json.dumps(stale))
        assert local_service.running_record(tmp_path, lambda url: True) is None
        assert local_service.stop(tmp_path) is False
        time.sleep(0.2)
        assert unrelated.poll() is None  # still alive: not signalled
        assert local_service.read_record(tmp_path) is None  # the stale record is gone
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_server_that_never_answers_is_killed_with_its_record_and_one_line(tmp_path):
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    with pytest.raises(UserError, match="did not start .*server.log"):
        local_service.start(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], url, f"{url}/", 1.0,
                            "the test server did not start")
    assert local_service.read_record(tmp_path) is None
    assert not [p for p in psutil.Process().children(recursive=True) if "time.sleep(60)" in " ".join(p.cmdline())]


def test_an_interrupted_start_leaves_no_server_behind(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(local_service, "wait_healthy", interrupted)  # Ctrl+C while the server starts
    with pytest.raises(KeyboardInterrupt):
        start(tmp_path, free_port())
    assert local_service.read_record(tmp_path) is None
    assert not [p for p in psutil.Process().children(recursive=True) if "http.server" in " ".join(p.cmdline())]
