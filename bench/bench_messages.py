"""Encode/decode of every message type (a typed msgpack round trip), and one ZeroMQ ipc hop."""

import tempfile
import uuid

import msgspec
import pytest
import zmq

from ipc import messages as m
from ipc.messages import BookMsg
from ipc.sockets import Codec, recv_topic_payload, send

LEVELS_10 = [(6_000_000 + i, 1000 + i) for i in range(10)]
SAMPLES = {
    "DepthDiff": m.DepthDiff("BTCUSDT", 10, 12, -1, 1, 2, 3, LEVELS_10, LEVELS_10),
    "Trade": m.Trade("BTCUSDT", 1, 6_000_000, 12, 1, 1, 2, 3),
    "BookChanged": m.BookChanged("BTCUSDT", 42, 12, 1, 2, 3),
    "PlaceOrder": m.PlaceOrder("mmdefq1x1", "BTCUSDT", 1, 6_000_000, 100, True, 1, 2, 3, 4, 5),
    "OrderFilled": m.OrderFilled("mmdefq1x1", "BTCUSDT", 1, 6_000_000, 100, 0, 0.01, True, 1, 2),
    "Heartbeat": m.Heartbeat("book", 1, 2, "running", 3, -1, 4, 5, 0),
}
SAMPLES.update({
    "BookSnapshot": m.BookSnapshot("BTCUSDT", 10, 1, 2, 3, LEVELS_10 * 2, LEVELS_10 * 2),
    "BookTicker": m.BookTicker("BTCUSDT", 12, 6_000_000, 10, 6_000_001, 12, 1, 2, 3),
    "SnapshotRequest": m.SnapshotRequest("BTCUSDT", "resync", 1),
    "Barrier": m.Barrier(7, 1),
    "EndOfStream": m.EndOfStream("feed", 100, 1),
    "SignalUpdated": m.SignalUpdated("BTCUSDT", 3, 1, 12),
    "CancelOrder": m.CancelOrder("mmdefq1x1", "BTCUSDT", 1, 2, 3, 4, 5),
    "OrderBatch": m.OrderBatch([m.CancelOrder("mmdefq1x1", "BTCUSDT", 1, 2, 3, 4, 5),
                                m.PlaceOrder("mmdefq1x2", "BTCUSDT", 1, 6_000_000, 100, True, 1, 2, 3, 4, 5)]),
    "CancelAll": m.CancelAll("", "operator", 1),
    "OrderEvents": m.OrderEvents([m.OrderCanceled("mmdefq1x1", "BTCUSDT", 100, 1),
                                  m.OrderAccepted("mmdefq1x2", "17", "BTCUSDT", 1, 6_000_000, 100, 1)]),
    "OrderAccepted": m.OrderAccepted("mmdefq1x1", "17", "BTCUSDT", 1, 6_000_000, 100, 1),
    "OrderRejected": m.OrderRejected("mmdefq1x1", "BTCUSDT", "post-only would cross", 1),
    "OrderCanceled": m.OrderCanceled("mmdefq1x1", "BTCUSDT", 100, 1),
    "RiskRejected": m.RiskRejected("mmdefq1x1", "BTCUSDT", "max_position", 1),
    "Drained": m.Drained("book", "feed", 100, 1),
    "RiskStatus": m.RiskStatus("active", False, 100, 1),
    "BarrierDone": m.BarrierDone("risk", 7, 1),
    "StageReport": m.StageReport("book", "book", '{"gaps": 0}', 1),
    "SetParam": m.SetParam("quoter", "size_lot", "200", 1),
})
UNION = (m.FeedMsg | m.SnapshotRequest | m.BookChanged | m.SignalUpdated | m.OrderCommand | m.OrderEvent
         | m.ControlMsg | m.FeedControl)


@pytest.mark.benchmark(group="messages")
@pytest.mark.parametrize("name", list(SAMPLES))
def test_bench_message_round_trip(benchmark, name: str):
    msg = SAMPLES[name]
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(UNION)
    result = benchmark(lambda: decoder.decode(encoder.encode(msg)))
    assert result == msg


@pytest.mark.benchmark(group="zmq")
def test_bench_zmq_ipc_hop(benchmark):
    ctx = zmq.Context()
    with tempfile.TemporaryDirectory() as tmp:
        address = f"ipc://{tmp}/hop-{uuid.uuid4().hex[:8]}.sock"
        pull = ctx.socket(zmq.PULL)
        pull.bind(address)
        push = ctx.socket(zmq.PUSH)
        push.connect(address)
        msg = SAMPLES["BookChanged"]
        decode = Codec(BookMsg).decode

        def hop():  # the pipeline's own framing: one frame out, one frame in, decoded
            send(push, b"book.BTCUSDT", msg)
            pull.poll(1000)  # the actor's wait for the frame
            topic, payload = recv_topic_payload(pull)
            return topic, decode(payload)

        result = benchmark(hop)
        assert result == (b"book.BTCUSDT", msg)
        push.close(linger=0)
        pull.close(linger=0)
    ctx.term()
