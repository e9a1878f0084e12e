"""resolve_hub_revision against a loopback hub (tests/doubles/hub.py) reached through HF_ENDPOINT."""

import pytest

from engineforge.errors import UserError
from engineforge.sources.model_source import HubSource, resolve_hub_revision
from tests.doubles.hub import running_hub

REPO = "acme/tiny-llama"


@pytest.fixture
def hub(monkeypatch):
    with running_hub(REPO, "1" * 40) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest sets it for every test
        yield server


def test_branch_resolves_to_the_commit_the_hub_answers_now(hub):
    assert resolve_hub_revision(HubSource(REPO, "main")) == "1" * 40
    hub.commit = "2" * 40
    assert resolve_hub_revision(HubSource(REPO, "main")) == "2" * 40
    assert hub.lookups == ["main", "main"]


def test_unknown_repository_is_a_one_line_user_error(hub):
    with pytest.raises(UserError, match=r"^model.source hf://acme/other@main: no such repository"):
        resolve_hub_revision(HubSource("acme/other", "main"))


def test_an_answer_without_a_commit_sha_is_refused(hub):
    hub.commit = "not-a-sha"
    with pytest.raises(UserError, match="the hub answered no commit sha \\('not-a-sha'\\)"):
        resolve_hub_revision(HubSource(REPO, "main"))
