"""The shared-memory critical-path channel (ipc/shm_channel.py): frames in order across the ring's
end, a full ring that fails loudly, a reader and writer in separately started processes, a dead
writer's successor re-attached to, SIGTERM leaving no segment, socket file or descriptor."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import pytest
import zmq

from ipc.messages import EndOfStream, Heartbeat
from ipc.shm import SHM_DIR
from ipc.shm_channel import ChannelReader, ChannelWriter, RingFullError, bell_address
from ipc.sockets import Codec, frame, readable, recv_topic_payload, send
from tests.conftest import wait_until

TOPIC = b"ctl.test"
CODEC = Codec(Heartbeat | EndOfStream)

# A writer in its own interpreter: waits for its reader, sends `count` heartbeats numbered from
# `first`, then an EndOfStream, then holds until SIGTERM (closing the channel, like an actor).
WRITER = r"""
import signal, sys, time
from ipc.messages import EndOfStream, Heartbeat
from ipc.shm_channel import ChannelWriter
from ipc.sockets import send
segment, count, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
writer = ChannelWriter(segment, capacity=4096, full_timeout_s=None)  # waits while the reader lives: a loaded CI box
try:
    print("up", flush=True)
    deadline = time.monotonic() + 10
    while not writer.reader_attached() and time.monotonic() < deadline:
        time.sleep(0.005)
    for seq in range(first, first + count):
        send(writer, b"ctl.test", Heartbeat(process="w", pid=0, seq=seq, state="running", ts_ns=seq,
                                            core=-1, msgs_in=0, msgs_out=0))
    send(writer, b"ctl.test", EndOfStream(process="w", sent=count, ts_ns=0))
    print("sent", flush=True)
    signal.pause()
finally:
    writer.close()
"""


def heartbeat(seq: int, pad: int = 0) -> Heartbeat:
    return Heartbeat(process="w" * (1 + pad), pid=0, seq=seq, state="running", ts_ns=seq, core=-1,
                     msgs_in=0, msgs_out=0)


@pytest.fixture
def channel(shm_name):
    return shm_name("md-reader", writer="writer")


def doorbell_listening(segment: str) -> bool:
    """Whether the writer's abstract doorbell socket is bound (/proc/net/unix shows it as @name)."""
    with open("/proc/net/unix") as table:
        return any(line.split()[-1] == f"@{segment}.bell" for line in table.readlines()[1:] if len(line.split()) > 7)


def receive(reader: ChannelReader, poller: zmq.Poller, until_eos: bool = True, timeout_s: float = 10.0) -> list:
    """Poll like the actor does (blocking, no spin) and decode frames until an EndOfStream. The
    deadline is time, not a count of wakeups: a writer slower than its reader rings once a frame."""
    got: list = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not poller.poll(100):
            reader.check()
            continue
        while readable(reader):
            topic, payload = recv_topic_payload(reader)
            assert topic == TOPIC
            msg = CODEC.decode(payload)
            got.append(msg)
            if isinstance(msg, EndOfStream) and until_eos:
                return got
    raise AssertionError(f"no EndOfStream within {timeout_s} s; got {len(got)} messages")


def test_frames_arrive_in_order_across_the_end_of_the_ring(channel):
    segment = channel
    writer = ChannelWriter(segment, capacity=512)
    reader = ChannelReader(segment)
    try:
        assert reader.try_attach() and writer.reader_attached()
        sent = [heartbeat(i, pad=i % 37) for i in range(300)]  # sizes vary: records straddle the end
        for i, msg in enumerate(sent):
            send(writer, TOPIC, msg)
            if i % 3 == 2:  # the reader lags by up to three frames
                while readable(reader):
                    assert CODEC.decode(recv_topic_payload(reader)[1]) == sent[reader.received - 1]
        while readable(reader):
            assert CODEC.decode(recv_topic_payload(reader)[1]) == sent[reader.received - 1]
        assert reader.received == writer.sent == 300
        assert not readable(reader)
    finally:
        reader.close()
        writer.close()


