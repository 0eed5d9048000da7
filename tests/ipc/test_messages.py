"""Every IPC message round-trips through msgpack; bad frames give DecodeError, never a crash."""

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipc import messages as m
from mm.orders import TradeSide
from mm.shutdown import EndReason
from ipc.sockets import Codec

ALL_MESSAGES = [cls for cls in vars(m).values()
                if isinstance(cls, type) and issubclass(cls, m.Msg) and cls is not m.Msg]
ANY_MSG = m.FeedMsg | m.FeedControl | m.BookChanged | m.SignalUpdated | m.OrderCommand | m.OrderEvent \
    | m.ControlMsg
INT64 = st.integers(-(2**63), 2**63 - 1)
LEVELS = st.lists(st.tuples(INT64, INT64), max_size=30)
BY_TYPE = {int: INT64, str: st.text(max_size=40), bool: st.booleans(),
           float: st.floats(allow_nan=False), m.Levels: LEVELS, TradeSide: st.sampled_from(TradeSide),
           EndReason: st.sampled_from(EndReason)}


def strategy_for(cls: type) -> st.SearchStrategy:
    if cls is m.OrderBatch:
        return st.builds(m.OrderBatch, commands=st.lists(
            st.one_of(strategy_for(m.PlaceOrder), strategy_for(m.CancelOrder)), max_size=4))
    if cls is m.OrderEvents:
        return st.builds(m.OrderEvents, events=st.lists(st.one_of(
            *(strategy_for(c) for c in (m.OrderAccepted, m.OrderRejected, m.OrderCanceled, m.OrderFilled))),
            max_size=4))
    if cls is m.VenueState:
        return st.builds(m.VenueState, process=st.text(max_size=8), pid=INT64, seq=INT64, position_lot=INT64,
                         ts_ns=INT64, orders=st.lists(st.builds(m.VenueOrder, client_id=st.text(max_size=8),
                                                                side=st.sampled_from(TradeSide), px_tick=INT64,
                                                                leaves_lot=INT64), max_size=4))
    fields = {f.name: BY_TYPE[f.type] for f in msgspec.structs.fields(cls)}
    return st.builds(cls, **fields)


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_message_round_trips_through_union(cls: type, data: st.DataObject):
    msg = data.draw(strategy_for(cls))
    decoded = msgspec.msgpack.Decoder(ANY_MSG).decode(msgspec.msgpack.encode(msg))
    assert decoded == msg and type(decoded) is cls


def test_a_side_other_than_buy_or_sell_is_refused_on_decode():
    place = m.PlaceOrder(client_id="a", symbol="X", side=TradeSide.BUY, px_tick=1, qty_lot=1, post_only=True,
                         ts_recv_ns=0, ts_feed_ns=0, ts_book_ns=0, ts_quoter_ns=0)
    wire = msgspec.msgpack.encode(place)
    assert msgspec.msgpack.decode(wire)[3] == 1  # an int on the wire
    bad = msgspec.msgpack.encode([*msgspec.msgpack.decode(wire)[:3], 2, *msgspec.msgpack.decode(wire)[4:]])
    with pytest.raises(msgspec.ValidationError, match="Invalid enum value 2"):
        msgspec.msgpack.Decoder(ANY_MSG).decode(bad)


def test_message_wire_is_positional_and_tagged():
    msg = m.EndOfStream(process="feed", sent=3, ts_ns=9)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(msg)) == ["endofstream", "feed", 3, 9, "pipeline_end"]


def test_an_end_of_stream_without_a_reason_is_the_pipelines_end_and_an_unknown_reason_is_refused():
    decoder = msgspec.msgpack.Decoder(ANY_MSG)
    older = decoder.decode(msgspec.msgpack.encode(["endofstream", "feed", 3, 9]))  # a stage from before the field
    assert older == m.EndOfStream(process="feed", sent=3, ts_ns=9, reason=EndReason.PIPELINE_END)
    with pytest.raises(msgspec.ValidationError, match="Invalid enum value 'pause'"):
        decoder.decode(msgspec.msgpack.encode(["endofstream", "feed", 3, 9, "pause"]))


@pytest.mark.parametrize("payload", [b"", b"\xc1", msgspec.msgpack.encode(["nosuchtag", 1]),
                                     msgspec.msgpack.encode(["trade", "BTC"]),
                                     msgspec.msgpack.encode(["trade", "X", 1, "px", 1, 1, 1, 1, 1])])
def test_decode_bad_frame_raises_decode_error(payload: bytes):
    with pytest.raises(msgspec.DecodeError):
        msgspec.msgpack.Decoder(m.FeedMsg).decode(payload)


CODEC = Codec(ANY_MSG)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.builds(lambda tag, rest: msgspec.msgpack.encode([tag]) [:1] + tag + rest,
                           st.binary(max_size=12), st.binary(max_size=40))))
def test_codec_random_bytes_raise_only_decode_error(payload: bytes):
    try:
        CODEC.decode(payload)
    except msgspec.DecodeError:
        pass


def test_codec_invalid_utf8_tag_is_decode_error():
    with pytest.raises(msgspec.DecodeError, match="UTF-8"):
        CODEC.decode(b"\xdd\x00\x00\x00\x01\xa6\x00\x00\x00\x00\x00\x80")


def test_place_order_new_field_default_keeps_old_frames_readable():
    old = ["placeorder", "c1", "BTC", 1, 100, 5, True, 1, 2, 3, 4]  # written before ts_risk_ns existed
    msg = msgspec.msgpack.Decoder(m.OrderCommand).decode(msgspec.msgpack.encode(old))
    assert msg.ts_risk_ns == 0
