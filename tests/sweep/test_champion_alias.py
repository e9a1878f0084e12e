"""Aliases `champion` / `previous-champion` on a real MLflow model registry (SQLite)."""

from mlflow.tracking import MlflowClient

from engineforge.tracking import mlflow_runs


def versions(uri: str, name: str, count: int) -> list[str]:
    client = MlflowClient(uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("aliases"))
    return [mlflow_runs.TrackedRun(uri, run.info.run_id).register_version(name, f"file:///store/build/{i}", f"key-{i}", {})[0]
            for i in range(count)]


def aliases(uri: str, name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in MlflowClient(uri, registry_uri=uri).get_registered_model(name).aliases.items()}


def test_a_new_champion_demotes_the_former_one_and_the_same_one_changes_nothing(mlflow_uri):
    first, second = versions(mlflow_uri, "sweep-aliases", 2)
    assert mlflow_runs.promote_champion(mlflow_uri, "sweep-aliases", first) is None
    assert aliases(mlflow_uri, "sweep-aliases")["champion"] == first
    assert "previous-champion" not in aliases(mlflow_uri, "sweep-aliases")

    assert mlflow_runs.promote_champion(mlflow_uri, "sweep-aliases", second) == first
    assert {k: v for k, v in aliases(mlflow_uri, "sweep-aliases").items() if "champion" in k} == {
        "champion": second, "previous-champion": first}

    assert mlflow_runs.promote_champion(mlflow_uri, "sweep-aliases", second) == second  # a rerun's same winner
    assert aliases(mlflow_uri, "sweep-aliases")["previous-champion"] == first
    assert mlflow_runs.version_with_content_key(mlflow_uri, "sweep-aliases", "key-1") == second
    assert mlflow_runs.version_with_content_key(mlflow_uri, "sweep-aliases", "key-9") is None
