"""Every message that crosses a process boundary, as tagged frozen msgspec Structs.

Wire: one frame per message, `topic SPACE payload` (ipc/sockets.py `frame`), payload msgpack of an
array_like Struct tagged by its class name. Stamps: `ts_recv_ns` is the receive time of the market
event that caused the message (the capture's time in replay), `ts_feed_ns` the wall clock when the
event entered the pipeline, and each later stage adds `ts_<stage>_ns`; tick-to-order is
`gateway send - ts_feed_ns`.
Rules: commands imperative, events past tense; new fields go last with defaults, never reorder.
Side is +1 buy / -1 sell. Prices and sizes are int ticks and lots.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mm.orders import TradeSide
from mm.shutdown import EndReason

Levels = list[tuple[int, int]]  # (px_tick, qty_lot); qty 0 removes the level


class Msg(msgspec.Struct, frozen=True, array_like=True, tag_field="t", tag=str.lower):
    """Base of every IPC message: immutable, positional on the wire, tagged by class name."""


# ---- market data: feed -> book (and the gateway's fill model in sim / replay) ----------------


class BookSnapshot(Msg, gc=False):
    symbol: str
    last_id: int
    ts_event_ns: int
    ts_recv_ns: int
    ts_feed_ns: int
    bids: Levels
    asks: Levels


class DepthDiff(Msg, gc=False):
    symbol: str
    first_id: int  # venue update ids this diff covers (Binance U, u)
    final_id: int
    prev_final_id: int  # futures `pu`; -1 where the venue has none (spot)
    ts_event_ns: int
    ts_recv_ns: int
    ts_feed_ns: int
    bids: Levels
    asks: Levels


class Trade(Msg):
    symbol: str
    trade_id: int
    px_tick: int
    qty_lot: int
    taker_side: TradeSide  # +1 the aggressor bought (lifted the ask), -1 it sold
    ts_event_ns: int
    ts_recv_ns: int
    ts_feed_ns: int


class BookTicker(Msg):
    symbol: str
    update_id: int
    bid_px_tick: int
    bid_qty_lot: int
    ask_px_tick: int
    ask_qty_lot: int
    ts_event_ns: int
    ts_recv_ns: int
    ts_feed_ns: int


class SnapshotRequest(Msg):
    """book -> feed: (re)send a snapshot of `symbol` in-stream, because of `reason`."""

    symbol: str
    reason: str
    ts_ns: int


LOCKSTEP_WINDOW = 256  # replay barriers the feed may run ahead of the book (bounds what queues)
LOCKSTEP_ACK_EVERY = 64  # the book tells the feed every this many barriers it has cleared


class Barrier(Msg):
    """Replay lockstep: flows down both paths after the events it follows; every stage handles
    what came before it first, then passes it on (deterministic replay, see processes/feed.py)."""

    seq: int
    ts_ns: int


class EndOfStream(Msg):
    """The last message a stage sends downstream; `sent` counts what preceded it; `reason`
    (mm/shutdown.py): the pipeline's end stops the receivers too, one program's stop (under
    supervisord) is acknowledged and they keep running."""

    process: str
    sent: int
    ts_ns: int
    reason: EndReason = EndReason.PIPELINE_END


# ---- book -> signal, quoter; signal -> quoter -------------------------------------------------


class BookChanged(Msg):
    """The shared-memory top-of-book slot `seq` now holds update `update_id` of `symbol`."""

    symbol: str
    seq: int
    update_id: int
    ts_recv_ns: int
    ts_feed_ns: int
    ts_book_ns: int


class SignalUpdated(Msg):
    symbol: str
    seq: int
    ts_ns: int
    update_id: int = -1  # the book update the prediction was computed on


# ---- order path: quoter -> risk -> gateway ----------------------------------------------------


class PlaceOrder(Msg):
    client_id: str
    symbol: str
    side: TradeSide
    px_tick: int
    qty_lot: int
    post_only: bool
    ts_recv_ns: int
    ts_feed_ns: int
    ts_book_ns: int
    ts_quoter_ns: int
    ts_risk_ns: int = 0


class CancelOrder(Msg):
    client_id: str
    symbol: str
    ts_recv_ns: int
    ts_feed_ns: int
    ts_book_ns: int
    ts_quoter_ns: int
    ts_risk_ns: int = 0


class OrderBatch(Msg, gc=False):
    """The commands of one quote decision in one frame: one wakeup per hop, not one per order."""

    commands: list[PlaceOrder | CancelOrder]


class CancelAll(Msg):
    symbol: str  # "" = every symbol; only this pipeline's own orders
    reason: str
    ts_ns: int


OrderCommand = PlaceOrder | CancelOrder | OrderBatch | CancelAll | Barrier | EndOfStream


# ---- order events: gateway -> risk, quoter ----------------------------------------------------


class OrderAccepted(Msg):
    client_id: str
    venue_order_id: str
    symbol: str
    side: TradeSide
    px_tick: int
    qty_lot: int
    ts_ns: int


class OrderRejected(Msg):
    client_id: str
    symbol: str
    reason: str
    ts_ns: int


class OrderCanceled(Msg):
    client_id: str
    symbol: str
    leaves_lot: int
    ts_ns: int


class OrderFilled(Msg):
    client_id: str
    symbol: str
    side: TradeSide
    px_tick: int
    qty_lot: int
    leaves_lot: int
    fee_quote: float  # fee paid in quote currency (negative = rebate)
    is_maker: bool
    ts_event_ns: int
    ts_ns: int


class RiskRejected(Msg):
    """risk -> quoter: a command of the quoter's that a pre-trade check refused."""

    client_id: str
    symbol: str
    reason: str
    ts_ns: int


