"""The actor shell acts on an end of stream's reason (mm/shutdown.py): one program's stop is
acknowledged and the stage keeps running; the pipeline's end stops it; a stage stopping alone stops
waiting for an upstream that plainly stays up; a restarted peer (another pid) is taken back and its
previous life's end of stream forgotten."""

from __future__ import annotations

import signal
import time

from ipc.messages import EndOfStream, Heartbeat
from mm.shutdown import STAYING_AFTER_HEARTBEATS, EndReason
from processes.actor import Actor, State


class _Book(Actor):
    name = "book"
    forward_after = ("feed",)

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        self.revived.append(peer)


def _book(config, *, owned: bool = False) -> _Book:
    actor = _Book(config, None, owned=owned)
    actor.revived = []
    actor._wire_control()  # as run() does first: the Drained acknowledgements go out on it
    actor.subscriptions_polled = False  # running: subscriptions are no longer awaited
    actor.state = State.RUNNING
    return actor


def heartbeat(process: str, state: str, pid: int = 100) -> Heartbeat:
    return Heartbeat(process=process, pid=pid, seq=1, state=state, ts_ns=0, core=-1, msgs_in=0, msgs_out=0)


def end_of_stream(reason: EndReason) -> EndOfStream:
    return EndOfStream(process="feed", sent=7, ts_ns=0, reason=reason)


def test_a_program_stop_upstream_is_acknowledged_and_the_stage_keeps_running(make_config):
    config, _ = make_config()
    actor = _book(config)
    try:
        actor.on_end_of_stream("feed", end_of_stream(EndReason.PROGRAM_STOP))
        assert not actor.stop_requested and actor.eos_seen == {"feed": 7}
        assert actor.drained_owed == {}  # the Drained went out: the leaving feed may close
        actor.on_end_of_stream("feed", end_of_stream(EndReason.PIPELINE_END))
        assert actor.stop_reason is EndReason.PIPELINE_END
        assert actor.end_of_stream().reason is EndReason.PIPELINE_END
    finally:
        actor.close()


def test_a_signal_stops_the_pipeline_only_when_the_launcher_owns_it(make_config):
    config, _ = make_config()
    for owned, reason in ((True, EndReason.PIPELINE_END), (False, EndReason.PROGRAM_STOP)):
        actor = _book(config, owned=owned)
        try:
            actor.on_stop_signal(signal.SIGTERM, None)
            assert actor.stop_reason is reason
            assert actor.end_of_stream().reason is reason
        finally:
            actor.close()


def test_stopping_alone_waits_for_the_upstream_until_it_plainly_stays_up(make_config):
    config, _ = make_config()
    actor = _book(config)
    try:
        actor._on_control_frame(b"ctl.feed", heartbeat("feed", "running"))  # before our stop: not counted
        actor.request_stop(EndReason.PROGRAM_STOP)
        actor.state = State.STOPPING
        for _ in range(STAYING_AFTER_HEARTBEATS - 1):
            actor._on_control_frame(b"ctl.feed", heartbeat("feed", "running"))
            assert not actor._upstream_done("feed")
        actor._on_control_frame(b"ctl.feed", heartbeat("feed", "running"))
        assert actor._upstream_done("feed")  # its end of stream is not coming

        group = _book(config)  # a group stop: the feed says STOPPING and its end of stream follows
        try:
            group.request_stop(EndReason.PROGRAM_STOP)
            group.state = State.STOPPING
            for state in ("running", "running", "stopping", *["stopping"] * STAYING_AFTER_HEARTBEATS):
                group._on_control_frame(b"ctl.feed", heartbeat("feed", state))
                assert not group._upstream_done("feed")
            group.on_end_of_stream("feed", end_of_stream(EndReason.PROGRAM_STOP))
            assert group._upstream_done("feed")
        finally:
            group.close()
    finally:
        actor.close()


def test_at_the_pipelines_end_a_running_upstream_is_still_waited_for(make_config):
    config, _ = make_config()
    actor = _book(config)
    try:
        actor.request_stop(EndReason.PIPELINE_END)
        actor.state = State.STOPPING
        for _ in range(3 * STAYING_AFTER_HEARTBEATS):
            actor._on_control_frame(b"ctl.feed", heartbeat("feed", "running"))
        assert not actor._upstream_done("feed")
    finally:
        actor.close()


def test_a_restarted_peer_is_revived_once_and_its_old_end_of_stream_forgotten(make_config):
    config, _ = make_config()
    actor = _book(config)
    try:
        actor._on_control_frame(b"ctl.feed", heartbeat("feed", "running", pid=100))
        actor.on_end_of_stream("feed", end_of_stream(EndReason.PROGRAM_STOP))
        actor._on_control_frame(b"ctl.feed", heartbeat("feed", "stopped", pid=100))
        assert actor.revived == [] and "feed" in actor.eos_seen
        actor._on_control_frame(b"ctl.feed", heartbeat("feed", "starting", pid=101))  # back before liveness noticed
        assert actor.revived == ["feed"] and "feed" not in actor.eos_seen
        actor._on_control_frame(b"ctl.feed", heartbeat("feed", "running", pid=101))
        assert actor.revived == ["feed"]
        later_ns = time.monotonic_ns() + 10 * actor.heartbeat_interval_ns * config.ipc.liveness
        assert actor.liveness.tick(later_ns) == ["feed"]  # silent: dead, then back in a third life
        actor._on_control_frame(b"ctl.feed", heartbeat("feed", "starting", pid=102))
        assert actor.revived == ["feed", "feed"]  # once: liveness saw the revival, the pid adds none
    finally:
        actor.close()
