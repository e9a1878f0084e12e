"""What a run leaves behind: one record per request and the result (config, figures, records)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from engineforge.loadgen.config import BenchConfig


class RequestRecord(BaseModel):
    """One request. Times are seconds: `start_s` from the start of the run, the others from `start_s`."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(..., description="Order of the request in the run.")
    prompt_index: int
    scheduled_s: float = Field(..., description="When the load pattern wanted it sent, from the start of the run.")
    start_s: float = Field(..., description="When it was sent, from the start of the run.")
    ttft_s: float | None = Field(None, description="First text received, from start_s.")
    token_times_s: list[float] = Field(default_factory=list, description="Arrival of each text chunk, from start_s.")
    e2e_s: float | None = Field(None, description="Last byte received, from start_s.")
    output_text: str = ""
    output_tokens: int = 0
    prompt_tokens: int | None = None
    token_logprobs: list[float] | None = Field(None, description="Chosen-token logprobs, when asked for and sent.")
    finish_reason: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class BenchResult(BaseModel):
    """The validation results: what was asked, the figures, and every measured request."""

    model_config = ConfigDict(extra="forbid")

    config: BenchConfig
    summary: dict[str, float] = Field(..., description="Flat figures; NaN where nothing was measured.")
    records: list[RequestRecord]
    started_at: str = Field(..., description="UTC ISO time of the first measured request.")
    gpus: list[str] = Field(default_factory=list, description="NVML names of the GPUs sampled during the run.")
    missing: dict[str, str] = Field(default_factory=dict, description="Figures nothing could measure, with why.")

    def to_json(self) -> dict:
        """Plain JSON data (figures that are NaN become null)."""
        data = self.model_dump(mode="json")
        data["summary"] = {name: _finite(value) for name, value in self.summary.items()}
        return data

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def read_json(cls, path: str | Path) -> "BenchResult":
        data = json.loads(Path(path).read_text())
        data["summary"] = {k: (math.nan if v is None else v) for k, v in data["summary"].items()}
        return cls.model_validate(data)
