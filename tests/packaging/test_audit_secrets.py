"""engineforge/packaging/audit.py: which secret values the image audit looks for."""

from engineforge.packaging.audit import secrets_in_environment


def test_the_audit_looks_for_engineforges_own_secrets_and_other_tools(monkeypatch):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "NGC_API_KEY", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD",
                 "MLFLOW_TRACKING_TOKEN", "ENGINEFORGE_REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert secrets_in_environment() == []
    monkeypatch.setenv("ENGINEFORGE_REGISTRY_PASSWORD", "registry-secret-1")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_2")
    monkeypatch.setenv("NGC_API_KEY", "ngc-secret-key-3")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "short")  # under 8 characters: would match everywhere
    assert sorted(secrets_in_environment()) == ["hf_secret_token_2", "ngc-secret-key-3", "registry-secret-1"]
