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


# With a place in line (`standby`): the next server starts while one measures; the turn holds only the load.

def _until(condition, timeout_s: float = 10.0) -> None:
    """Wait for `condition()` (another thread's progress); fail rather than hang."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the other thread never got there"
        time.sleep(0.005)


def _start_then_measure(turns: Turns, member: str, repeat: int, placed: threading.Event | None = None,
                        go: threading.Event | None = None) -> None:
    with turns.standby(member, repeat):
        if placed:
            placed.set()
        with turns.turn(member, repeat):
            if go:
                go.wait(10)


def test_one_place_beyond_the_one_measuring_given_up_when_the_turn_begins():
    turns = Turns(["a", "b", "c"])
    b_placed, c_placed, release_a = (threading.Event() for _ in range(3))
    a = threading.Thread(target=_start_then_measure, args=(turns, "a", 0, None, release_a))
    a.start()
    _until(lambda: turns.measured == [("a", 0)])
    b = threading.Thread(target=_start_then_measure, args=(turns, "b", 0, b_placed))
    b.start()
    assert b_placed.wait(10)  # b's server may start while a measures
    c = threading.Thread(target=_start_then_measure, args=(turns, "c", 0, c_placed))
    c.start()
    _until(lambda: (0, 2) in turns._asking)
    assert not c_placed.is_set()  # b holds the one place: c's server does not start yet
    release_a.set()
    assert c_placed.wait(10)  # b's turn began, so its place went to c
    for thread in (a, b, c):
        thread.join(10)
    assert turns.measured == [("a", 0), ("b", 0), ("c", 0)]


def test_a_place_keeps_its_rank_while_its_server_starts():
    turns = Turns(["a", "b"])
    b_placed, b_healthy = threading.Event(), threading.Event()

    def b_starts_slowly():
        with turns.standby("b", 0):
            b_placed.set()
            b_healthy.wait(10)
            with turns.turn("b", 0):
                pass

    b = threading.Thread(target=b_starts_slowly)
    b.start()
    assert b_placed.wait(10)
    a = threading.Thread(target=lambda: _enter_and_leave(turns, "a", 1))
    a.start()
    _until(lambda: (1, 0) in turns._waiting)
    assert turns.measured == []  # a (repeat 1) does not overtake b (repeat 0), whose server is still starting
    b_healthy.set()
    for thread in (a, b):
        thread.join(10)
    assert turns.measured == [("b", 0), ("a", 1)]


def _enter_and_leave(turns: Turns, member: str, repeat: int) -> None:
    with turns.turn(member, repeat):
        pass


def test_a_server_that_fails_to_start_gives_its_place_back():
    turns = Turns(["a", "b"])
    try:
        with turns.standby("a", 0):
            raise RuntimeError("the server exited while starting")
    except RuntimeError:
        pass
    b = threading.Thread(target=_start_then_measure, args=(turns, "b", 0))
    b.start()
    b.join(10)
    assert not b.is_alive()
    assert turns.measured == [("b", 0)]


def test_with_places_in_line_the_order_stays_round_robin_and_a_server_starts_beside_each_measurement():
    turns = Turns(["a", "b", "c"])
    lock = threading.Lock()
    state = {"most_placed": 0, "started_beside": 0, "measuring": False}

    def member(name: str, start_together: threading.Barrier) -> None:
        start_together.wait()
        for repeat in range(3):
            with turns.standby(name, repeat):
                with lock, turns._ready:
                    state["most_placed"] = max(state["most_placed"], len(turns._placed))
                    state["started_beside"] += state["measuring"]
                time.sleep(0.01)  # its server starting
                with turns.turn(name, repeat):
                    with lock:
                        state["measuring"] = True
                    time.sleep(0.05)  # the load
                    with lock:
                        state["measuring"] = False

    barrier = threading.Barrier(3)
    threads = [threading.Thread(target=member, args=(m, barrier)) for m in ("c", "a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    order = turns.measured
    assert sorted(order[:3], key=lambda t: "abc".index(t[0])) == [("a", 0), ("b", 0), ("c", 0)]
    assert order[3:] == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("c", 2)]
    assert state["most_placed"] == 1  # never two servers starting or waiting beyond the one measuring
    assert state["started_beside"] >= 1  # servers did start while another measured
    assert turns.started_beside >= 1  # and Turns counted them (the sweep table's note)


def test_the_sweep_table_says_when_servers_started_beside_a_measurement():
    from engineforge.recipe.file import parse_recipe
    from engineforge.sweep.noise import order_notes

    sweep = parse_recipe("name: s\nmodel:\n  source: synthetic:tiny-llama\nsweep:\n  repeats: 2\n  matrix:\n"
                         "    build.max_batch_size: [1, 4]\n").sweep
    measured = [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert not any("started while another measured" in note for note in order_notes(sweep, False, measured))
    notes = order_notes(sweep, False, measured, started_beside=3)
    assert notes[1].startswith("3 of those servers started while another measured") and notes[2].startswith("Measured in")
