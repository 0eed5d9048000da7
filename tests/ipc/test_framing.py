"""The one-frame `topic SPACE payload` framing of every pipeline message, and what an actor does with
a frame without a topic or with an undecodable body: count it, name it, keep everything that follows."""

from __future__ import annotations

import logging

import pytest
import zmq

from ipc.messages import FeedMsg, Trade
from ipc.sockets import Codec, readable, recv_topic_payload, send
from processes.actor import Actor


def _trade(trade_id: int) -> Trade:
    return Trade(symbol="BTCUSDT", trade_id=trade_id, px_tick=100, qty_lot=1, taker_side=1, ts_event_ns=1,
                 ts_recv_ns=2, ts_feed_ns=3)


@pytest.fixture
def pipe():
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind("inproc://framing")
    push = ctx.socket(zmq.PUSH)
    push.connect("inproc://framing")
    yield push, pull
    push.close(linger=0)
    pull.close(linger=0)
    ctx.term()


def _wait_readable(sock: zmq.Socket) -> None:
    assert sock.poll(2000, zmq.POLLIN), "no message arrived within 2 s"


def test_send_and_receive_round_trip_topic_and_body(pipe):
    push, pull = pipe
    assert not readable(pull)
    send(push, b"md.BTCUSDT", _trade(7))
    _wait_readable(pull)
    topic, payload = recv_topic_payload(pull)
    assert topic == b"md.BTCUSDT"
    assert Codec(FeedMsg).decode(payload) == _trade(7)
    assert not readable(pull)


def test_one_frame_per_message_and_the_topic_is_its_prefix(pipe):
    push, pull = pipe
    send(push, b"md.BTCUSDT", _trade(9))
    _wait_readable(pull)
    data = pull.recv()
    assert not pull.get(zmq.RCVMORE)
    assert data.startswith(b"md.BTCUSDT ")  # what a SUB socket's prefix subscription matches


def test_frames_without_a_topic_raise_and_the_next_message_is_intact(pipe):
    push, pull = pipe
    push.send(b"lonely")
    push.send(b" starts with the separator")
    push.send(b"")
    send(push, b"md.BTCUSDT", _trade(8))
    _wait_readable(pull)
    with pytest.raises(ValueError, match="no topic in a frame of 6 bytes"):
        recv_topic_payload(pull)
    with pytest.raises(ValueError, match="no topic"):
        recv_topic_payload(pull)
    with pytest.raises(ValueError, match="no topic in a frame of 0 bytes"):
        recv_topic_payload(pull)
    topic, payload = recv_topic_payload(pull)
    assert topic == b"md.BTCUSDT"
    assert Codec(FeedMsg).decode(payload) == _trade(8)


class _Probe(Actor):
    name = "book"


def test_actor_drain_counts_bad_messages_and_keeps_the_good_ones(make_config, pipe, caplog):
    push, pull = pipe
    config, _ = make_config()
    actor = _Probe(config, None)
    got: list[Trade] = []
    try:
        actor.add_input(pull, Codec(FeedMsg), lambda topic, msg: got.append(msg), eos_from="feed")
        send(push, b"md.BTCUSDT", _trade(1))
        push.send(b"no_topic")
        push.send(b"md.BTCUSDT \xc1 not msgpack")
        push.send_multipart([b"md.BTCUSDT", b"x"])  # two frames: each is read as a message of its own
        send(push, b"md.BTCUSDT", _trade(2))
        _wait_readable(pull)
        with caplog.at_level(logging.WARNING):
            handled = 0
            while len(got) < 2 and pull.poll(2000, zmq.POLLIN):
                handled += actor._drain(actor.inputs[-1])
    finally:
        actor.close()
    assert [t.trade_id for t in got] == [1, 2]
    assert handled == 2 and actor.msgs_in == 2
    assert actor.decode_errors == 4
    assert "wrong shape (no topic in a frame of 8 bytes)" in caplog.text
    assert "wrong shape (no topic in a frame of 10 bytes)" in caplog.text  # b"md.BTCUSDT", the first of two
    assert "wrong shape (no topic in a frame of 1 bytes)" in caplog.text  # b"x"
    assert "undecodable frame topic=b'md.BTCUSDT'" in caplog.text


def test_actor_drain_of_an_input_with_nothing_waiting_reads_nothing(make_config, pipe):
    """A drain outside the poll loop (the gateway collects the venue's last events at stop) may
    find the input empty: it returns 0, never a NOBLOCK read's zmq.Again."""
    push, pull = pipe
    config, _ = make_config()
    actor = _Probe(config, None)
    got: list[Trade] = []
    try:
        actor.add_input(pull, Codec(FeedMsg), lambda topic, msg: got.append(msg))
        assert actor._drain(actor.inputs[-1]) == 0
        send(push, b"md.BTCUSDT", _trade(3))
        _wait_readable(pull)
        assert actor._drain(actor.inputs[-1]) == 1
        assert actor._drain(actor.inputs[-1]) == 0
    finally:
        actor.close()
    assert [t.trade_id for t in got] == [3]
