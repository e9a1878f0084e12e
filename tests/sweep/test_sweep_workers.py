"""A sweep against a real `prefect server` with two process workers: `engineforge run` (PREFECT_API_URL set,
the model-to-deployment deployment there) runs each variant as a deployment run on the `gpu` pool; the
children spread over both workers, and on each host no more validate stages hold GPUs at once than it
has slots. No GPU here: the workers run with ENGINEFORGE_GPU_STAGES=validate (tests/prefect_services.py).
"""

import json
import re

import pytest
from prefect_services import BIN, flow_run_log_lines, task_runs, tiny_recipe

pytestmark = pytest.mark.integration

SLOT_LINE = re.compile(r"validate holds 1 of (\d+) GPU slot\(s\) of (\S+):")


def max_overlap(intervals: list[tuple]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, step in events:
        open_now += step
        most = max(most, open_now)
    return most


def ran_here(worker_log: str, flow_run_id: str) -> bool:
    """Both workers may try to submit a run; the server lets one through and aborts the other's try."""
    return (f"submitting flow run '{flow_run_id}'" in worker_log
            and f"Aborted submission of flow run '{flow_run_id}'" not in worker_log)


@pytest.mark.timeout(2400)  # a server, two workers and four children: slow on a shared 2-core machine
def test_sweep_children_spread_over_two_workers_within_their_gpu_slots(deployments, workers, worker_stores, tmp_path):
    # Two "hosts", one GPU slot each; each worker takes at most two flow runs at once, so four children
    # cannot all land on one worker, and two on one host must queue for its one slot.
    hosts = {name: workers.start(name, 1, "--flow-runs", "2", ENGINEFORGE_GPU_LIMIT=f"gpu-{name}")
             for name in ("sweep-host-a", "sweep-host-b")}
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text(tiny_recipe("sweep-workers", seed=7)
                      + "sweep:\n  matrix:\n    build.max_batch_size: [1, 4]\n  load:\n    - concurrency: 1\n"
                        "    - concurrency: 2\n      requests: 4\n")

    done = deployments.run([str(BIN / "engineforge"), "run", str(recipe), "--json"], home="sweep-cli", timeout=1500,
                           **worker_stores)

    assert done.returncode == 0, f"sweep failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads(done.stdout)
    children = [variant["flow_run_id"] for variant in summary["variants"]]
    assert len(children) == 4 and all(children)
    ran_on = {child: [name for name, worker in hosts.items() if ran_here(worker.output(), child)] for child in children}
    assert all(len(names) == 1 for names in ran_on.values()), ran_on
    assert {names[0] for names in ran_on.values()} == set(hosts)  # both workers took children
    with deployments.client_settings():
        validations = task_runs(children, "validate", expected=4)
        limits = {}
        for child in children:
            (match,) = [m for line in flow_run_log_lines(child) if (m := SLOT_LINE.search(line))]
            limits[child] = match.groups()
    assert all(size == "1" and limit == f"gpu-{ran_on[child][0]}" for child, (size, limit) in limits.items())
    for host in hosts:  # on each host, at most its one slot's worth of validate stages at a time
        intervals = [(run.start_time, run.end_time) for run in validations
                     if ran_on[str(run.flow_run_id)][0] == host]
        assert max_overlap(intervals) <= 1
    assert summary["champion"] in {variant["variant"] for variant in summary["variants"]}
