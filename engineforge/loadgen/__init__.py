"""Load generator: benchmark an OpenAI-compatible streaming endpoint.

    from engineforge.loadgen import BenchConfig, run_benchmark
    result = run_benchmark(BenchConfig(endpoint="http://127.0.0.1:8000", model="m", prompts=["Hi"]))
    result.summary["ttft_ms_p99"]; result.write_json("validation.json")
"""

from engineforge.loadgen.config import BenchConfig, Sample
from engineforge.loadgen.records import BenchResult, RequestRecord
from engineforge.loadgen.runner import run_benchmark

__all__ = ["BenchConfig", "BenchResult", "RequestRecord", "Sample", "run_benchmark"]
