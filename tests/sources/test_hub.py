"""engineforge/sources/hub.py against a loopback hub (tests/doubles/hub.py) standing in for the public hub, which
tests cannot reach: every caller (revision, model download, planner's config.json, calibration data)
uses HF_ENDPOINT and HF_TOKEN, and offline mode sends no request at all."""

import json

import pytest
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from engineforge.errors import UserError
from engineforge.planner.config_source import load_model_config
from engineforge.quantize import hub_data
from engineforge.recipe.schema import ModelSpec
from engineforge.sources.model_source import HubSource, download_hub_model, resolve_hub_revision
from tests.doubles.hub import running_hub

REPO = "acme/tiny-llama"
COMMIT = "1" * 40
TOKEN = "hf_token_for_the_loopback_hub"
CONFIG = json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 4, "intermediate_size": 128, "vocab_size": 256,
                     "max_position_embeddings": 128, "torch_dtype": "float16"}).encode()


@pytest.fixture
def hub_online(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest sets it for every test
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with running_hub(REPO, COMMIT, files={"config.json": CONFIG}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def _used_token_only_on(server) -> set[str]:
    """The Authorization headers of the repository requests (the reachability check, HEAD /, sends none)."""
    asked = [authorization for method, path, authorization in server.requests if (method, path) != ("HEAD", "/")]
    assert asked, "the loopback hub saw no repository request: HF_ENDPOINT was not used"
    return set(asked)


def test_revision_asks_the_mirror_endpoint_with_the_token_no_public_hub(hub_online):
    assert resolve_hub_revision(HubSource(REPO, "main")) == COMMIT
    assert hub_online.lookups == ["main"]
    assert _used_token_only_on(hub_online) == {f"Bearer {TOKEN}"}


def test_model_download_uses_the_mirror_endpoint_and_token_no_public_hub(hub_online):
    path = download_hub_model(HubSource(REPO, "main"), COMMIT, lambda done, total: None)
    assert (path / "config.json").read_bytes() == CONFIG
    assert hub_online.served == ["config.json"]
    assert _used_token_only_on(hub_online) == {f"Bearer {TOKEN}"}


def test_planner_config_fetch_uses_the_mirror_endpoint_and_token_no_public_hub(hub_online):
    config = load_model_config(_recipe(f"hf://{REPO}@main"))
    assert config["hidden_size"] == 64
    assert hub_online.served == ["config.json"]
    assert _used_token_only_on(hub_online) == {f"Bearer {TOKEN}"}


def test_calibration_dataset_uses_the_mirror_endpoint_and_token_no_public_hub(monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with running_hub("acme/texts", COMMIT, files={"train.jsonl": b'{"text": "a"}\n'}, repo_type="dataset") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        files = hub_data.split_files("hf://datasets/acme/texts", "train")
    assert [path.name for path in files] == ["train.jsonl"]
    assert _used_token_only_on(server) == {f"Bearer {TOKEN}"}


def test_offline_mode_sends_no_request_to_the_loopback_hub(hub_online, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match=r"^model.source hf://acme/tiny-llama@main: cannot fetch config.json"):
        load_model_config(_recipe(f"hf://{REPO}@main"))
    with pytest.raises(UserError, match="not in the Hugging Face cache"):
        hub_data.split_files("hf://datasets/acme/texts", "train")
    with pytest.raises(LocalEntryNotFoundError):  # the stage maps it; here: no request was made
        download_hub_model(HubSource(REPO, "main"), COMMIT, lambda done, total: None)
    with pytest.raises(OfflineModeIsEnabled):  # huggingface_hub refuses before sending anything
        resolve_hub_revision(HubSource(REPO, "main"))
    assert hub_online.requests == []


def _recipe(source: str):
    class Recipe:  # load_model_config reads only recipe.model
        model = ModelSpec(source=source)

    return Recipe()
