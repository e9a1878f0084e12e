from concurrent.futures import ProcessPoolExecutor

from engineforge import tracking


def _experiments(uri: str) -> int:
    return len(tracking.client(uri).search_experiments())


def test_runs_starting_together_on_a_fresh_sqlite_store_all_get_a_client(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    with ProcessPoolExecutor(3) as pool:
        assert list(pool.map(_experiments, [uri] * 3)) == [1, 1, 1]  # the Default experiment, no errors


def test_recipe_params_are_flat_dotted_keys():
    assert tracking.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": "1", "a.c": "[1, 2]", "d": "None"}
