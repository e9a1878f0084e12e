"""`engineforge bench` against an endpoint where every request fails exits 1 and says why; `--ignore-eos` a real
`transformers serve` rejects is refused before the load (exit 2), with the style that works."""

from engineforge.cli.app import main
from engineforge.processes.serving import free_port


def test_every_request_failing_exits_1_with_the_cause(capsys):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    code = main(["bench", "--endpoint", endpoint, "--model", "m", "--requests", "2", "--warmup", "0", "--timeout", "5"])
    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith("error: stage bench failed: all 2 requests failed; first: "), error
    assert len(error.strip().splitlines()) == 1


def test_the_first_distinct_request_errors_are_what_bench_prints():
    from engineforge.cli.bench import _distinct_errors
    from engineforge.loadgen.records import RequestRecord

    errors = ["HTTP 422: Unexpected fields: ignore_eos, min_tokens", None, "HTTP 422: Unexpected fields: ignore_eos, min_tokens",
              "timeout after 5 s", "HTTP 500", "HTTP 503"]
    records = [RequestRecord.model_construct(error=error) for error in errors]
    assert _distinct_errors(records) == ["HTTP 422: Unexpected fields: ignore_eos, min_tokens", "timeout after 5 s", "HTTP 500"]


def test_ignore_eos_the_server_rejects_is_refused_before_the_load(tiny_served, capsys):
    url, model = tiny_served
    common = ["bench", "--endpoint", url, "--model", model, "--requests", "2", "--warmup", "0", "--output-len", "4",
              "--ignore-eos"]
    code = main(common)
    error = capsys.readouterr().err
    assert code == 2, error
    assert error.startswith("error: --ignore-eos: the server rejects the ignore_eos field (HTTP 422: "), error
    assert error.rstrip().endswith("for transformers serve use --ignore-eos-style generation_config")
    assert len(error.strip().splitlines()) == 1 and "requests" not in capsys.readouterr().out
    assert main(common + ["--ignore-eos-style", "generation_config"]) == 0  # the style it names works
