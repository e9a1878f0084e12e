"""A small sweep of the tiny model on the CPU (two build.max_batch_size variants at one load point), and a
listener keeping the links a run prints: for the sweep flow test and the browser test of its pages."""

from __future__ import annotations


def sweep_text(model_dir, uri: str, name: str = "sweep-flow-test", ttft_gate_ms: float | None = None,
               repeats: int = 2) -> str:
    gates = f"  gates:\n    max_ttft_ms_p99: {ttft_gate_ms}\n" if ttft_gate_ms is not None else ""
    return f"""name: {name}
model:
  source: {model_dir}
  dtype: float32
runtime: transformers
serve:
  device: cpu
  startup_timeout_s: 180
validate:
  requests: 4
  concurrency: 2
  warmup_requests: 1
  max_tokens: 8
{gates}tracking:
  uri: {uri}
sweep:
  repeats: {repeats}
  matrix:
    build.max_batch_size: [1, 4]
"""


class LinkRecorder:
    """A progress listener keeping the links in the order they were announced."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def run_linked(self, label, url):
        self.lines.append((label, url))

    def stage_started(self, *event):  # every listener takes the stage events; links are all this one keeps
        pass

    stage_finished = stage_started
