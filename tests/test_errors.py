"""One base error: each kind carries its exit code and whether retrying can help, through pickling
(Prefect stores a task's exception in its state) and through the cause chain retries.can_pass walks."""

import pickle

import pytest

from engineforge.errors import EngineForgeError, NetworkError, RunFailed, StageFailed, UserError
from engineforge.orchestration.retries import can_pass
from engineforge.recipe.file import RecipeError


@pytest.mark.parametrize(("error", "exit_code", "retryable"), [
    (UserError("recipe.name: bad"), 2, False),
    (RecipeError("recipe.yaml: line 3: bad"), 2, False),
    (NetworkError("network: hub unreachable"), 1, True),
    (StageFailed("build", "killed"), 1, True),
    (StageFailed("build", "disk full", user_error=True), 1, False),
])
def test_each_error_says_its_exit_code_and_whether_retrying_helps(error, exit_code, retryable):
    assert isinstance(error, EngineForgeError)
    assert (error.exit_code, error.retryable) == (exit_code, retryable)
    assert can_pass(error) is retryable


def test_a_stage_failure_keeps_its_fields_through_pickling():
    again = pickle.loads(pickle.dumps(StageFailed("validate", "no space", user_error=True)))
    assert (again.stage, again.cause, again.retryable, str(again)) == ("validate", "no space", False,
                                                                       "stage validate failed: no space")


def test_a_failed_run_carries_its_summary_as_a_field_through_pickling():
    summary = {"recipe": "tiny", "status": "failed", "failed_stage": "validate"}
    failed = RunFailed.of(StageFailed("validate", "gates failed", user_error=True), summary)
    again = pickle.loads(pickle.dumps(failed))
    assert isinstance(again, StageFailed) and str(again) == "stage validate failed: gates failed"
    assert (again.stage, again.cause, again.summary, again.retryable) == ("validate", "gates failed", summary, False)


def test_a_permanent_cause_makes_its_wrapper_permanent():
    try:
        try:
            raise UserError("model.source: no such repository")
        except UserError as cause:
            raise RuntimeError("download failed") from cause
    except RuntimeError as wrapper:
        assert can_pass(wrapper) is False
