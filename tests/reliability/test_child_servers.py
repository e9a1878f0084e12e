"""A server the run starts dies with the run, whatever kills the run: a real parent process started
the way a stage starts its server (engineforge/processes/serving.py running_server), killed with SIGKILL while the
server and the process it spawned are up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from engineforge.processes.serving import free_port

# The "model server": spawns a grandchild (as MPI launchers and worker pools do), then serves HTTP.
SERVER = textwrap.dedent("""
    import http.server, subprocess, sys
    from pathlib import Path
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(sys.argv[2]).write_text(str(helper.pid))
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
""")

# The "run": starts the server as the validate stage does and reports the server's group leader pid.
RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from engineforge.processes.serving import running_server
    port, tmp = sys.argv[1], Path(sys.argv[2])
    argv = [sys.executable, "-c", (tmp / "server.py").read_text(), port, str(tmp / "helper.pid")]
    with running_server(argv, f"http://127.0.0.1:{port}", tmp / "server.log", 60, health_path="/"):
        (tmp / "ready").write_text("up")
        time.sleep(300)
""")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition, timeout_s: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not true after {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_sigkill_of_the_run_stops_its_server_and_what_the_server_spawned(tmp_path):
    (tmp_path / "server.py").write_text(SERVER)
    port = free_port()
    run = subprocess.Popen([sys.executable, "-c", RUN, str(port), str(tmp_path)], cwd=Path(__file__).parents[2])
    try:
        wait_for(lambda: (tmp_path / "ready").exists() or run.poll() is not None, 60)
        assert run.poll() is None, (tmp_path / "server.log").read_text()
        helper = int((tmp_path / "helper.pid").read_text())
        group = [p.pid for p in psutil.Process(run.pid).children(recursive=True)]
        assert helper in group and listening(port)
        run.send_signal(signal.SIGKILL)
        run.wait()
        detected = wait_for(lambda: not listening(port), 20)
        gone = wait_for(lambda: not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                                        for pid in group), 20)
        print(f"server closed {detected:.2f} s after the SIGKILL, whole group gone {detected + gone:.2f} s")
    finally:
        if run.poll() is None:
            run.kill()


def test_a_normal_stop_still_stops_the_group_and_reports_the_servers_exit(tmp_path):
    """The lifeline between run and server is invisible to callers: stopping works, exit codes pass through."""
    from engineforge.processes.serving import start_owned, stop_process_group

    with open(tmp_path / "log", "ab") as log:
        exits = start_owned([sys.executable, "-c", "import sys; sys.exit(3)"], log)
        assert exits.wait(timeout=30) == 3
        sleeper = start_owned([sys.executable, "-c", "import time; time.sleep(300)"], log)
        time.sleep(0.5)
        members = [p.pid for p in psutil.Process(sleeper.pid).children(recursive=True)]
        stop_process_group(sleeper, grace_s=10)
    assert sleeper.returncode == 128 + signal.SIGTERM
    assert not any(psutil.pid_exists(pid) for pid in members)
    assert os.getpgid(os.getpid()) != sleeper.pid
