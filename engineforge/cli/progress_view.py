"""The run as the terminal shows it while the flow runs in this process: a spinner per running
stage with its elapsed time and what it has done so far, a line per finished stage, the links."""

from __future__ import annotations

from rich.console import Console
from rich.filesize import decimal
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

STATUS_STYLE = {"ran": "green", "cached": "cyan", "fetched": "blue", "skipped": "yellow", "failed": "red"}


class LiveStages:
    """A progress listener (engineforge.stages.progress); stage events arrive from Prefect's task threads."""

    def __init__(self, console: Console):
        self.console = console
        # transient: the spinners vanish when a stage ends; off a terminal rich draws none
        self.spinners = Progress(SpinnerColumn(), TextColumn("{task.description:<9}"), TimeElapsedColumn(),
                                 TextColumn("{task.fields[done]}"), console=console, transient=True)
        self.running: dict[str, int] = {}
        self.summary: dict | None = None  # the run's outcome, kept in case Prefect cannot record it
        self.notices: list[str] = []  # what the run went on without; the CLI says it once, at the end
        self.stopped: tuple[str, str | None] | None = None  # Ctrl-C: the MLflow run and flow run ids

    def stage_started(self, stage: str, key: str | None) -> None:
        if not self.running and self.console.is_terminal:  # off a terminal a stopped Live leaves blank lines
            self.spinners.start()
        self.running[stage] = self.spinners.add_task(stage, done="")

    def stage_advanced(self, stage: str, fraction: float) -> None:
        self._show(stage, f"{100 * fraction:.0f} %")

    def stage_counted(self, stage: str, done: int, total: int | None, unit: str) -> None:
        if unit == "bytes":
            self._show(stage, f"{decimal(done)} of {decimal(total)}" if total else decimal(done))
        else:
            self._show(stage, f"{done}/{total} {unit}" if total else f"{done} {unit}")

    def stage_finished(self, result) -> None:
        task = self.running.pop(result.stage, None)
        if task is not None:
            self.spinners.remove_task(task)
        if not self.running and self.spinners.live.is_started:
            self.spinners.stop()
        style = STATUS_STYLE.get(result.status, "white")
        self.console.print(f"[{style}]{result.status:>7}[/] {result.stage:<9} {result.duration_s:7.2f}s  {result.summary}")

    def run_linked(self, label: str, url: str) -> None:
        self.console.print(f"{label}: {url}", markup=False, soft_wrap=True)  # an address stays on one line

    def run_concluded(self, summary: dict) -> None:
        self.summary = summary

    def run_noticed(self, line: str) -> None:
        self.notices.append(line)

    def run_stopped(self, mlflow_run_id: str, flow_run_id: str | None) -> None:
        self.stopped = (mlflow_run_id, flow_run_id)

    def close(self) -> None:
        if self.spinners.live.is_started:
            self.spinners.stop()

    def _show(self, stage: str, done: str) -> None:
        if stage in self.running:
            self.spinners.update(self.running[stage], done=done)
