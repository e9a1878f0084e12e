"""The sweep flow end to end on the CPU: a real Prefect API, a real MLflow store, real `transformers serve`.

Two build.max_batch_size values at one load point: two children, download computed once, the champion
registered and packaged (the package stage skips: no Docker daemon here), then a rerun that reuses every
stage, then an impossible gate that fails the sweep without moving the alias.
"""

import csv
import io

import pytest
from mlflow.tracking import MlflowClient

from prefect import get_client

from engineforge import progress
from engineforge.tracking import mlflow_runs, mlflow_tags
from engineforge.tracking.mlflow_tags import CHAMPION_TAG, CHAMPION_VERSION_TAG, FLOW_RUN_TAG
from engineforge.errors import StageFailed
from engineforge.sweep.champion import decide
from engineforge.sweep.records import sweep_records
from flows.sweep import sweep
from sweep_helpers import LinkRecorder, sweep_text

pytestmark = pytest.mark.integration


def assert_the_answer_is_where_users_land(summary, links, client, version):
    """The parent's links first; its Prefect flow run named after the recipe and its key; its MLflow
    description leads with the champion, its version and the objective, then the table; tags to match."""
    parent = client.get_run(summary["mlflow"]["run_id"])
    assert [name for name, _ in links[:2]] == ["Prefect flow run", "MLflow run"]
    assert summary["mlflow"]["run_id"] in links[1][1] and parent.data.tags[FLOW_RUN_TAG] in links[0][1]
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(parent.data.tags[FLOW_RUN_TAG])
    assert flow_run.name.startswith("sweep-flow-test-") and flow_run.name == parent.data.tags["mlflow.runName"]
    description = parent.data.tags["mlflow.note.content"]
    assert description.startswith(f"**Champion: {summary['champion']}**, sweep-flow-test version {version} `@champion`; "
                                  "objective `output_tokens_per_s_per_gpu`")
    assert summary["table"] in description
    assert parent.data.tags[CHAMPION_TAG] == summary["champion"] and parent.data.tags[CHAMPION_VERSION_TAG] == str(version)


def assert_children_told_apart(summary, children, client, version):
    """Variant first in each child's name; the packaging run named as the champion's package; the champion
    marked by tag, name and description; what the summary says of the registry is what the registry holds."""
    champion = summary["champion"]
    names = {client.get_run(run.info.run_id).info.run_name for run in children}
    assert names == {f"{variant} · sweep-flow-test" for variant in ("mbs1", "mbs4") if variant != champion} | {
        f"{champion} · sweep-flow-test · champion", f"{champion} · sweep-flow-test · champion package"}
    crowned = [run for run in children if client.get_run(run.info.run_id).data.tags.get(CHAMPION_TAG) == "true"]
    assert [run.data.tags["engineforge.sweep.variant"] for run in crowned] == [champion]
    description = client.get_run(crowned[0].info.run_id).data.tags["mlflow.note.content"]
    aliases = client.get_model_version("sweep-flow-test", version).aliases
    held = " ".join(f"`@{alias}`" for alias in sorted(aliases))  # what the registry holds now, champion among them
    assert "champion" in aliases and description.startswith(f"**Champion** of sweep run `{summary['mlflow']['run_id']}`: "
                                                            f"sweep-flow-test version {version} {held}\n")
    assert ("@candidate" in description) == ("candidate" in aliases)
    for variant in summary["variants"]:
        shown = variant["registered"]
        number = shown.split()[1]
        now = sorted(client.get_model_version("sweep-flow-test", number).aliases)
        assert shown == f"version {number} " + (" ".join(f"@{a}" for a in now) or "(no alias)")


def child_statuses(summary) -> dict[str, dict[str, str]]:
    return {variant["variant"]: variant["stages"] for variant in summary["variants"]}


