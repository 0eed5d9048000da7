"""Process lifecycle: one transition table for all six actors (Nautilus-style).

STARTING -> RUNNING <-> DEGRADED -> STOPPING -> STOPPED; FAILED from anywhere.
DEGRADED means alive but not quoting (a peer went silent, data went stale).
"""

from __future__ import annotations

import enum

from mm.errors import IllegalTransitionError


class State(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


_TRANSITIONS: dict[State, frozenset[State]] = {
    State.STARTING: frozenset({State.RUNNING, State.STOPPING, State.FAILED}),
    State.RUNNING: frozenset({State.DEGRADED, State.STOPPING, State.FAILED}),
    State.DEGRADED: frozenset({State.RUNNING, State.STOPPING, State.FAILED}),
    State.STOPPING: frozenset({State.STOPPED, State.FAILED}),
    State.STOPPED: frozenset(),
    State.FAILED: frozenset(),
}


def transition(current: State, target: State) -> State:
    """Return `target` if the table allows current -> target, else raise."""
    if target not in _TRANSITIONS[current]:
        raise IllegalTransitionError(f"lifecycle: illegal transition {current.value} -> {target.value}")
    return target


def allowed(current: State) -> frozenset[State]:
    return _TRANSITIONS[current]
