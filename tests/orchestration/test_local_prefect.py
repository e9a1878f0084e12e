"""`engineforge run` keeps one local Prefect server and reuses it (a real `prefect server start`)."""

import httpx
import pytest

from engineforge.orchestration import local_prefect

pytestmark = pytest.mark.integration


def test_server_is_started_once_reused_and_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINEFORGE_PREFECT_HOME", str(tmp_path / "prefect"))
    assert local_prefect.running_api_url() is None

    url = local_prefect.ensure_api()
    try:
        assert httpx.get(f"{url}/health").status_code == 200
        assert local_prefect.ensure_api() == url  # found again through the state file, not restarted
        assert local_prefect.running_api_url() == url
    finally:
        assert local_prefect.stop() is True
    assert local_prefect.running_api_url() is None
    assert local_prefect.stop() is False
