"""`engineforge bench` against an endpoint where every request fails exits 1 and says why."""

from engineforge.cli.app import main
from engineforge.serving import free_port


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