def test_the_doorbell_wakes_a_poll_and_is_cleared_once_drained(channel):
    segment = channel
    writer = ChannelWriter(segment, capacity=4096)
    reader = ChannelReader(segment)
    poller = zmq.Poller()
    poller.register(reader, zmq.POLLIN)
    try:
        assert not poller.poll(0)  # placeholder descriptor: nothing, and no error
        assert reader.try_attach()
        assert not poller.poll(0)
        send(writer, TOPIC, heartbeat(1))
        send(writer, TOPIC, heartbeat(2))
        assert poller.poll(1000)
        assert [CODEC.decode(recv_topic_payload(reader)[1]).seq for _ in range(2)] == [1, 2]
        assert not readable(reader)  # clears the bell ...
        assert not poller.poll(0)  # ... so the poll blocks again: no busy loop
    finally:
        reader.close()
        writer.close()


def test_a_full_ring_fails_loudly_and_counts(channel, caplog):
    segment = channel
    writer = ChannelWriter(segment, capacity=256, full_timeout_s=0.05)
    reader = ChannelReader(segment)
    try:
        assert reader.try_attach()
        payload = frame(TOPIC, heartbeat(0))
        fits = 256 // ((len(payload) + 11) & ~7)
        for _ in range(fits):
            writer.push(payload)
        with caplog.at_level(logging.ERROR, "ipc.shm_channel"), pytest.raises(RingFullError, match="ring full"):
            writer.push(payload)
        assert writer.full_drops == 1
        assert "message NOT sent (full_drops=1)" in caplog.text
        with pytest.raises(RingFullError):  # still full: fails at once, no second stall
            writer.push(payload)
        assert writer.full_drops == 2
        while readable(reader):
            reader.recv()
        assert reader.received == fits
        with caplog.at_level(logging.ERROR, "ipc.shm_channel"):
            writer.push(payload)
        assert "2 messages were NOT sent while full" in caplog.text
        assert readable(reader) and reader.recv() == payload
    finally:
        reader.close()
        writer.close()


def test_a_replay_writer_waits_on_a_full_ring_while_its_reader_lives(channel, caplog):
    segment = channel
    writer = ChannelWriter(segment, capacity=256, full_timeout_s=None)
    reader = ChannelReader(segment)
    try:
        assert reader.try_attach()
        payload = frame(TOPIC, heartbeat(0))
        fits = 256 // ((len(payload) + 11) & ~7)
        for _ in range(fits):
            writer.push(payload)
        full = threading.Event()
        drained: list[bytes] = []

        def drain_once_the_writer_waits() -> None:
            full.wait(10)
            while readable(reader):
                drained.append(reader.recv())

        drainer = threading.Thread(target=drain_once_the_writer_waits)
        drainer.start()
        full.set()
        writer.push(payload)  # waits (no timeout) until the drainer makes room: nothing lost
        drainer.join(10)
        assert writer.full_drops == 0 and len(drained) >= 1
        while readable(reader):
            drained.append(reader.recv())
        assert len(drained) == fits + 1
        for _ in range(fits):
            writer.push(payload)
        reader.close()  # the reader goes away: the waiting writer gives up, loudly
        with caplog.at_level(logging.ERROR, "ipc.shm_channel"), pytest.raises(RingFullError):
            writer.push(payload)
        assert writer.full_drops == 1 and "its reader gone" in caplog.text
    finally:
        reader.close()
        writer.close()


def test_unrelated_processes_and_a_restarted_writer(channel, python_process):
    segment = channel
    reader = ChannelReader(segment)  # starts before any writer: attaches on its timer
    poller = zmq.Poller()
    poller.register(reader, zmq.POLLIN)
    try:
        first = python_process(WRITER, segment, "200", "0")
        got = receive(reader, poller)
        assert [m.seq for m in got[:-1]] == list(range(200)) and got[-1].sent == 200
        assert first.stdout.readline() == "up\n" and first.stdout.readline() == "sent\n"
        first_generation = reader.generation
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        assert not reader.writer_alive()
        second = python_process(WRITER, segment, "50", "1000")
        got = receive(reader, poller)
        assert [m.seq for m in got[:-1]] == list(range(1000, 1050))
        assert reader.reattaches == 1 and reader.generation != first_generation
        assert reader.writer_pid == second.pid
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0
        wait_until(lambda: not reader.check(), 5, what="reader sees the writer gone")
        assert not os.path.exists(f"{SHM_DIR}/{segment}") and not doorbell_listening(segment)
    finally:
        reader.close()


