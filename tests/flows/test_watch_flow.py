"""The revision watcher against a real Prefect server: its deployment runs on a worker, asks a hub
(a loopback server speaking the one endpoint HfApi.model_info uses, reached through HF_ENDPOINT)
which commit `main` points at, and submits exactly one pinned run per change."""

import pytest
from prefect_services import deployment_flow_runs, tiny_recipe

from engineforge.sources.revisions import variable_name
from tests.doubles.hub import running_hub

pytestmark = pytest.mark.integration

REPO_ID = "acme/tiny-llama"
FIRST, SECOND = "1" * 40, "2" * 40


@pytest.fixture
def hub():
    with running_hub(REPO_ID, FIRST) as server:
        yield server


@pytest.fixture
def held_deployment(deployments) -> str:
    """model-to-deployment on a pool no worker serves: what the watcher submits waits there to be counted."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with deployments.client_settings(), get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="held", type="process"), overwrite=True)
        flow_id = client.read_flow_by_name("model-to-deployment").id
        client.create_deployment(flow_id=flow_id, name="held-for-watcher", work_pool_name="held",
                                 entrypoint="flows/model_to_deployment.py:model_to_deployment")
    return "model-to-deployment/held-for-watcher"


def test_watcher_submits_exactly_one_pinned_run_per_revision_change(deployments, workers, hub, held_deployment, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.variables import Variable

    recipe = tmp_path / "watched.yaml"
    recipe.write_text(tiny_recipe("watched-tiny").replace("synthetic:tiny-llama", f"hf://{REPO_ID}@main"))
    unwatched = tmp_path / "pinned.yaml"  # a recipe on a fixed commit is never resubmitted
    unwatched.write_text(tiny_recipe("pinned-tiny").replace("synthetic:tiny-llama", f"hf://{REPO_ID}@{FIRST}"))
    workers.start("watcher", HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")

    def tick() -> list:
        run = run_deployment("watch-revisions/watch-revisions", timeout=600, poll_interval=1,
                             parameters={"recipes": [str(recipe), str(unwatched)], "deployment": held_deployment})
        assert run.state.is_completed(), run.state.message
        return sorted(deployment_flow_runs(held_deployment), key=lambda flow_run: flow_run.created)

    with deployments.client_settings():
        first = tick()
        unchanged = tick()
        hub.commit = SECOND
        moved = tick()
        settled = tick()
        remembered = Variable.get(variable_name("watched-tiny"))

    assert len(first) == 1 and f'"hf://{REPO_ID}@{FIRST}"' in first[0].parameters["recipe_yaml"]
    assert [run.id for run in unchanged] == [run.id for run in first]
    assert len(moved) == 2 and f'"hf://{REPO_ID}@{SECOND}"' in moved[1].parameters["recipe_yaml"]
    assert "name: watched-tiny" in moved[1].parameters["recipe_yaml"]
    assert [run.id for run in settled] == [run.id for run in moved]
    assert remembered["commit"] == SECOND and remembered["flow_run_id"] == str(moved[1].id)
    assert hub.lookups == ["main"] * 4