def test_sweep_nests_children_promotes_the_champion_reuses_and_refuses_when_nothing_passes(
    prefect_api, tiny_model_dir, mlflow_uri, no_docker, tmp_path
):
    store = str(tmp_path / "store")
    links = LinkRecorder()
    progress.subscribe(links)
    try:
        first = sweep(recipe_yaml=sweep_text(tiny_model_dir, mlflow_uri, ttft_gate_ms=600000), recipe_origin="sweep.yaml",
                      store_root=store)
    finally:
        progress.unsubscribe(links)

    client = MlflowClient(mlflow_uri)
    parent = first["mlflow"]["run_id"]
    children = mlflow_runs.TrackedRun(mlflow_uri, parent).child_runs()
    variants = sorted(run.data.tags.get("engineforge.sweep.variant") for run in children
                      if "engineforge.sweep.variant" in run.data.tags)
    assert variants == ["mbs1", "mbs4"]
    statuses = child_statuses(first)
    assert sorted(s["download"] for s in statuses.values()) == ["cached", "ran"]  # computed once
    assert {s["build"] for s in statuses.values()} == {"ran"}  # two batch sizes, two builds
    assert {s["package"] for s in statuses.values()} == {"skipped"}  # only the champion is packaged
    packaging = [run for run in children if "engineforge.sweep.packaged" in run.data.tags]
    assert [run.data.tags["engineforge.sweep.packaged"] for run in packaging] == [first["champion"]]
    assert packaging[0].data.tags["engineforge.stage.package.status"] == "skipped"  # ran, and said why (no Docker)

    records = sweep_records(mlflow_runs.TrackedRun(mlflow_uri, parent))
    verdict = decide(records, "output_tokens_per_s_per_gpu")
    assert first["champion"] == verdict.name and first["verdict"] == verdict.kind
    assert client.get_run(parent).data.tags["engineforge.champion.verdict"] == verdict.kind in ("significant", "no_clear_winner")
    assert verdict.sentence() in first["table"] and "Measured in this order: " in first["table"]
    for record in records:  # two repeats each: their values as steps 0 and 1, the mean at step 2, and its interval
        history = client.get_metric_history(record.run_id, "output_tokens_per_s")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1, 2]
        values = [m.value for m in sorted(history, key=lambda m: m.step)]
        assert values[2] == pytest.approx((values[0] + values[1]) / 2) and record.interval("output_tokens_per_s").n == 2
        assert client.get_run(record.run_id).data.metrics["output_tokens_per_s_ci95"] > 0
        assert record.stages["validate"] == "ran"
    assert len(list((tmp_path / "store" / "validate").iterdir())) == 2 * 2 + 2  # a repeat each, and their means
    artifacts = {item.path for item in client.list_artifacts(parent, "sweep")}
    # no prediction plot: AIConfigurator does not model the transformers runtime (the table's note says so)
    assert artifacts == {f"sweep/{name}" for name in ("comparison.csv", "comparison.md", "pareto.png")}
    table = client.download_artifacts(parent, "sweep/comparison.csv", str(tmp_path))
    rows = {row["variant"]: row for row in csv.DictReader(io.StringIO(open(table).read()))}
    assert rows[first["champion"]]["champion"] == "True" and set(rows) == {"mbs1", "mbs4"}
    assert {row["n"] for row in rows.values()} == {"2"} and all(row["output_tokens_per_s_ci95"] for row in rows.values())
    champion_version = client.get_model_version_by_alias("sweep-flow-test", "champion")
    champion_run = next(r for r in records if r.name == first["champion"])
    assert champion_version.tags[mlflow_tags.CONTENT_KEY_TAG] == client.get_run(champion_run.run_id).data.tags[
        "engineforge.stage.build.key"]
    assert 0 <= first["timing"]["sweep_overhead_fraction"] < 1
    assert_the_answer_is_where_users_land(first, links.lines, client, champion_version.version)
    assert_children_told_apart(first, children, client, champion_version.version)

    rerun = sweep(recipe_yaml=sweep_text(tiny_model_dir, mlflow_uri, ttft_gate_ms=600000), recipe_origin="sweep.yaml", store_root=store)
    assert {status for stages in child_statuses(rerun).values() for status in stages.values()} <= {"cached", "skipped"}
    assert rerun["champion"] == first["champion"]

    with pytest.raises(StageFailed, match="no variant passed every gate") as failed:
        sweep(recipe_yaml=sweep_text(tiny_model_dir, mlflow_uri, ttft_gate_ms=0.001), recipe_origin="sweep.yaml", store_root=store)
    assert {v["gates"] for v in failed.value.summary["variants"]} == {"failed"}
    assert "champion: none" in failed.value.summary["table"]
    still = client.get_model_version_by_alias("sweep-flow-test", "champion")
    assert still.version == champion_version.version  # no alias moved
    assert client.get_run(failed.value.summary["mlflow"]["run_id"]).info.status == "FAILED"
