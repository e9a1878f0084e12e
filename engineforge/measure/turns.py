"""Whose measurement is next: one at a time, round-robin, with an idle cooldown between two.

A sweep's variants run side by side as threads of one process; their validate stages ask for a turn
before each repeat they measure. The lowest (repeat, variant) among those waiting goes first, so the
variants that are ready take turns: a1 b1 a2 b2 ..., and slow drift of the host cancels between them
instead of favouring whoever measured first. A variant still building holds no one up; one that
arrives late catches up first. Outside a sweep a run gets its own Turns: only the cooldown applies.

Where two servers may share the device (`RuntimeTraits.servers_share`), the next measurement's
server starts while the current one measures, so a turn holds only the load: a member first takes a
place in line (`standby`, at most `standby` places beyond the one measuring, handed out in the same
(repeat, variant) order), starts its server and waits for it to be healthy, then takes its turn. The
place keeps its rank while the server starts, so no one overtakes it and the order stays round-robin.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator


class Turns:
    def __init__(self, members: list[str], cooldown_s: float = 0.0, standby: int = 1):
        self.members = list(members)
        self.cooldown_s = cooldown_s
        self.standby_limit = standby  # places in line (servers starting or waiting) beyond the one measuring
        self.measured: list[tuple[str, int]] = []  # (member, repeat) in the order they measured
        self.started_beside = 0  # places given while another measured: servers that started beside a measurement
        self._ready = threading.Condition()
        self._waiting: set[tuple[int, int]] = set()  # in line for a turn (a place held counts from when it was given)
        self._asking: set[tuple[int, int]] = set()  # asking for a place in line
        self._placed: set[tuple[int, int]] = set()  # holding a place, not yet measuring
        self._busy = False
        self._last_end: float | None = None

    def _place(self, member: str, repeat: int) -> tuple[int, int]:
        return repeat, self.members.index(member)

    @contextmanager
    def standby(self, member: str, repeat: int) -> Iterator[None]:
        """Block until `member` may hold a place in line for `repeat` (fewer than `standby_limit` held,
        and it is the lowest (repeat, member) asking); inside, its server starts. The place is given up
        when its turn begins, or on leaving without one (a server that failed to start)."""
        place = self._place(member, repeat)
        with self._ready:
            self._asking.add(place)
            self._ready.wait_for(lambda: len(self._placed) < self.standby_limit and min(self._asking) == place)
            self._asking.discard(place)
            self._placed.add(place)
            self._waiting.add(place)
            self.started_beside += self._busy
            self._ready.notify_all()  # the next lowest asker may be next in line for a place
        try:
            yield
        finally:
            with self._ready:
                self._placed.discard(place)
                self._waiting.discard(place)
                self._ready.notify_all()

    @contextmanager
    def turn(self, member: str, repeat: int) -> Iterator[None]:
        """Block until it is `member`'s turn for `repeat` and the cooldown since the last one has passed."""
        place = self._place(member, repeat)
        with self._ready:
            self._waiting.add(place)
            self._ready.wait_for(lambda: not self._busy and min(self._waiting) == place)
            self._waiting.discard(place)
            self._placed.discard(place)  # measuring now: its place in line goes to the next
            self._busy = True
            self.measured.append((member, repeat))
            self._ready.notify_all()
        try:
            if self._last_end is not None:
                time.sleep(max(0.0, self._last_end + self.cooldown_s - time.monotonic()))
            yield
        finally:
            with self._ready:
                self._busy = False
                self._last_end = time.monotonic()
                self._ready.notify_all()


@dataclass(frozen=True)
class Seat:
    """One member's place at a Turns."""

    turns: Turns
    member: str

    def turn(self, repeat: int):
        return self.turns.turn(self.member, repeat)

    def standby(self, repeat: int):
        return self.turns.standby(self.member, repeat)


# The seat of the run this thread executes (set by the sweep for each variant's child); unset: a run of its own.
SEAT: ContextVar[Seat | None] = ContextVar("engineforge_measurement_seat", default=None)


def seat(cooldown_s: float) -> Seat:
    """This run's seat: the sweep's, or its own with the recipe's cooldown."""
    return SEAT.get() or Seat(Turns(["run"], cooldown_s), "run")
