"""`engineforge compare` reads a sweep back from a real MLflow store (runs recorded as the sweep flow tags them)."""

import json

from mlflow.tracking import MlflowClient

from engineforge.tracking import mlflow_runs
from engineforge.cli.app import main
from engineforge.tracking.mlflow_tags import GPUS_TAG, MEASURED_BY_TAG, OBJECTIVE_TAG, PARENT_RUN_TAG, SWEEP_TAG, VARIANT_TAG


def record_sweep(uri: str) -> dict[str, str]:
    """A parent run and three variant children, as flows/sweep.py leaves them."""
    client = MlflowClient(uri)
    experiment = client.create_experiment("compare-test")
    parent = client.create_run(experiment, run_name="compare-test", tags={SWEEP_TAG: "3", OBJECTIVE_TAG: "ttft_ms_p99"})
    ids = {}
    for name, gpus, tok_s, ttft, gates in (("tp1", 1, 100.0, 90.0, "passed"), ("tp2", 2, 300.0, 40.0, "passed"),
                                           ("tp4", 4, 500.0, 20.0, "failed")):
        run = client.create_run(experiment, tags={PARENT_RUN_TAG: parent.info.run_id, VARIANT_TAG: name,
                                                  GPUS_TAG: str(gpus), "gates": gates})
        mlflow_runs.TrackedRun(uri, run.info.run_id).log_metrics({"output_tokens_per_s": tok_s, "ttft_ms_p99": ttft, "tpot_ms_p50": 10.0})
        ids[name] = run.info.run_id
    return ids


def test_compare_prints_the_newest_sweep_with_its_objective_and_writes_the_plots(mlflow_uri, tmp_path, capsys):
    ids = record_sweep(mlflow_uri)
    assert main(["compare", "compare-test", "--json", "--tracking-uri", mlflow_uri, "--out", str(tmp_path / "plots")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["objective"] == "ttft_ms_p99" and shown["champion"] == "tp2"  # tp4 is faster but failed its gates
    by_name = {v["variant"]: v for v in shown["variants"]}
    assert by_name["tp2"]["figures"]["output_tokens_per_s_per_gpu"] == 150.0 and by_name["tp4"]["run_id"] == ids["tp4"]
    # nothing was predicted: no prediction plot (it was empty axes holding a sentence)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["compare-test-pareto.png"]

    assert main(["compare", "compare-test", "--runs", ids["tp1"], "--runs", ids["tp4"], "--tracking-uri", mlflow_uri,
                 "--out", str(tmp_path / "plots"), "--objective", "output_tokens_per_s"]) == 0
    text = capsys.readouterr().out
    assert "| tp1 (champion) |" in text and "| tp4 |" in text and "tp2" not in text


def test_compare_names_what_is_wrong_in_one_line(mlflow_uri, tmp_path, capsys):
    record_sweep(mlflow_uri)
    assert main(["compare", "no-such-experiment", "--tracking-uri", mlflow_uri, "--out", str(tmp_path / "plots")]) == 2
    assert main(["compare", "compare-test", "--runs", "0123abc", "--tracking-uri", mlflow_uri, "--out", str(tmp_path / "plots")]) == 2
    assert main(["compare", "compare-test", "--objective", "fastest", "--tracking-uri", mlflow_uri]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert [line.split(":")[1].strip() for line in errors] == ["experiment 'no-such-experiment'", "--runs 0123abc",
                                                              "--objective fastest"]


def test_a_child_that_reused_a_cached_validation_shows_the_measuring_runs_figures(mlflow_uri):
    from engineforge.sweep.records import sweep_records

    ids = record_sweep(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    parent = client.get_run(ids["tp1"]).data.tags[PARENT_RUN_TAG]
    experiment = client.get_run(ids["tp1"]).info.experiment_id
    later = client.get_run(ids["tp4"]).info.start_time + 1000  # the rerun's child is the newest of its variant
    rerun = client.create_run(experiment, start_time=later, tags={PARENT_RUN_TAG: parent, VARIANT_TAG: "tp2", GPUS_TAG: "2",
                                                "gates": "passed", MEASURED_BY_TAG: ids["tp2"]})
    mlflow_runs.TrackedRun(mlflow_uri, rerun.info.run_id).log_metrics({"stage_validate_duration_s": 0.0})
    mlflow_runs.TrackedRun(mlflow_uri, ids["tp2"]).log_metrics({"predicted_output_tokens_per_s_per_gpu": 140.0})
    (tp2,) = [r for r in sweep_records(mlflow_runs.TrackedRun(mlflow_uri, parent)) if r.name == "tp2"]
    assert tp2.run_id == rerun.info.run_id  # the newest child of the variant
    assert tp2.figure("output_tokens_per_s") == 300.0 and tp2.figures["stage_validate_duration_s"] == 0.0
    # A prediction is the run's own, for the GPU it ran on: the measuring run's is not borrowed.
    assert "predicted_output_tokens_per_s_per_gpu" not in tp2.figures
