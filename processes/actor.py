"""The common shell of the six actors: config, pinning, sockets, heartbeats, poll loop, drain.

A subclass declares its inputs (socket + handler + which peer's end-of-stream ends it) and
outputs, and implements `setup`, `act_once`, `on_timer`, `send_end_of_stream`. The shell owns
the lifecycle (mm/lifecycle.py), the Paranoid Pirate liveness of every peer, and the shutdown
protocol: stop producing, wait for the upstream end-of-stream markers, forward our own, wait
for downstream `Drained` acknowledgements, then close (ZeroMQ drops a closing socket's queue).
A marker says why (mm/shutdown.py): the pipeline's end stops the stages below too; one program
stopped under supervisord is acknowledged, and they keep running without it.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
import zmq

from ipc.endpoints import ENDPOINTS, pid_path, shm_name, stats_path
from ipc.messages import Barrier, ControlMsg, Drained, EndOfStream, Heartbeat, SetParam, StageReport
from ipc.shm_channel import ChannelReader, ChannelWriter, RingFullError
from ipc.sockets import TOPIC_END, Codec, Publisher, SocketSet, ensure_private_dir, readable, send
from mm.config import PROCESS_NAMES, Config, load_config, run_dir, with_param
from mm.errors import ConfigError
from mm.lifecycle import State, transition
from mm.shutdown import (
    EndReason,
    combine,
    count_up_heartbeats,
    ends_pipeline,
    new_incarnation,
    reason_for_signal,
    upstream_staying,
)
from mm.stats import SampleBuffer, percentiles_ns
from mm.liveness import PeerLiveness
from processes.logsetup import setup_logging
from processes.metrics import StageMetrics

log = logging.getLogger(__name__)

STAGE_REPORT_EVERY_NS = 1_000_000_000
DRAIN_BATCH = 1000  # messages read from one socket before deciding once (bounded drain)
GC_THRESHOLDS = (50_000, 20, 100)  # gen0 allocations, gen0 runs per gen1, gen1 runs per gen2
LIVE_STATES = frozenset({State.RUNNING.value, State.DEGRADED.value, State.STOPPING.value})
_NOBLOCK = int(zmq.NOBLOCK)  # plain ints and the C poll: see ipc.sockets
_POLLIN = int(zmq.POLLIN)
_zmq_poll = zmq.backend.zmq_poll


class Input:
    """One input socket: decode each frame with `codec` and hand it to `handler`."""

    def __init__(self, sock: zmq.Socket, codec: Codec, handler: Callable[[bytes, Any], None],
                 eos_from: str | None) -> None:
        self.sock = sock
        self.codec = codec
        self.handler = handler
        self.eos_from = eos_from
        self.is_zmq = isinstance(sock, zmq.Socket)  # a poll that names it proves a frame waits
        # a plain zmq socket's poll item: Actor._drain asks zmq_poll(timeout 0) directly (ipc.sockets.readable)
        self.poll_items = [(sock, _POLLIN)] if type(sock) is zmq.Socket else None
        self.shm = sock if isinstance(sock, ChannelReader) else None  # drained by Actor._drain_shm
        self.paused = False  # Actor.pause_input: out of the poll set, its drain stops at once


class ShmFanout:
    """What `ipc.sockets.send(fanout, topic, msg)` writes to: one shm channel per reader. A full
    ring is counted and logged by its writer (ipc/shm_channel.py); the other readers still get it."""

    def __init__(self, writers: dict[str, ChannelWriter]) -> None:
        self.writers = writers
        self._all = tuple(writers.values())

    def send(self, data: bytes) -> None:
        for writer in self._all:
            try:
                writer.push(data)
            except RingFullError:
                pass  # counted in writer.full_drops, logged there

    @property
    def full_drops(self) -> int:
        return sum(w.full_drops for w in self._all)


class ShmPublisher:
    """The shm stand-in of a Publisher: `subscribers` are the readers that have attached."""

    def __init__(self, name: str, fanout: ShmFanout) -> None:
        self.name = name
        self.sock = fanout

    @property
    def subscribers(self) -> set[str]:
        return {reader for reader, w in self.sock.writers.items() if w.reader_attached()}


class Actor:
    name: ClassVar[str]
    # publisher endpoint -> the processes that must have subscribed before we announce RUNNING
    consumers: ClassVar[dict[str, tuple[str, ...]]] = {}
    # upstream peers whose end-of-stream we need before forwarding ours
    forward_after: ClassVar[tuple[str, ...]] = ()
    # downstream peers whose Drained(upstream=us) we wait for before closing
    downstream: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config, config_path: str | None, *, owned: bool = False) -> None:
        self.config = config
        self.config_path = config_path
        self.state = State.STARTING
        self.pid = os.getpid()
        self.core = pin_to_core(config, self.name)
        raise_niceness(config, self.name)
        self.sockets = SocketSet(config, self.name)
        self.poller = zmq.Poller()
        self.inputs: list[Input] = []
        self.publishers: list[Publisher] = []
        # the critical path over shared memory (`[ipc] critical_path = "shm"`; tcp stays ZeroMQ)
        self.shm_critical = config.ipc.critical_path == "shm" and config.ipc.transport == "ipc"
        self.shm_publishers: list[ShmPublisher] = []
        self.shm_writers: list[ChannelWriter] = []
        self.shm_readers: list[ChannelReader] = []
        self.msgs_in = 0
        self.msgs_out = 0
        self.lag = 0
        self.decode_errors = 0
        # forked by the launcher (`mm run`), which owns the pipeline and signals every stage to stop
        # it: a signal then ends the pipeline, not only this program (mm/shutdown.py, actor_main)
        self.owned = owned
        self.stop_reason: EndReason | None = None  # set once we are to stop: what our end of stream says
        self.stop_started_ns = 0
        self.eos_seen: dict[str, int] = {}
        self.eos_expected: set[str] = set()
        self.drained_by: set[str] = set()
        self.drained_owed: dict[str, Drained] = {}  # acknowledgements held until the upstream hears us
        self.eos_forwarded = False
        self.subscriptions_polled = True  # our publishers sit in the poll set until we run
        self.peers = tuple(p for p in PROCESS_NAMES if p != self.name)
        interval_ns = int(config.ipc.heartbeat_interval_s * 1e9)
        self.heartbeat_interval_ns = interval_ns
        self.liveness = PeerLiveness(self.peers, interval_ns=interval_ns, liveness=config.ipc.liveness)
        self.peer_heartbeats: dict[str, Heartbeat] = {}
        self.up_heartbeats_in_stop: dict[str, int] = {}  # per peer, since our stop began (mm/shutdown.py)
        self._hb_seq = 0
        self._next_hb_ns = 0
        self._started_ns = time.monotonic_ns()
        self._ctl_codec = Codec(ControlMsg)
        self.metrics: StageMetrics | None = None
        self.restarted = False  # our pid file named a process that died without removing it
        self._next_stage_report_ns = 0
        self.wakeups = 0  # poll returns: each one costs a context switch on a shared core
        self.work_turns = 0  # wakeups that handled messages ...
        self.work_cpu_ns = 0  # ... and this thread's CPU in them, poll excluded: the stage's own work
        # a critical stage's wall time from its wakeup to its first send down the critical path in
        # that turn (`mark_forwarded`): the part of a hop that is our code, the rest is the transport
        # and the scheduler
        self.woke_ns = 0
        self._forwarded_at_wakeup = -1
        self.preforward_ns = SampleBuffer()
        self._cpu_at_running_s = 0.0  # CPU spent on start-up (imports, setup) is not the stage's work
        self._inputs_by_key: dict[Any, Input] = {}  # what a poll names (a socket, an fd) -> its input
        self._resumed: list[Input] = []  # inputs resumed during this turn: drained before it decides
        self._on_ready: dict[Any, Callable[[], None]] = {}  # a subclass's own sockets: served when polled

    # ---- wiring ---------------------------------------------------------------------------

    def add_input(self, sock: zmq.Socket, codec: Codec, handler: Callable[[bytes, Any], None],
                  eos_from: str | None = None) -> Input:
        inp = Input(sock, codec, handler, eos_from)
        self.inputs.append(inp)
        self.poller.register(sock, zmq.POLLIN)
        self._index_inputs()
        if eos_from is not None:
            self.eos_expected.add(eos_from)
        return inp

    def pause_input(self, inp: Input) -> None:
        """Stop reading `inp` (the replay lockstep's gate): what waits there stays queued, in order."""
        if not inp.paused:
            inp.paused = True
            self.poller.unregister(inp.sock)

    def resume_input(self, inp: Input) -> None:
        """Read `inp` again, starting with what queued while it was paused (in this turn: a shm
        doorbell rung while paused may already be spent)."""
        if inp.paused:
            inp.paused = False
            self.poller.register(inp.sock, zmq.POLLIN)
            self._resumed.append(inp)

    def add_ready_handler(self, sock: zmq.Socket, handler: Callable[[], None]) -> None:
        """Poll `sock` too and call `handler` in a turn whose poll named it (after the decision, before
        the timers), not on every turn: a readiness check per turn costs a syscall inside libzmq."""
        self._on_ready[sock] = handler
        self.poller.register(sock, zmq.POLLIN)

    def add_publisher(self, name: str) -> Publisher:
        pub = self.sockets.publisher(name)
        self.publishers.append(pub)
        self.poller.register(pub.sock, zmq.POLLIN)  # subscription frames
        return pub

    # ---- the critical path: shared memory or ZeroMQ, one call either way -------------------------

    def _channel(self, endpoint: str, writer: str, reader: str) -> str:
        return shm_name(self.config, writer, f"{endpoint}-{reader}")

    def _shm_writer(self, endpoint: str, reader: str) -> ChannelWriter:
        # a replay blocks on a full ring while its reader lives (lossless, hence deterministic);
        # live stages give up after a bounded wait, loudly, rather than stall on a stuck peer
        writer = ChannelWriter(self._channel(endpoint, self.name, reader),
                               full_timeout_s=None if self.config.pipeline.mode == "replay" else 0.2)
        self.shm_writers.append(writer)
        return writer

    def _shm_reader(self, endpoint: str, writer: str) -> ChannelReader:
        reader = ChannelReader(self._channel(endpoint, writer, self.name))
        reader.try_attach()  # else on the heartbeat timer, once the writer is up
        self.shm_readers.append(reader)
        return reader

    def critical_publisher(self, name: str) -> Publisher | ShmPublisher:
        """Our publisher `name` (md, book): an XPUB, or one shm channel per `consumers[name]`."""
        if not self.shm_critical:
            return self.add_publisher(name)
        # the critical reader first: each doorbell is a wakeup syscall, and the one rung first wakes first
        readers = sorted(self.consumers.get(name, ()), key=lambda reader: getattr(self.config, reader).nice)
        fanout = ShmFanout({reader: self._shm_writer(name, reader) for reader in readers})
        pub = ShmPublisher(name, fanout)
        self.shm_publishers.append(pub)
        return pub

    def critical_subscriber(self, name: str, topics: list[bytes]) -> Any:
        """Subscribe to publisher `name`: a SUB socket, or our shm channel from its binder."""
        if not self.shm_critical:
            return self.sockets.subscriber([name], topics)
        return self._shm_reader(name, ENDPOINTS[name])

    def loop_publisher(self, name: str) -> Publisher | ShmPublisher:
        """A publisher on a replay's lockstep round trip besides the critical path (signal, risk,
        events): each of its hops is paid once per replayed event, so a replay sends them over shm
        like the critical path; live they stay ZeroMQ (order events for any subscriber)."""
        if self.config.pipeline.mode == "replay":
            return self.critical_publisher(name)
        return self.add_publisher(name)

    def loop_subscriber(self, name: str, topics: list[bytes]) -> Any:
        """Subscribe to a `loop_publisher`."""
        if self.config.pipeline.mode == "replay":
            return self.critical_subscriber(name, topics)
        return self.sockets.subscriber([name], topics)

    def critical_push(self, name: str, reader: str, *, linger_ms: int = 0) -> Any:
        """Send to `name` (intents, orders), which `reader` binds: a PUSH socket or a shm channel."""
        if not self.shm_critical:
            return self.sockets.push(name, linger_ms=linger_ms)
        return self._shm_writer(name, reader)

    def critical_pull(self, name: str, writer: str) -> Any:
        """Receive on `name` (intents, orders) from `writer`: a PULL socket or a shm channel."""
        if not self.shm_critical:
            return self.sockets.pull(name)
        return self._shm_reader(name, writer)

    def shm_full_drops(self) -> int:
        return sum(w.full_drops for w in self.shm_writers)

    def _wire_control(self) -> None:
        self.ctl = self.add_publisher(f"ctl.{self.name}")
        ctl_sub = self.sockets.subscriber([f"ctl.{p}" for p in self.peers], [b"ctl."])
        self.add_input(ctl_sub, self._ctl_codec, self._on_control_frame)

    # ---- hooks for subclasses ---------------------------------------------------------------

    def setup(self) -> None:
        """Create the data sockets (add_input / add_publisher / sockets.push ...)."""

    def act_once(self, now_ns: int) -> None:
        """Decide once after a drained burst."""

    def on_timer(self, now_ns: int) -> None:
        """Periodic work; called every loop turn."""

    def next_timer_ns(self) -> int | None:
        return None

    def on_peer_died(self, peer: str, now_ns: int) -> None:
        pass

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        pass

    def on_running(self) -> None:
        """Sockets are up and every consumer has subscribed (the process just announced RUNNING)."""

    def on_set_param(self, msg: SetParam) -> None:
        key = f"{msg.section}.{msg.key}"
        try:
            self.config = with_param(self.config, key, msg.value)
        except ConfigError as e:  # risk validated it already; a mismatch is a version skew
            log.warning("set %s rejected here: %s", key, e)
            return
        log.info("set %s = %s", key, msg.value)
        self.on_config_changed()

    def on_config_changed(self) -> None:
        pass

    def on_stop_begin(self, now_ns: int) -> None:
        """Entering STOPPING: stop producing new work."""

    def send_end_of_stream(self, now_ns: int) -> None:
        """Flush what must leave first, then send EndOfStream on every data output."""

    def stats(self) -> dict[str, Any]:
        return {}

    def stage_report(self) -> dict[str, Any] | None:
        """A small summary for the console's status, published once a second (None: nothing)."""
        return None

    def _publish_stage_report(self, now_ns: int) -> None:
        if now_ns < self._next_stage_report_ns:
            return
        self._next_stage_report_ns = now_ns + STAGE_REPORT_EVERY_NS
        body = self.stage_report()
        if body is not None:
            self.publish_control(StageReport(process=self.name, kind=self.name, body=json.dumps(body),
                                             ts_ns=time.time_ns()))

    def export_metrics(self, metrics: StageMetrics) -> None:
        """Set this stage's own series (called on the heartbeat timer, never per message)."""

    def flush_metrics(self) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        metrics.add(metrics.messages, self.msgs_in, "in")
        metrics.add(metrics.messages, self.msgs_out, "out")
        metrics.add(metrics.decode_errors, self.decode_errors)
        self.export_metrics(metrics)

    # ---- control plane ------------------------------------------------------------------------

    def _on_control_frame(self, topic: bytes, msg: Any) -> None:
        peer = topic[4:].decode("ascii", "replace")  # b"ctl.<peer>"
        now_ns = time.monotonic_ns()
        seen_before = self.liveness.was_seen(peer)
        revived = False
        if self.liveness.on_frame(peer, now_ns) and self.state != State.STARTING:
            log.info("peer %s alive", peer)
            if seen_before:  # back after being declared dead; a first word after our start is no revival
                revived = True
                self.on_peer_revived(peer, now_ns)
        match msg:
            case Heartbeat():
                self._on_heartbeat(peer, msg, now_ns, revived=revived)
            case Drained(upstream=upstream) if upstream == self.name:
                self.drained_by.add(msg.process)
            case Drained():
                pass
            case SetParam():
                if msg.section == self.name:
                    self.on_set_param(msg)
            case _:
                self.on_control(msg)

    def _on_heartbeat(self, peer: str, msg: Heartbeat, now_ns: int, *, revived: bool) -> None:
        previous = self.peer_heartbeats.get(peer)
        self.peer_heartbeats[peer] = msg
        if self.state == State.STOPPING:
            self.up_heartbeats_in_stop[peer] = count_up_heartbeats(self.up_heartbeats_in_stop.get(peer, 0), msg.state)
        if not new_incarnation(previous.pid if previous is not None else None, msg.pid):
            return
        # restarted (supervisorctl restart, or killed and back before liveness noticed): its end of
        # stream was its previous life's, and it is taken back as a revived peer is
        self.eos_seen.pop(peer, None)
        log.warning("peer %s restarted (pid %d -> %d)", peer, previous.pid, msg.pid)
        if not revived and self.state != State.STARTING:
            self.on_peer_revived(peer, now_ns)

    def on_control(self, msg: Any) -> None:
        pass

    def publish_control(self, msg: msgspec.Struct) -> None:
        send(self.ctl.sock, f"ctl.{self.name}".encode(), msg)

    def heartbeat(self) -> None:
        self._hb_seq += 1
        self.publish_control(Heartbeat(
            process=self.name, pid=self.pid, seq=self._hb_seq, state=self.state.value,
            ts_ns=time.time_ns(), core=self.core, msgs_in=self.msgs_in, msgs_out=self.msgs_out,
            lag=self.lag,
        ))

    def peer_is_up(self, peer: str) -> bool:
        hb = self.peer_heartbeats.get(peer)
        return self.liveness.is_alive(peer) and hb is not None and hb.state in LIVE_STATES

    def set_state(self, target: State) -> None:
        if target == self.state:
            return
        self.state = transition(self.state, target)
        log.info("state %s", target.value)
        self.heartbeat()

    # ---- end of stream -----------------------------------------------------------------------

    def on_end_of_stream(self, upstream: str, msg: EndOfStream) -> None:
        self.eos_seen[upstream] = msg.sent
        self.drained_owed[upstream] = Drained(process=self.name, upstream=upstream, received=msg.sent,
                                              ts_ns=time.time_ns())
        self._settle_drained(late=False)
        if not ends_pipeline(msg.reason):  # its program stopped alone: acknowledged, we stay (liveness sees it gone)
            if not self.stop_requested:
                log.info("end of stream from %s (its program stopped, %d sent): still running", upstream, msg.sent)
            return
        if not self.stop_requested:
            log.info("end of stream from %s: stopping", upstream)
        self.request_stop(EndReason.PIPELINE_END)

    def on_stop_signal(self, *_: Any) -> None:
        """SIGTERM / SIGINT: only sets the reason (STYLE.md), read before the next poll."""
        self.request_stop(reason_for_signal(owned=self.owned))

    @property
    def stop_requested(self) -> bool:
        return self.stop_reason is not None

    def request_stop(self, reason: EndReason = EndReason.PIPELINE_END) -> None:
        """Stop, for `reason` (mm/shutdown.py), which our end of stream carries: a finite stream's end
        ends the pipeline; a signal ends it only when the launcher owns the pipeline."""
        self.stop_reason = combine(self.stop_reason, reason)

    def end_of_stream(self) -> EndOfStream:
        """Our end-of-stream marker: how many messages preceded it, and why we stop."""
        return EndOfStream(process=self.name, sent=self.msgs_out, ts_ns=time.time_ns(),
                           reason=self.stop_reason or EndReason.PIPELINE_END)

    def _heard_by_all(self) -> bool:
        """Every consumer has subscribed to us (or start-up gave up waiting for it). A stage told to
        stop while still starting must not send before: an XPUB drops what no subscriber asked for, so
        an end of stream or a Drained sent then is lost and its receiver waits out the shutdown deadline.
        A peer that has stopped (or died) before subscribing will never subscribe, and needs nothing."""
        return not self.subscriptions_polled or self._ready(gone=self._peers_gone())

    def _peers_gone(self) -> frozenset[str]:
        """Peers whose last heartbeat said they stopped, or that liveness declared dead."""
        stopped = (State.STOPPED.value, State.FAILED.value)
        return frozenset(p for p in self.peers
                         if (self.liveness.was_seen(p) and not self.liveness.is_alive(p))
                         or getattr(self.peer_heartbeats.get(p), "state", None) in stopped)

    def _settle_drained(self, *, late: bool) -> None:
        if self.drained_owed and (late or self._heard_by_all()):
            for drained in self.drained_owed.values():
                self.publish_control(drained)
            self.drained_owed.clear()

    def _upstream_done(self, peer: str) -> bool:
        return (peer in self.eos_seen or (self.liveness.was_seen(peer) and not self.liveness.is_alive(peer))
                or self._upstream_staying(peer))

    def _upstream_staying(self, peer: str) -> bool:
        """We stop alone (a program stop) and `peer` keeps running: its end of stream is not coming."""
        return self.stop_reason is not None and upstream_staying(self.stop_reason,
                                                                 self.up_heartbeats_in_stop.get(peer, 0))

    def _shutdown_step(self, now_ns: int) -> bool:
        """Advance the stop protocol; return True when the process may close."""
        deadline_ns = self.stop_started_ns + int(self.config.ipc.shutdown_deadline_s * 1e9)
        late = now_ns >= deadline_ns
        self._settle_drained(late=late)
        if not self.eos_forwarded:
            if not (self._heard_by_all() or late):
                return False
            if all(self._upstream_done(p) for p in self.forward_after) or late:
                if late:
                    missing = [p for p in self.forward_after if not self._upstream_done(p)]
                    log.warning("shutdown deadline: forwarding end of stream without %s", missing)
                    self.clean_stop = False
                self.send_end_of_stream(now_ns)
                self.eos_forwarded = True
            return False
        inputs_done = all(self._upstream_done(p) for p in self.eos_expected)
        drained = all(p in self.drained_by or not self.liveness.is_alive(p) for p in self.downstream)
        if inputs_done and drained:
            return True
        if late:
            log.warning("shutdown deadline: closing with inputs %s, drained by %s",
                        sorted(set(self.eos_expected) - set(self.eos_seen)), sorted(self.drained_by))
            self.clean_stop = False
            return True
        return False

    # ---- loop ---------------------------------------------------------------------------------

    def _drain(self, inp: Input, *, polled: bool = False) -> int:
        """Handle what waits on one input. `polled`: the poller just said a message does, so the
        first read skips the readiness check (each check is a syscall inside libzmq). `_handle_next`
        inlined: per frame one receive, the decode, the handler and the readiness check."""
        n = 0
        sock = inp.sock
        if not (polled and inp.is_zmq) and not readable(sock):
            return 0
        items = inp.poll_items
        recv = sock.recv
        decode = inp.codec.decoder.decode
        handler = inp.handler
        eos_from = inp.eos_from
        for i in range(DRAIN_BATCH):
            if i and (inp.paused or not (_zmq_poll(items, 0) if items is not None else readable(sock))):
                break
            data = recv(_NOBLOCK)
            end = data.find(TOPIC_END)
            if end <= 0:  # a frame without a topic
                self.decode_errors += 1
                log.warning("dropped a message of the wrong shape (no topic in a frame of %d bytes) on %s", len(data),
                            eos_from or "control")
                continue
            payload = memoryview(data)[end + 1:]
            try:
                msg = decode(payload)
            except (msgspec.DecodeError, UnicodeDecodeError) as e:  # see ipc.sockets.Codec
                self.decode_errors += 1
                log.warning("dropped undecodable frame topic=%r len=%d: %s", data[:end], len(payload), e)
                continue
            kind = type(msg)
            if kind is EndOfStream and eos_from is not None:
                self.on_end_of_stream(eos_from, msg)
                continue
            handler(data[:end], msg)
            if kind is not Barrier:  # replay lockstep markers are not traffic
                n += 1
        if eos_from is not None:
            self.msgs_in += n
        return n

    def _drain_shm(self, inp: Input) -> int:
        """`_drain` of a shared-memory input, inlined: one call per frame to the ring, the decode,
        the handler (no per-message readiness check, socket wrapper or copy of the topic split)."""
        reader = inp.shm
        decode = inp.codec.decoder.decode
        handler = inp.handler
        eos_from = inp.eos_from
        n = 0
        for _ in range(DRAIN_BATCH):
            data = reader.recv_next()
            if data is None:
                break
            end = data.find(TOPIC_END)
            if end <= 0:
                self.decode_errors += 1
                log.warning("dropped a message of the wrong shape (no topic in %d bytes) on %s", len(data),
                            eos_from or "control")
                continue
            try:
                msg = decode(memoryview(data)[end + 1:])
            except (msgspec.DecodeError, UnicodeDecodeError) as e:  # see ipc.sockets.Codec
                self.decode_errors += 1
                log.warning("dropped undecodable frame topic=%r len=%d: %s", data[:end], len(data), e)
                continue
            kind = type(msg)
            if kind is EndOfStream and eos_from is not None:
                self.on_end_of_stream(eos_from, msg)
                continue
            handler(data[:end], msg)
            if kind is not Barrier:  # replay lockstep markers are not traffic
                n += 1
            elif inp.paused:
                break
        if eos_from is not None:
            self.msgs_in += n
        return n

    def _index_inputs(self) -> dict[Any, Input]:
        """What a poll names -> its input: a zmq socket itself, any other object its descriptor."""
        self._inputs_by_key = {inp.sock if inp.is_zmq else inp.sock.fileno(): inp for inp in self.inputs}
        return self._inputs_by_key

    def _poll_timeout_ms(self, now_ns: int) -> int:
        due = self._next_hb_ns
        timer = self.next_timer_ns()
        if timer is not None:
            due = min(due, timer)
        return max(0, min(int(self.config.ipc.heartbeat_interval_s * 1000), -((now_ns - due) // 1_000_000)))

    def _on_heartbeat_timer(self, now_ns: int) -> None:
        if now_ns < self._next_hb_ns:
            return
        self._next_hb_ns = now_ns + self.heartbeat_interval_ns
        for reader in self.shm_readers:  # attach, or leave a dead writer for its successor
            reader.check()
        if self.shm_readers:
            self._index_inputs()  # an attach changes the descriptor a poll names
        self._read_subscriptions()
        self.heartbeat()
        self.flush_metrics()
        self._publish_stage_report(now_ns)
        if self.state == State.STARTING or self.config.pipeline.mode == "replay":
            # a replay's result may not depend on this machine's load: a peer slow to heartbeat
            # (decoding its capture, descheduled) is not dead; one that exits fails the replay
            # in the launcher (processes/launcher.py), which watches the processes themselves
            return
        for peer in self.liveness.tick(now_ns):
            log.error("peer %s silent for %d heartbeats: dead", peer, self.config.ipc.liveness)
            self.on_peer_died(peer, now_ns)

    def _read_subscriptions(self) -> None:
        for pub in self.publishers:
            for who in pub.on_subscriptions():
                log.debug("%s subscribed to %s", who, pub.name)

    def _ready(self, gone: frozenset[str] = frozenset()) -> bool:
        """Every expected consumer of each publisher, but those `gone`, has subscribed."""
        for pub in self.shm_publishers:
            if not set(self.consumers.get(pub.name, ())) - gone <= pub.subscribers:
                return False
        for pub in self.publishers:
            expected = self.consumers.get(pub.name, ())
            if pub.name.startswith("ctl."):
                expected = self.peers
            if not set(expected) - gone <= pub.subscribers:
                return False
        return True

    def _missing_consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for pub in (*self.publishers, *self.shm_publishers):
            expected = self.peers if pub.name.startswith("ctl.") else self.consumers.get(pub.name, ())
            missing = sorted(set(expected) - pub.subscribers)
            if missing:
                out[pub.name] = missing
        return out

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.on_stop_signal)
        self.clean_stop = True
        restarted = self.restarted = write_pid(self.config, self.name, self.pid)
        try:
            if self.config.metrics.port:
                self.metrics = StageMetrics(self.config, self.name)
                if restarted:
                    self.metrics.restarts.labels(self.name).inc()
            self._wire_control()
            self.setup()
            # What start-up made (modules, config, sockets, segments) lives as long as the process:
            # freeze it out of the collector's scans, and collect young objects every GC_THRESHOLDS[0]
            # allocations instead of CPython's 700, which is a collection every few messages.
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            startup_deadline = time.monotonic_ns() + int(self.config.ipc.startup_timeout_s * 1e9)
            while True:
                now_ns = time.monotonic_ns()
                if self.state == State.STARTING:
                    if self._ready():
                        self._enter_running()
                        for peer in self.peers:  # liveness counts from now on
                            if not self.liveness.was_seen(peer):
                                self.liveness.on_frame(peer, now_ns)
                    elif now_ns > startup_deadline:
                        log.warning("starting without subscribers %s", self._missing_consumers())
                        self._enter_running()
                if self.stop_requested and self.state not in (State.STOPPING, State.STOPPED):
                    self.stop_started_ns = now_ns
                    self.set_state(State.STOPPING)
                    self.on_stop_begin(now_ns)
                if self.state == State.STOPPING and self._shutdown_step(now_ns):
                    break
                spun = self._spin()
                self.turn(self.poller.poll(self._poll_timeout_ms(now_ns) if spun is None else spun))
            self.set_state(State.STOPPED)
            self.flush_metrics()
            write_stats(self.config, self.name, {
                "in": self.msgs_in, "out": self.msgs_out, "decode_errors": self.decode_errors,
                "clean_stop": self.clean_stop, "cpu_s": round(cpu_seconds() - self._cpu_at_running_s, 4),
                "wakeups": self.wakeups, "work_turns": self.work_turns, "work_cpu_s": self.work_cpu_ns / 1e9,
                "shm_full_drops": self.shm_full_drops(),
                **({"preforward_ns": percentiles_ns(self.preforward_ns.values())} if len(self.preforward_ns) else {}),
                **self.stats(),
            })
            return 0 if self.clean_stop else 1
        except Exception:
            log.exception("%s failed", self.name)
            if self.state not in (State.STOPPED, State.FAILED):
                self.state = transition(self.state, State.FAILED)
                try:
                    self.heartbeat()  # say FAILED if the control socket is up
                except Exception:  # noqa: BLE001 - already failing; the traceback above is the news
                    pass
            return 1
        finally:
            self.close()
            if self.metrics is not None:
                self.metrics.close(self.pid)
            remove_pid(self.config, self.name, self.pid)

    def turn(self, events: list[tuple[Any, int]]) -> None:
        """One wakeup: drain what the poll named, decide once, then the timers."""
        woke_cpu_ns = time.thread_time_ns()
        self.woke_ns = time.time_ns()
        self.wakeups += 1
        burst = 0
        ready = None
        if events:
            if self.subscriptions_polled:
                self._read_subscriptions()
            by_key = self._inputs_by_key
            for key, _ in events:  # in registration order: the inputs' order
                inp = by_key.get(key)
                if inp is None:
                    if type(key) is not int:
                        handler = self._on_ready.get(key)  # else a publisher's subscriptions
                        if handler is not None:
                            ready = [handler] if ready is None else [*ready, handler]
                        continue
                    inp = self._index_inputs().get(key)  # zmq_poll names a plain descriptor by its number
                    if inp is None:
                        continue
                if not inp.paused:
                    burst += self._drain(inp, polled=True) if inp.shm is None else self._drain_shm(inp)
        while self._resumed:
            inp = self._resumed.pop()
            if not inp.paused:
                burst += self._drain(inp) if inp.shm is None else self._drain_shm(inp)
        self.lag = max(0, burst - 1)
        now_ns = time.monotonic_ns()
        if burst:
            self.act_once(now_ns)
            self.work_turns += 1
            self.work_cpu_ns += time.thread_time_ns() - woke_cpu_ns
        if ready is not None:
            for handler in ready:
                handler()
        self.on_timer(now_ns)
        self._on_heartbeat_timer(now_ns)
        self.woke_ns = 0  # a send outside a turn (end of stream) is not a forward

    def mark_forwarded(self, now_ns: int) -> None:
        """The turn's first message down the critical path leaves at `now_ns` (time.time_ns())."""
        if self._forwarded_at_wakeup != self.wakeups and self.woke_ns:
            self._forwarded_at_wakeup = self.wakeups
            self.preforward_ns.add(now_ns - self.woke_ns)

    def _enter_running(self) -> None:
        """Announce RUNNING. From now on subscriptions are read on the heartbeat timer, not polled:
        every socket in the poll set costs a readiness check (a syscall) on every wakeup."""
        self.set_state(State.RUNNING)
        self._cpu_at_running_s = cpu_seconds()
        self.subscriptions_polled = False
        for pub in self.publishers:
            self.poller.unregister(pub.sock)
        self.on_running()

    def _spin(self) -> int | None:
        """`[ipc] critical_spin_us`: spin on the shm inputs before blocking; 0 (poll at once) when a
        frame showed up, else None (block as usual). Off by default: on shared cores it burns them."""
        spin_ns = self.config.ipc.critical_spin_us * 1000
        if not spin_ns or not self.shm_readers:
            return None
        deadline = time.monotonic_ns() + spin_ns
        readers = self.shm_readers
        while time.monotonic_ns() < deadline:
            for reader in readers:
                if reader.get(0):
                    return 0
        return None

    def close(self) -> None:
        self.sockets.close()
        for channel in (*self.shm_readers, *self.shm_writers):
            channel.close()
        self.shm_readers.clear()
        self.shm_writers.clear()


# ---- process helpers ----------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pin_to_core(config: Config, process: str) -> int:
    """Pin to `cpu` from config; with fewer cores than asked, share one (warned). -1 = unpinned."""
    cpu = getattr(config, process).cpu
    if cpu < 0:
        return -1
    available = sorted(os.sched_getaffinity(0))
    core = core_for(cpu, available)
    if core != cpu:
        log.warning("cpu %d not available (have %s): %s shares core %d", cpu, available, process, core)
    os.sched_setaffinity(0, {core})
    return core


def core_for(cpu: int, available: list[int]) -> int:
    """The core a configured `cpu` lands on: itself when this process may run there, else one of
    the available cores (cpu modulo their count), so a config written for a bigger host still runs."""
    return cpu if cpu in available else available[cpu % len(available)]


def raise_niceness(config: Config, process: str) -> None:
    """Add the configured niceness (`nice = N`): on shared cores the scheduler then lets the
    critical path (feed, book, quoter, risk, gateway) run first when both are ready."""
    increment = getattr(config, process).nice
    if increment:
        os.nice(increment)


def write_pid(config: Config, process: str, pid: int) -> bool:
    """Write our pid file; True when it replaces one of a process that died without removing it."""
    ensure_private_dir(run_dir(config))
    path = pid_path(config, process)
    try:
        previous = int(path.read_text().strip())
    except (OSError, ValueError):
        previous = 0
    path.write_text(f"{pid}\n")
    return previous > 0 and previous != pid


def remove_pid(config: Config, process: str, pid: int) -> None:
    path = pid_path(config, process)
    try:
        if path.read_text().strip() == str(pid):
            path.unlink()
    except OSError:
        pass


def write_stats(config: Config, process: str, stats: dict[str, Any]) -> None:
    path = stats_path(config, process)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats, sort_keys=True))
    os.replace(tmp, path)


def actor_main(actor_cls: type[Actor], argv: list[str] | None = None, *, inherit_logging: bool = False,
               owned: bool = False) -> int:
    """Entry point of `python -m processes.<name>`. A child forked by the launcher (`mm run`) inherits
    its logging and is `owned`: the launcher stops the pipeline by signalling every stage, so a signal
    ends the pipeline. Started alone (supervisord, by hand) a signal stops this program only."""
    parser = argparse.ArgumentParser(prog=f"python -m processes.{actor_cls.name}")
    parser.add_argument("--config", default=None, help="pipeline config (TOML); default: built-in sim")
    parser.add_argument("--log-format", choices=("text", "json"), default=None, help="overrides [log] format")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"mm {actor_cls.name}: {e}", file=sys.stderr)
        return 2
    if inherit_logging:
        import multiprocessing

        multiprocessing.current_process().name = actor_cls.name
    else:
        setup_logging(config.log.level, actor_cls.name, args.log_format or config.log.format)
    actor = actor_cls(config, args.config, owned=owned)
    profile_dir = os.environ.get("MM_PROFILE_DIR")  # a developer's cProfile of each process's run
    if not profile_dir:
        return actor.run()
    import cProfile

    profiler = cProfile.Profile(time.thread_time_ns, 1e-9) if os.environ.get("MM_PROFILE_CPU") else cProfile.Profile()
    try:
        return profiler.runcall(actor.run)
    finally:
        profiler.dump_stats(os.path.join(profile_dir, f"{actor_cls.name}.prof"))

