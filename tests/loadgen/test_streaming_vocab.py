"""A synthetic model at TinyLlama's vocabulary (32000) streams visible text token by token from real
`transformers serve` on the CPU, started as the validate stage starts its servers: every request has
text, TTFT, ITL and TPOT > 0, about one event per token; and the server runs with hub kernels off, the
hub offline and no secrets (read from its /proc environment)."""

from __future__ import annotations

import psutil
import pytest

from engineforge.processes.environment import model_server_environment
from engineforge.loadgen import BenchConfig, run_benchmark
from engineforge.recipe.schema import SyntheticModel
from engineforge.processes.serving import LOOPBACK, free_port, running_servers
from engineforge.stage_plan import Command, StagePlan
from engineforge.sources.synthetic import write_synthetic_model

pytestmark = pytest.mark.integration
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def vocab_32000_model(tmp_path_factory):
    spec = SyntheticModel(hidden_size=64, intermediate_size=128, num_hidden_layers=1, vocab_size=32000)
    return write_synthetic_model(spec, tmp_path_factory.mktemp("vocab32000") / "model")


def listening_process(port: int) -> psutil.Process:
    pid = next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == "LISTEN")
    return psutil.Process(pid)


def test_a_32000_vocab_model_streams_one_event_per_token_with_hub_kernels_off(vocab_32000_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_for_the_test")
    port = free_port()
    argv = ["transformers", "serve", str(vocab_32000_model), "--host", LOOPBACK, "--port", str(port), "--device", "cpu",
            "--dtype", "float32", "--continuous-batching", "--cb-num-blocks", "8"]
    plan = StagePlan(stage="validate", commands=[Command(role="server", argv=argv, port=port)])
    with running_servers(plan, LOOPBACK, tmp_path / "server.log", 180, model_server_environment(hub_kernels=False)) as url:
        environ = listening_process(port).environ()
        result = run_benchmark(BenchConfig(
            endpoint=url, model=str(vocab_32000_model), prompts=["The capital of France is", "Once upon a time"],
            requests=6, concurrency=3, max_tokens=MAX_TOKENS, ignore_eos=True, ignore_eos_style="generation_config",
        ))
    assert environ.get("USE_HUB_KERNELS") == "NO" and environ.get("HF_HUB_OFFLINE") == "1"
    assert "HF_TOKEN" not in environ
    assert result.summary["errors"] == 0, [r.error for r in result.records]
    for record in result.records:
        assert record.output_text.strip(), "a request streamed no visible text"
        assert record.output_tokens == MAX_TOKENS and record.ttft_s is not None
        assert len(record.token_times_s) >= MAX_TOKENS - 1, f"{len(record.token_times_s)} events for {MAX_TOKENS} tokens"
    # on the CPU a 1-layer model makes tokens faster than the server flushes events: several arrive in one read,
    # and share its time (no gap of 0)
    assert result.summary["tpot_ms_p50"] > 0 and result.summary["itl_ms_p50"] > 0
    assert result.summary["tokens_per_chunk"] >= 1
    assert result.missing == {}
