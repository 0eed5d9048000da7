"""Encode/decode of each hot-path message, and one ZeroMQ ipc hop (send + receive, one process)."""

import tempfile
import uuid

import msgspec
import pytest
import zmq

from ipc import messages as m

LEVELS_10 = [(6_000_000 + i, 1000 + i) for i in range(10)]
SAMPLES = {
    "DepthDiff": m.DepthDiff("BTCUSDT", 10, 12, -1, 1, 2, 3, LEVELS_10, LEVELS_10),
    "Trade": m.Trade("BTCUSDT", 1, 6_000_000, 12, 1, 1, 2, 3),
    "BookChanged": m.BookChanged("BTCUSDT", 42, 12, 1, 2, 3),
    "PlaceOrder": m.PlaceOrder("mmdefq1x1", "BTCUSDT", 1, 6_000_000, 100, True, 1, 2, 3, 4, 5),
    "OrderFilled": m.OrderFilled("mmdefq1x1", "BTCUSDT", 1, 6_000_000, 100, 0, 0.01, True, 1, 2),
    "Heartbeat": m.Heartbeat("book", 1, 2, "running", 3, -1, 4, 5, 0),
}
UNION = m.FeedMsg | m.BookChanged | m.PlaceOrder | m.OrderFilled | m.Heartbeat


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
        frames = [b"md.BTCUSDT", msgspec.msgpack.encode(SAMPLES["BookChanged"])]

        def hop():
            push.send_multipart(frames)
            return pull.recv_multipart()

        result = benchmark(hop)
        assert result == frames
        push.close(linger=0)
        pull.close(linger=0)
    ctx.term()
