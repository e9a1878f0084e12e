"""Turns: one measurement at a time, round-robin over the members waiting, with a cooldown between two."""

import threading
import time

from engineforge.measure.turns import Turns


def measure_all(turns: Turns, member: str, repeats: int, starts: list, start_together: threading.Barrier) -> None:
    start_together.wait()
    for repeat in range(repeats):
        with turns.turn(member, repeat):
            starts.append((member, repeat, time.monotonic()))
            time.sleep(0.02)


def test_members_ready_together_take_turns_round_robin_with_the_cooldown_between():
    turns = Turns(["a", "b", "c"], cooldown_s=0.05)
    starts: list = []
    barrier = threading.Barrier(3)
    threads = [threading.Thread(target=measure_all, args=(turns, m, 3, starts, barrier)) for m in ("c", "a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    order = [(member, repeat) for member, repeat, _ in starts]
    # The first turn goes to whoever asked first; from then on the lowest (repeat, member) waiting.
    assert sorted(order[:3], key=lambda t: "abc".index(t[0])) == [("a", 0), ("b", 0), ("c", 0)]
    assert order[3:] == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("c", 2)]
    assert turns.measured == order
    gaps = [later - earlier for (_, _, earlier), (_, _, later) in zip(starts, starts[1:])]
    assert min(gaps) >= 0.02 + 0.05 - 0.005  # the measurement, then the cooldown


def test_a_member_not_yet_waiting_holds_no_one_up():
    turns = Turns(["slow", "fast"])
    for repeat in range(3):
        with turns.turn("fast", repeat):
            pass
    assert turns.measured == [("fast", 0), ("fast", 1), ("fast", 2)]
