"""A peer's first word after our start is not a revival: on_peer_revived (a restarted gateway
makes risk hold orders until it reconciles; a restarted feed makes the book resync) fires only
for a peer seen before and declared dead since. Its first word arrives when the machine's load
says, so treating it as a restart made replays differ between runs."""

from __future__ import annotations

import time

from ipc.messages import Heartbeat
from processes.actor import Actor, State


class _Probe(Actor):
    name = "risk"

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        self.revived.append(peer)


def heartbeat(process: str) -> Heartbeat:
    return Heartbeat(process=process, pid=1, seq=1, state="running", ts_ns=0, core=-1, msgs_in=0, msgs_out=0)


def test_a_first_word_after_start_is_no_revival_a_return_after_death_is(make_config):
    config, _ = make_config()
    actor = _Probe(config, None)
    actor.revived = []
    try:
        actor.state = State.RUNNING  # we started before hearing from the gateway
        actor._on_control_frame(b"ctl.gateway", heartbeat("gateway"))
        assert actor.revived == [] and actor.liveness.is_alive("gateway")
        later_ns = time.monotonic_ns() + 10 * actor.heartbeat_interval_ns * config.ipc.liveness
        assert actor.liveness.tick(later_ns) == ["gateway"]  # silent: dead
        actor._on_control_frame(b"ctl.gateway", heartbeat("gateway"))
        assert actor.revived == ["gateway"]
    finally:
        actor.close()
