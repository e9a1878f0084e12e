"""The live view of `engineforge run`: on a terminal, spinners with elapsed time and what a stage has
done; off one (a pipe, CI logs), only the stage lines, with no blank lines between them."""

import io

from rich.console import Console

from engineforge.cli.progress_view import LiveStages
from engineforge.stage_result import StageResult


def finish(view: LiveStages, stage: str) -> None:
    view.stage_finished(StageResult(stage=stage, status="ran", duration_s=1.5, summary=f"{stage} done"))


def test_a_pipe_gets_only_the_stage_lines():
    out = io.StringIO()
    view = LiveStages(Console(file=out, highlight=False, width=100))
    for stage in ("download", "validate"):
        view.stage_started(stage, None)
        view.stage_counted(stage, 2, 4, "requests")
        finish(view, stage)
    view.close()
    assert out.getvalue().splitlines() == ["    ran download     1.50s  download done", "    ran validate     1.50s  validate done"]


def test_a_terminal_shows_elapsed_time_and_requests_answered():
    out = io.StringIO()
    view = LiveStages(Console(file=out, force_terminal=True, width=100))
    view.stage_started("validate", None)
    view.stage_counted("validate", 3, 8, "requests")
    view.spinners.refresh()
    shown = out.getvalue()
    assert "validate" in shown and "3/8 requests" in shown and "0:00:0" in shown
    view.stage_counted("validate", 2_500_000, 5_000_000, "bytes")
    view.spinners.refresh()
    assert "2.5 MB of 5.0 MB" in out.getvalue()
    finish(view, "validate")
    assert not view.spinners.live.is_started
