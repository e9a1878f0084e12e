"""The MLflow vocabulary: one definition per tag, the strings users' stores already hold, and the
stage tags' writer and reader agreeing."""

import engineforge.tracking.mlflow_tags as tags
from engineforge.tracking.mlflow_tags import stage_key, stage_status, stage_statuses

# What runs recorded before this module existed carry; a changed string would hide them.
RECORDED = {
    "engineforge.recipe", "engineforge.runtime", "engineforge.parallel", "engineforge.parallel.reason",
    "engineforge.model_revision", "engineforge.lock_sha256", "engineforge.gpu", "engineforge.closed_by",
    "engineforge.owner.", "engineforge.prefect.flow_run_id", "engineforge.prefect.flow_run_url", "engineforge.stage.",
    "engineforge.quantize.format", "engineforge.quantize.kv_cache", "engineforge.quantize.modelopt_version",
    "engineforge.quantize.calibration_sha256", "engineforge.quantize.gates", "engineforge.measured.validate",
    "engineforge.missing.", "engineforge.cache_hit", "engineforge.measured_by_run", "engineforge.content_key",
    "engineforge.image_digest", "engineforge.registered_by_run", "engineforge.replaced_candidate",
    "engineforge.logged.", "engineforge.manifest_sha256.", "engineforge.sweep", "engineforge.sweep.objective",
    "engineforge.champion.verdict", "engineforge.sweep.variant", "engineforge.sweep.packaged", "engineforge.sweep.gpus",
    "engineforge.predicted.gpu", "engineforge.predicted.", "engineforge.sweep.champion", "engineforge.sweep.champion_version",
    "engineforge.failed_because",
    # MLflow's own, which its UI reads
    "mlflow.runName", "mlflow.note.content", "mlflow.parentRunId", "mlflow.experimentKind",
}


def test_every_tag_is_defined_once_with_the_string_runs_already_hold():
    defined = [value for name, value in vars(tags).items() if name.endswith(("_TAG", "_TAG_PREFIX"))]
    assert len(defined) == len(set(defined))
    assert set(defined) == RECORDED


def test_stage_tags_written_are_read_back_per_stage():
    written = {stage_status("build"): "ran", stage_key("build"): "abc", stage_status("validate"): "cached",
               "engineforge.stage_note": "not a stage tag", "mlflow.runName": "x"}
    assert stage_statuses(written) == {"build": "ran", "validate": "cached"}
    assert (stage_status("build"), stage_key("build")) == ("engineforge.stage.build.status", "engineforge.stage.build.key")


def test_tags_with_a_part_keep_their_recorded_form():
    assert tags.missing("ttft_ms_p99") == "engineforge.missing.ttft_ms_p99"
    assert tags.logged("build") == "engineforge.logged.build"
    assert tags.manifest_sha256("build") == "engineforge.manifest_sha256.build"
    assert tags.owner_field("pid") == "engineforge.owner.pid"
