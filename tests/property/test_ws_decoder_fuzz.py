"""Hypothesis fuzzes the feed client's frame path (decode -> ticks -> de-duplication -> delivery)
with broken and hostile frames: nothing raises past the feed's boundary (`_on_payload`, called
from picows's on_ws_frame); a frame that yields no message is a counted drop, and every message
delivered holds int64 ids, prices > 0 and quantities >= 0 (the grid's ticks and lots).

36 000 Hypothesis examples, each checking several frames derived from it (12 000 x 4 + 10 000 x 6
+ 6 000 x 6 + 8 000 x 2 = 160 000 frames): Hypothesis costs ~0.5 ms per example here, so this
keeps the run well under a minute while fuzzing more than 100 000 frames.
"""

from __future__ import annotations

import json
import os
import random

import msgspec
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ipc.messages import BookTicker, DepthDiff, Trade
from mm.ticks import grid_from_sizes
from processes.binance_ws import BinanceStreamClient

INT64_MAX = 2**63 - 1
GRID = grid_from_sizes("BTCUSDT", "0.01", "0.00001", 8, 8)

VALID_FRAMES = [
    b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT",'
    b'"U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],["61730.17000000","0.00100000"]],'
    b'"a":[["61837.64000000","1.54698000"],["61839.85000000","0.00000000"]]}}',
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,'
    b'"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}',
    b'{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000",'
    b'"B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}',
    b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"BTCUSDT","a":15683430,'
    b'"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}',
    b'{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":9,"pu":6,"b":[],"a":[]},"stream":"btcusdt@depth"}',
    b'{"result":null,"id":1}',
]

HOSTILE_TEXT = [
    "NaN", "nan", "-0", "-1.00000000", "1e5", "1E-8", "inf", "-Infinity", "", " ", "0x10", "1_000",
    "1.000000001", "99999999999999999999.00000000", "１２３", "0.00000000", "00001.00000000",
    "1.", ".5", "+1.00000000", "1.0000000\u0000", "61737.63000000", "0.00100000", "9" * 70,
]


class _Conn:
    """The only things `_on_payload` uses of a connection: identity and close()."""

    def __init__(self) -> None:
        self.closed_with = ""

    def close(self, reason: str) -> None:
        self.closed_with = reason


def make_client() -> tuple[BinanceStreamClient, _Conn, list]:
    client = BinanceStreamClient(
        "ws://127.0.0.1:1/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker/ethusdt@trade",
        grids={"BTCUSDT": GRID},
    )
    conn = _Conn()
    client._active = conn  # type: ignore[assignment]
    delivered: list = []
    client._on_message = delivered.append
    return client, conn, delivered


CLIENT, CONN, DELIVERED = make_client()


def check_frame(payload: bytes) -> None:
    """The boundary: never raises; each frame is delivered, or dropped with a counted reason."""
    client = CLIENT
    DELIVERED.clear()
    client._last_id.clear()  # every frame on its own, so de-duplication does not hide decoding
    before = client.counts.total()
    client._on_payload(CONN, payload, 1_700_000_000_000_000_000)
    assert client._fatal is None
    if DELIVERED:
        (message,) = DELIVERED
        match message:
            case DepthDiff():
                assert 0 <= message.first_id <= message.final_id <= INT64_MAX
                assert 0 <= message.ts_event_ns <= INT64_MAX
                for px, qty in [*message.bids, *message.asks]:
                    assert 0 < px <= INT64_MAX and 0 <= qty <= INT64_MAX
            case Trade():
                assert 0 < message.px_tick <= INT64_MAX and 0 <= message.qty_lot <= INT64_MAX
                assert 0 <= message.ts_event_ns <= INT64_MAX and message.taker_side in (1, -1)
            case BookTicker():
                assert message.bid_px_tick > 0 and message.ask_px_tick > 0
                assert message.bid_qty_lot >= 0 and message.ask_qty_lot >= 0
            case _:
                raise AssertionError(f"unexpected message {message!r}")
        msgspec.msgpack.encode(message)  # fits the wire: every int within int64
    else:
        assert client.counts.total() > before, f"frame dropped without a counted reason: {payload[:120]!r}"


FULL_FUZZ = os.environ.get("MM_FUZZ_FULL") == "1"


