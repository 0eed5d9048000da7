"""A stage told to stop while still starting waits for its consumers' subscriptions before it
sends its end of stream (an XPUB drops what nobody asked for), but not for a peer that has already
stopped or died: that one never subscribes, and waiting for it cost every stage below the shutdown
deadline (`mm run` exited 1, "did not stop cleanly", on a SIGTERM just after start-up)."""

from __future__ import annotations

import time

from ipc.messages import Heartbeat
from processes.actor import Actor, State


class _Starting(Actor):
    name = "gateway"


def heartbeat(process: str, state: str) -> Heartbeat:
    return Heartbeat(process=process, pid=1, seq=1, state=state, ts_ns=0, core=-1, msgs_in=0, msgs_out=0)


def test_a_stopped_or_dead_peer_is_not_waited_for(make_config):
    config, _ = make_config()
    actor = _Starting(config, None)
    try:
        actor._wire_control()  # as run() does first: our control publisher, the peers' subscriber
        assert actor.state == State.STARTING and actor.subscriptions_polled
        assert not actor._heard_by_all()  # nobody has subscribed to our control publisher yet
        peers = list(actor.peers)
        *stopped, silent = peers
        for peer in stopped:
            actor._on_control_frame(f"ctl.{peer}".encode(), heartbeat(peer, "stopped"))
        actor._on_control_frame(f"ctl.{silent}".encode(), heartbeat(silent, "running"))
        assert not actor._heard_by_all()  # `silent` is alive and has not subscribed: still wait
        later_ns = time.monotonic_ns() + 10 * actor.heartbeat_interval_ns * config.ipc.liveness
        assert silent in actor.liveness.tick(later_ns)  # then it goes quiet: dead
        assert actor._heard_by_all()
        actor._on_control_frame(f"ctl.{silent}".encode(), heartbeat(silent, "starting"))  # restarted
        assert not actor._heard_by_all()
    finally:
        actor.close()
