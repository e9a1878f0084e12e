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
