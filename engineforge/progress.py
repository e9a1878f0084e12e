"""Stage progress events for whoever shows them (the CLI's live table, tests).

Listeners are process-wide because Prefect runs tasks in worker threads of the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engineforge.stage import StageResult


class Listener(Protocol):
    def stage_started(self, stage: str, key: str | None) -> None: ...
    def stage_finished(self, result: "StageResult") -> None: ...


_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def started(stage: str, key: str | None = None) -> None:
    for listener in list(_listeners):
        listener.stage_started(stage, key)


def finished(result: "StageResult") -> None:
    for listener in list(_listeners):
        listener.stage_finished(result)
