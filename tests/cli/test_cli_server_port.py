"""`engineforge server`: a restarted local Prefect server answers on the port it had, so the flow-run
URLs earlier MLflow runs were tagged with still open (a real `prefect server start`, twice)."""

import re

import httpx
import pytest

from engineforge.cli.app import main

pytestmark = pytest.mark.integration


def server(action: str, capsys) -> tuple[int, str]:
    code = main(["server", action])
    return code, capsys.readouterr().out


def test_restart_keeps_the_port(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENGINEFORGE_PREFECT_HOME", str(tmp_path / "prefect"))
    code, started = server("start", capsys)
    assert code == 0, started
    first = re.search(r"http://[\d.]+:\d+/api", started)[0]
    try:
        assert server("stop", capsys) == (0, "stopped\n")
        code, restarted = server("start", capsys)
        assert code == 0 and first in restarted, (first, restarted)
        assert httpx.get(f"{first}/health").status_code == 200
    finally:
        server("stop", capsys)
