"""Whose measurement is next: one at a time, round-robin, with an idle cooldown between two.

A sweep's variants run side by side as threads of one process; their validate stages ask for a turn
before each repeat they measure. The lowest (repeat, variant) among those waiting goes first, so the
variants that are ready take turns: a1 b1 a2 b2 ..., and slow drift of the host cancels between them
instead of favouring whoever measured first. A variant still building holds no one up; one that
arrives late catches up first. Outside a sweep a run gets its own Turns: only the cooldown applies.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator


class Turns:
    def __init__(self, members: list[str], cooldown_s: float = 0.0):
        self.members = list(members)
        self.cooldown_s = cooldown_s
        self.measured: list[tuple[str, int]] = []  # (member, repeat) in the order they measured
        self._ready = threading.Condition()
        self._waiting: set[tuple[int, int]] = set()
        self._busy = False
        self._last_end: float | None = None

    @contextmanager
    def turn(self, member: str, repeat: int) -> Iterator[None]:
        """Block until it is `member`'s turn for `repeat` and the cooldown since the last one has passed."""
        place = (repeat, self.members.index(member))
        with self._ready:
            self._waiting.add(place)
            self._ready.wait_for(lambda: not self._busy and min(self._waiting) == place)
            self._waiting.discard(place)
            self._busy = True
            self.measured.append((member, repeat))
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


# The seat of the run this thread executes (set by the sweep for each variant's child); unset: a run of its own.
SEAT: ContextVar[Seat | None] = ContextVar("engineforge_measurement_seat", default=None)


def seat(cooldown_s: float) -> Seat:
    """This run's seat: the sweep's, or its own with the recipe's cooldown."""
    return SEAT.get() or Seat(Turns(["run"], cooldown_s), "run")
