"""GPU scheduling against a real Prefect server: a worker declares two GPU slots, five runs are
submitted at once (four here, with distinct validation settings, and test_submission.py's tiny recipe:
one worker and one submission for both files, tests/prefect_services.py `worker_a_runs`), and no more than
two GPU stages ever hold GPUs at the same time.

This machine has no GPU, so the worker runs with ENGINEFORGE_GPU_STAGES=validate: the validate
stage takes a slot as it would when serving on a GPU (engineforge/gpu_slots.py).
"""

import json
import re

import pytest
from prefect_services import GPU_RUNS, GPU_SLOTS, flow_run_log_lines, task_runs

pytestmark = pytest.mark.integration

SLOTS = GPU_SLOTS
RUNS = GPU_RUNS + 1  # and the tiny recipe of test_submission.py
DEVICE_LINE = re.compile(r"validate holds 1 of (\d+) GPU slot\(s\) of (\S+): CUDA_VISIBLE_DEVICES=(\S+)")


def max_overlap(intervals: list[tuple]) -> int:
    """The most intervals open at one instant (an end and a start at the same instant do not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    open_now = most = 0
    for _, step in events:
        open_now += step
        most = max(most, open_now)
    return most


def test_max_overlap_counts_intervals_open_together():
    assert max_overlap([(0, 2), (1, 3), (2, 4)]) == 2
    assert max_overlap([(0, 5), (1, 2), (1, 3), (4, 6)]) == 3
    assert max_overlap([(0, 1), (1, 2)]) == 1


def test_five_runs_on_two_gpu_slots_never_overlap_more_than_two_gpu_stages(deployments, worker_a_runs):
    done = worker_a_runs.done

    assert done.returncode == 0, f"submit failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    runs = json.loads(done.stdout)
    assert [run["state"] for run in runs] == ["Completed"] * RUNS
    flow_run_ids = [run["flow_run_id"] for run in runs]
    with deployments.client_settings():
        validations = task_runs(flow_run_ids, "validate", expected=RUNS)
        devices = {}
        for flow_run_id in flow_run_ids:
            (line,) = [match for line in flow_run_log_lines(flow_run_id) if (match := DEVICE_LINE.search(line))]
            devices[flow_run_id] = line.groups()
    assert len(validations) == RUNS and all(run.state.is_completed() for run in validations)
    assert all("| validate | ran |" in run["summary"] for run in runs)
    intervals = {str(run.flow_run_id): (run.start_time, run.end_time) for run in validations}
    print(f"validate stages at once: at most {max_overlap(list(intervals.values()))}; devices:",
          sorted(device for _, _, device in devices.values()))
    assert max_overlap(list(intervals.values())) <= SLOTS
    assert {(size, limit) for size, limit, _ in devices.values()} == {(str(SLOTS), devices[flow_run_ids[0]][1])}
    assert {device for _, _, device in devices.values()} <= {str(index) for index in range(SLOTS)}
    for first in flow_run_ids:  # validate stages running at the same time got different GPUs
        for second in flow_run_ids:
            a, b = intervals[first], intervals[second]
            if first < second and a[0] < b[1] and b[0] < a[1]:
                assert devices[first][2] != devices[second][2]
