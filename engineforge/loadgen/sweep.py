"""A sweep: the same benchmark at several concurrency levels, one run each."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from engineforge.errors import UserError
from engineforge.loadgen.config import BenchConfig
from engineforge.loadgen.records import BenchResult
from engineforge.loadgen.runner import OnRecord, ProbeFactory, run_benchmark

TABLE_FIGURES = (
    "request_throughput", "output_tokens_per_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99",
    "e2e_ms_p99", "error_rate",
)


class SweepResult(BaseModel):
    points: list[BenchResult]

    @property
    def levels(self) -> list[int]:
        return [point.config.concurrency for point in self.points]

    def figure(self, name: str) -> list[float]:
        return [point.summary.get(name, float("nan")) for point in self.points]

    def table(self) -> list[dict[str, float]]:
        return [{"concurrency": float(p.config.concurrency)} | {k: p.summary[k] for k in TABLE_FIGURES} for p in self.points]

    def to_json(self) -> dict:
        return {"points": [point.to_json() for point in self.points]}

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path


def parse_levels(text: str) -> list[int]:
    """`1,2,4,8` -> [1, 2, 4, 8]; each level a positive integer, no repeats."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--sweep {text!r}: give concurrency levels as integers, e.g. 1,4,16,32") from None
    if not levels or min(levels) < 1 or len(set(levels)) != len(levels):
        raise UserError(f"--sweep {text!r}: give distinct positive concurrency levels, e.g. 1,4,16,32")
    return levels


def run_sweep(
    config: BenchConfig, levels: list[int], requests_per_level: int | None = None, on_record: OnRecord | None = None,
    probe: ProbeFactory | None = None,
) -> SweepResult:
    """Run `config` once per concurrency level (closed loop), each with its own warm-up.

    Each level sends `requests_per_level` requests (default: config.requests, but at least
    4 per in-flight slot so that a level is not just its first wave).
    """
    points = []
    for level in levels:
        requests = requests_per_level or max(config.requests, 4 * level)
        level_config = config.model_copy(update={"concurrency": level, "requests": requests, "request_rate": None})
        points.append(run_benchmark(level_config, on_record, probe))
    return SweepResult(points=points)
