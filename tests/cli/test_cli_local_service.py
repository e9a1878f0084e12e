"""`engineforge server` and `engineforge tracking` share one start/stop/status shape."""

from __future__ import annotations

import pytest

from engineforge.cli.app import main


@pytest.mark.parametrize("command, name", [("tracking", "tracking server"), ("server", "Prefect server")])
def test_status_and_stop_of_a_server_that_is_not_running(command, name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # both keep their state under ./.engineforge
    # Not the session's: conftest points ENGINEFORGE_PREFECT_HOME at the server the other tests started.
    monkeypatch.delenv("ENGINEFORGE_TRACKING_HOME", raising=False)
    monkeypatch.delenv("ENGINEFORGE_PREFECT_HOME", raising=False)
    assert main([command, "status"]) == 1
    assert capsys.readouterr().out == "not running\n"
    assert main([command, "stop"]) == 0
    assert capsys.readouterr().out == f"no local {name} was running\n"