def test_a_restarted_reader_goes_on_where_its_predecessor_stopped(channel):
    segment = channel
    writer = ChannelWriter(segment, capacity=4096)
    try:
        first = ChannelReader(segment)
        assert first.try_attach()
        for seq in range(5):
            send(writer, TOPIC, heartbeat(seq))
        assert [CODEC.decode(recv_topic_payload(first)[1]).seq for _ in range(2)] == [0, 1]
        first.close()
        assert not writer.reader_attached()
        second = ChannelReader(segment)
        assert second.try_attach() and writer.reader_attached()
        seqs = []
        while readable(second):
            seqs.append(CODEC.decode(recv_topic_payload(second)[1]).seq)
        assert seqs == [2, 3, 4]
        second.close()
    finally:
        writer.close()


# run alone in a fresh process: another test's threads in a pytest worker open and close
# descriptors of their own while this one counts
CLOSE_CHECK = r"""
import os, sys
from ipc.messages import Heartbeat
from ipc.shm_channel import ChannelReader, ChannelWriter
from ipc.sockets import send
segment = sys.argv[1]
warm = ChannelWriter(segment + "-warm")  # what a process opens once (shared memory's resource tracker)
warm.close()
fds_before = set(os.listdir("/proc/self/fd"))
writer = ChannelWriter(segment)
reader = ChannelReader(segment)
assert reader.try_attach()
send(writer, b"ctl.test", Heartbeat(process="w", pid=0, seq=1, state="running", ts_ns=1, core=-1, msgs_in=0,
                                    msgs_out=0))
print("open", flush=True)
sys.stdin.readline()
reader.close()
writer.close()
left = set(os.listdir("/proc/self/fd")) - fds_before
print("closed", sorted(left), flush=True)
"""


def test_closing_leaves_no_segment_socket_file_or_descriptor(channel, python_process):
    segment = channel
    proc = python_process(CLOSE_CHECK, segment)
    assert proc.stdout.readline().strip() == "open", proc.stderr.read()
    assert os.path.exists(f"{SHM_DIR}/{segment}") and doorbell_listening(segment)
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "closed []", proc.stderr.read()  # no descriptor left open
    assert not os.path.exists(f"{SHM_DIR}/{segment}") and not doorbell_listening(segment)


def test_a_slow_joiner_loses_nothing_and_recv_next_drains_like_get_and_recv(channel):
    """A reader that attaches after the writer has published (the consumer started late) gets every
    frame from the first, woken by the doorbell its attach rings; `recv_next` (the actor's drain)
    returns them in order, then None, and leaves the doorbell cleared."""
    segment = channel
    writer = ChannelWriter(segment, capacity=4096)
    reader = ChannelReader(segment)
    poller = zmq.Poller()
    poller.register(reader, zmq.POLLIN)
    try:
        sent = [heartbeat(i) for i in range(20)]
        for msg in sent:  # nobody has attached yet
            send(writer, TOPIC, msg)
        assert not writer.reader_attached() and reader.recv_next() is None
        assert reader.check()  # the heartbeat timer's attach
        assert poller.poll(1000)
        got = []
        while (data := reader.recv_next()) is not None:
            topic, _, payload = data.partition(b" ")
            assert topic == TOPIC
            got.append(CODEC.decode(payload))
        assert got == sent
        assert not poller.poll(0)  # the bell is cleared: the next poll blocks
        send(writer, TOPIC, heartbeat(99))
        assert poller.poll(1000) and CODEC.decode(reader.recv_next().partition(b" ")[2]).seq == 99
    finally:
        reader.close()
        writer.close()


def test_a_segment_name_too_long_for_its_doorbell_address_is_refused_by_name(channel):
    segment = channel + "x" * 120
    with pytest.raises(ValueError, match=r"doorbell address is 1\d\d bytes, a unix socket allows 107: choose a "
                                         r"shorter \[pipeline\] instance"):
        ChannelWriter(segment)
    assert not os.path.exists(os.path.join(SHM_DIR, segment))  # refused before anything was made


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to ask from another uid")
def test_the_doorbell_is_handed_only_to_a_peer_of_our_own_uid(channel):
    """An abstract socket has no file mode, so the writer checks the peer's credentials."""
    segment = channel
    writer = ChannelWriter(segment)
    try:
        child = os.fork()
        if child == 0:  # another uid asks for the eventfd: it gets a closed connection, no descriptor
            code = 1
            try:
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2.0)
                    s.connect(bell_address(segment))
                    msg, fds, _, _ = socket.recv_fds(s, 8, 1)
                    code = 0 if (msg, fds) == (b"", []) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        reader = ChannelReader(segment)
        assert reader.try_attach()  # our own uid still gets it
        reader.close()
    finally:
        writer.close()
