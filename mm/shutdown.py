"""Why a stage stops, and what its end-of-stream marker tells the stages below it.

Every `EndOfStream` (ipc/messages.py) carries one of two reasons:
- `PIPELINE_END`: the stream is finite and has ended (a replay reached the end of its capture, a
  synthetic feed its event limit), or the pipeline's owner stops every stage (`mm run` at the end of
  `--duration` or on its own SIGTERM / Ctrl-C). The marker cascades: each stage below drains, forwards
  its own marker and stops, so no message is lost.
- `PROGRAM_STOP`: one program was told to stop and nobody owns the pipeline (SIGTERM under
  supervisord: `supervisorctl stop|restart mm:feed`). The stages below acknowledge the marker (so the
  leaving stage closes without losing what it sent) and keep running; they see the peer gone by its
  heartbeats, as they see a dead one, and take it back when it starts again. A group stop
  (`supervisorctl stop mm:*`) signals every program at once, so each stops on its own signal and still
  drains what its upstream sent: a stopping stage waits for its upstream's marker unless that
  upstream plainly stays up.
"""

from __future__ import annotations

import enum

from mm.lifecycle import State


class EndReason(enum.Enum):
    PIPELINE_END = "pipeline_end"  # every stage stops: drain and cascade
    PROGRAM_STOP = "program_stop"  # only the sender stops: acknowledge and keep running


# A stage stopping on its own signal stops waiting for an upstream's end of stream once that upstream
# has said RUNNING (or DEGRADED) in this many heartbeats in a row since our stop began. A group stop
# signals every program within milliseconds (supervisord: the downstream ones first), so an upstream
# being stopped says it is up at most three times in that while: once before its own signal arrives,
# and in the turn its signal ends (a timer heartbeat, and a state change's) before the heartbeat that
# says STOPPING (the handler only sets a flag, read before the next poll). More means it was not told
# to stop and its marker is not coming. Counted, not timed, so a descheduled upstream is never taken
# for one that stays.
STAYING_AFTER_HEARTBEATS = 4
_UP_STATES = frozenset({State.RUNNING.value, State.DEGRADED.value})


def reason_for_signal(*, owned: bool) -> EndReason:
    """SIGTERM / SIGINT to a stage: the end of the pipeline when `mm run` owns it (it signals every
    stage), else a stop of this one program."""
    return EndReason.PIPELINE_END if owned else EndReason.PROGRAM_STOP


def combine(current: EndReason | None, new: EndReason) -> EndReason:
    """The reason a stage forwards: the end of the pipeline wins over a stop of one program (a stage
    told to stop alone that then hears its upstream's pipeline end passes the end on)."""
    if EndReason.PIPELINE_END in (current, new):
        return EndReason.PIPELINE_END
    return EndReason.PROGRAM_STOP


def ends_pipeline(reason: EndReason) -> bool:
    """Does an upstream's end of stream with `reason` stop the stage that receives it?"""
    return reason is EndReason.PIPELINE_END


def count_up_heartbeats(count: int, state: str) -> int:
    """A peer's heartbeats in a row saying it is up (RUNNING / DEGRADED), `count` before this one
    that says `state`."""
    return count + 1 if state in _UP_STATES else 0


def upstream_staying(reason: EndReason, up_heartbeats: int) -> bool:
    """While we stop for `reason`: is an upstream that has said it is up in `up_heartbeats` heartbeats
    in a row since our stop began staying up, so that its end of stream will not come? Never at the
    end of the pipeline: there every upstream ends, and its marker must be drained."""
    return reason is EndReason.PROGRAM_STOP and up_heartbeats >= STAYING_AFTER_HEARTBEATS


def new_incarnation(previous_pid: int | None, pid: int) -> bool:
    """A heartbeat naming another pid than the peer's previous one: the peer was restarted (what it
    said before, its end of stream included, was its previous life's)."""
    return previous_pid is not None and previous_pid != pid