def fuzz(examples: int) -> settings:
    """`examples` under `make test-slow` (MM_FUZZ_FULL=1); a fifth of them in `make test`, to keep it short."""
    return settings(max_examples=examples if FULL_FUZZ else examples // 5, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck))


STREAM_PREFIXES = [b"", b'{"stream":"btcusdt@depth@100ms","data":', b'{"stream":"btcusdt@trade","data":',
                   b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT",']


@fuzz(12_000)
@given(st.binary(max_size=160))
def test_ws_decoder_random_bytes_counted_drop(noise: bytes) -> None:
    """Noise alone, and behind each stream's prefix so it reaches the payload decoders."""
    for prefix in STREAM_PREFIXES:
        check_frame(prefix + noise)


@fuzz(10_000)
@given(st.binary(min_size=3, max_size=9))
def test_ws_decoder_mutated_frames_never_raise(edit: bytes) -> None:
    """Each valid frame with bytes cut at one place and others inserted (all drawn from `edit`)."""
    for frame in VALID_FRAMES:
        at = (edit[0] * 256 + edit[1]) % (len(frame) + 1)
        cut = edit[2] % 9
        check_frame(frame[:at] + edit[3:] + frame[at + cut:])


HOSTILE_VALUES = [
    *HOSTILE_TEXT, None, True, False, 0, -1, 1, 2**63, 2**63 - 1, -(2**63) - 1, 2**64, 10**30, 1.5, -0.0,
    1e308, [], {}, [["1", "1"]], [[1, 2]], [["61737.63000000"]], [["61737.63000000", "1.0", "x"]], "x" * 70,
]
DEPTH_TEMPLATE = {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT", "U": 50093239189, "u": 50093239202,
                  "b": [["61737.63000000", "0.00000000"]], "a": [["61837.64000000", "1.54698000"]]}
TRADE_TEMPLATE = {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259, "p": "61837.63000000",
                  "q": "0.02000000", "T": 1723161255342, "m": True}
TICKER_TEMPLATE = {"u": 50093239212, "s": "BTCUSDT", "b": "61837.63000000", "B": "3.78826000",
                   "a": "61837.64000000", "A": "1.54698000"}
TEMPLATES = [("btcusdt@depth@100ms", DEPTH_TEMPLATE), ("btcusdt@trade", TRADE_TEMPLATE),
             ("btcusdt@aggTrade", TRADE_TEMPLATE), ("btcusdt@bookTicker", TICKER_TEMPLATE),
             ("ethusdt@trade", TRADE_TEMPLATE), ("xyz@depth", DEPTH_TEMPLATE)]


@fuzz(6_000)
@given(st.lists(st.tuples(st.integers(0, 15), st.sampled_from(HOSTILE_VALUES)), min_size=1, max_size=3))
def test_ws_decoder_hostile_fields_counted_drop(edits: list) -> None:
    """Each valid frame with 1-3 fields replaced by hostile values, or deleted (slots past the end)."""
    for stream, template in TEMPLATES:
        data = dict(template)
        keys = list(template)
        for slot, value in edits:
            if slot < len(keys):
                data[keys[slot]] = value
            else:
                data.pop(keys[slot % len(keys)], None)
        check_frame(json.dumps({"stream": stream, "data": data}).encode())


@fuzz(8_000)
@given(
    st.lists(st.tuples(st.sampled_from(HOSTILE_TEXT), st.sampled_from(HOSTILE_TEXT)), max_size=4),
    st.integers(0, 2**64), st.integers(-2, 2**64),
)
def test_ws_decoder_hostile_numbers_rejected_or_exact(bids: list, first_id: int, span: int) -> None:
    """Spot and futures diffs with hostile prices, quantities and ids: exact ticks or a counted drop."""
    data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first_id, "u": first_id + span, "b": bids, "a": bids[::-1]}
    check_frame(json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode())
    data["pu"] = first_id - 1
    check_frame(json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode())


def test_ws_decoder_deep_nesting_and_huge_frames_counted() -> None:
    for payload in (
        b'{"stream":"btcusdt@depth@100ms","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"stream":"btcusdt@depth@100ms","data":{"b":' + b"[" * 50_000,
        b'{"stream":"' + b"a" * 100_000,
        b'{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"' + b"9" * 100_000 + b'","q":"1","T":1,"m":true}}',
        bytes(random.Random(5).randrange(256) for _ in range(100_000)),
    ):
        check_frame(payload)