class OrderEvents(Msg, gc=False):
    """The venue's answers to one burst in one frame: one wakeup of risk and the quoter, not one each."""

    events: list[OrderAccepted | OrderRejected | OrderCanceled | OrderFilled]


def unbatched(msg: Any) -> Any:
    """The messages one frame of the events channel carries, in order: an OrderEvents' events, or itself."""
    return msg.events if type(msg) is OrderEvents else (msg,)


OrderEvent = (OrderAccepted | OrderRejected | OrderCanceled | OrderFilled | OrderEvents | RiskRejected | Barrier
              | EndOfStream)


# ---- control: every process's ctl PUB ---------------------------------------------------------


class Heartbeat(Msg):
    process: str
    pid: int
    seq: int
    state: str
    ts_ns: int
    core: int  # -1 when not pinned
    msgs_in: int
    msgs_out: int
    lag: int = 0  # frames waiting at the last poll


class Drained(Msg):
    """`process` has consumed `upstream`'s end-of-stream marker: upstream may close."""

    process: str
    upstream: str
    received: int
    ts_ns: int


class RiskStatus(Msg):
    trading: str  # active / reducing / halted
    paused: bool
    position_lot: int
    ts_ns: int
    size_ratio: float = 1.0  # soft stop: quote sizes x this
    widen_ticks: float = 0.0  # soft stop: half-spread + this


class BarrierDone(Msg):
    """`process` has handled everything up to replay barrier `seq`."""

    process: str
    seq: int
    ts_ns: int


class StageReport(Msg):
    """A stage's periodic summary for the console (`kind` e.g. "latency"; `body` JSON)."""

    process: str
    kind: str
    body: str
    ts_ns: int


class VenueOrder(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One of our orders as the venue holds it."""

    client_id: str
    side: TradeSide
    px_tick: int
    leaves_lot: int


class VenueState(Msg, gc=False):
    """gateway -> risk, quoter, console: what the venue holds, our open orders and the account's
    position, at start and once a second. Sequenced (the Clone pattern's snapshot): a reader keeps
    the newest `seq`; a restarted gateway starts again from 1 and is told by its new pid."""

    process: str
    pid: int
    seq: int
    orders: list[VenueOrder]
    position_lot: int
    ts_ns: int


class SetParam(Msg):
    """risk -> all: an operator changed a runtime parameter (validated already)."""

    section: str
    key: str
    value: str
    ts_ns: int


FeedMsg = BookSnapshot | DepthDiff | Trade | BookTicker | Barrier | EndOfStream
FeedControl = SnapshotRequest | BarrierDone  # BarrierDone: the book's replay lockstep progress
BookMsg = BookChanged | Barrier | EndOfStream
SignalMsg = SignalUpdated | Barrier | EndOfStream
ControlMsg = Heartbeat | Drained | RiskStatus | SetParam | StageReport | VenueState


# ---- operator console: REQ/REP on the control endpoint (JSON for humans) ----------------------


class ConsoleRequest(msgspec.Struct, frozen=True, kw_only=True):
    command: str
    args: list[str] = []


class ConsoleReply(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    result: dict = {}
    error: str = ""
