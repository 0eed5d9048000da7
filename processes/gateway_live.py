"""The gateway's real venue: the Binance adapter (processes/binance_adapter.py, ccxt async) in its
own asyncio thread. Commands go in with `call_soon_threadsafe`; the venue's answers come back as
order events over an inproc PUSH/PULL pair (the PUSH socket lives in the asyncio thread).

Our pipeline's client ids map to the adapter's venue client ids (prefix + instance + seq, made
idempotent by the adapter's tracker). Fills are learned by querying our open orders every
`gateway.poll_ms` (the user-data stream is not built yet), cancels before new orders.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

from ipc.messages import CancelAll, CancelOrder, OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, PlaceOrder
from ipc.sockets import frame
from mm.config import Config
from mm.journal import PositionSnapshot
from mm.orders import Applied, OrderState, Side, instance_token
from processes.async_worker import AsyncWorker
from processes.binance_adapter import AdapterConfig, BinanceAdapter
from processes.journal_file import JournalFile
from processes.keys_cli import load_api_keys

log = logging.getLogger(__name__)

INPROC = "inproc://gateway-venue"
CLOSED = (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED)


class LiveVenue(AsyncWorker):
    name = "gateway venue"

    def __init__(self, ctx: zmq.Context, config: Config, *, journal: JournalFile, baseline: dict[str, str]) -> None:
        super().__init__()
        self.ctx = ctx
        self.journal = journal  # live mode: this thread is its only writer
        self.baseline = baseline  # the account's balances when the pipeline first traded here
        self.ready = False
        self.venue_position_lot = 0  # base-asset balance change since the baseline, in lots
        self.config = config
        self.symbol = config.instrument.symbol
        self.adapter: BinanceAdapter | None = None
        self.ours_to_venue: dict[str, str] = {}
        self.venue_to_ours: dict[str, str] = {}
        self._accepted: set[str] = set()  # venue ids whose acceptance was reported (once each)
        self._queue: asyncio.Queue | None = None

    def submit(self, command: Any) -> None:
        if self._loop is None or self._queue is None:
            log.error("venue not connected yet: %s dropped", type(command).__name__)
            return
        self._loop.call_soon_threadsafe(self._queue.put_nowait, command)

    def before_stop(self) -> None:
        """Cancel every order of ours before the client closes."""
        if self._loop is not None and self._queue is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, CancelAll(symbol="", reason="stop", ts_ns=0))

    # ---- the asyncio thread ---------------------------------------------------------------------

    async def main(self, stop: asyncio.Event) -> None:
        gw = self.config.gateway
        keys = load_api_keys(key_env=gw.api_key_env, secret_env=gw.api_secret_env,
                             key_file=Path(gw.key_file) if gw.key_file else None)
        adapter = BinanceAdapter(AdapterConfig(symbol=self.symbol, prefix=gw.client_id_prefix,
                                               instance=instance_token(int(time.time()) % 26**5), base_url=gw.rest_url,
                                               recv_window_ms=gw.recv_window_ms), keys.api_key, keys.api_secret,
                                 journal=self.journal.append)  # order records: `mm report latency` reads them
        self.adapter = adapter
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(INPROC)
        self._push, self._topic = push, f"venue.{self.symbol}".encode()
        try:
            await adapter.start()  # safe start: our stale orders cancelled, balances fetched
            await self._adopt_position()
            self._queue = asyncio.Queue()
            self.ready = True
            poller = asyncio.create_task(self._poll())
            try:
                while not (stop.is_set() and self._queue.empty()):
                    try:
                        command = await asyncio.wait_for(self._queue.get(), 0.1)
                    except asyncio.TimeoutError:
                        continue
                    await self._execute(command)
            finally:
                poller.cancel()
        finally:
            await adapter.close()
            push.close()

    async def _adopt_position(self) -> None:
        """The venue's position: the base asset's balance change since the pipeline's baseline (the
        first start here writes it to the journal), so fills while the gateway was down count too."""
        assert self.adapter is not None and self.adapter.grid is not None
        info = await self.adapter.exchange.publicGetExchangeInfo()
        entry = next(e for e in info["symbols"] if e["symbol"] == self.symbol)
        base = entry["baseAsset"]
        held = self.adapter.balances.get(base, {"free": Decimal(0), "locked": Decimal(0)})
        total = held["free"] + held["locked"]
        if base not in self.baseline:
            self.baseline[base] = str(total)
            self.journal.append(PositionSnapshot(symbol=self.symbol, position_lot=0, cost_tick_lot=0.0,
                                                 realized_tick_lot=0.0, fees_quote=0.0, traded_lot=0, fills=0,
                                                 ts_ns=time.time_ns(), balances={base: str(total)}))
        self.venue_position_lot = int((total - Decimal(self.baseline[base])) / self.adapter.grid.lot_size)
        log.info("venue position of %s: %d lots (%s %s now, %s at the baseline)", self.symbol,
                 self.venue_position_lot, total, base, self.baseline[base])

    def venue_state(self) -> tuple[list[list[Any]], int]:
        """Our open orders at the venue, by our client ids, and the venue's position (any thread)."""
        assert self.adapter is not None
        rows = []
        for order in self.adapter.tracker.open_orders():
            ours = self.venue_to_ours.get(order.client_id, order.client_id)
            rows.append([ours, 1 if order.side is Side.BUY else -1, order.px_tick, order.qty_lot - order.filled_qty_lot])
        return sorted(rows), self.venue_position_lot

    async def _execute(self, command: Any) -> None:
        adapter = self.adapter
        assert adapter is not None
        match command:
            case PlaceOrder():
                outcome = await adapter.place(Side.BUY if command.side > 0 else Side.SELL, command.px_tick,
                                              command.qty_lot, post_only=command.post_only)
                self.ours_to_venue[command.client_id] = outcome.client_id
                self.venue_to_ours[outcome.client_id] = command.client_id
                self._emit(outcome, reason="")
            case CancelOrder():
                venue_id = self.ours_to_venue.get(command.client_id)
                if venue_id is None:
                    self._send(OrderRejected(client_id=command.client_id, symbol=self.symbol,
                                             reason=f"cancel {command.client_id!r}: unknown order", ts_ns=time.time_ns()))
                    return
                self._emit(await adapter.cancel(venue_id), reason="")
            case CancelAll():
                for outcome in await adapter.cancel_all_ours():
                    self._emit(outcome, reason="")

    async def _poll(self) -> None:
        """Fills and cancels the venue made on its own: query each open order of ours."""
        assert self.adapter is not None
        interval_s = self.config.gateway.poll_ms / 1000
        while True:
            await asyncio.sleep(interval_s)  # the polling period of a venue without a user stream here
            for order in list(self.adapter.tracker.open_orders()):
                self._emit(await self.adapter.query(order.client_id), reason="")

    def _emit(self, outcome: Any, reason: str) -> None:
        """The adapter's outcome as the pipeline's order events (by our client id)."""
        assert self.adapter is not None
        if outcome.applied is not Applied.APPLIED:
            return
        venue_id = outcome.client_id
        ours = self.venue_to_ours.get(venue_id, venue_id)
        order = self.adapter.tracker.get(venue_id)
        if order is None:
            return
        side = 1 if order.side is Side.BUY else -1
        now = time.time_ns()
        if order.is_acked and venue_id not in self._accepted:
            self._accepted.add(venue_id)
            self._send(OrderAccepted(client_id=ours, venue_order_id=str(order.venue_order_id), symbol=self.symbol,
                                     side=side, px_tick=order.px_tick, qty_lot=order.qty_lot, ts_ns=now))
        if outcome.fill_qty_lot > 0:
            self.venue_position_lot += side * outcome.fill_qty_lot
            self._send(OrderFilled(client_id=ours, symbol=self.symbol, side=side, px_tick=outcome.fill_px_tick,
                                   qty_lot=outcome.fill_qty_lot, leaves_lot=order.qty_lot - order.filled_qty_lot,
                                   fee_quote=0.0, is_maker=True, ts_event_ns=now, ts_ns=now))
        if outcome.state in (OrderState.CANCELLED, OrderState.EXPIRED) and outcome.previous not in CLOSED:
            self._send(OrderCanceled(client_id=ours, symbol=self.symbol,
                                     leaves_lot=order.qty_lot - order.filled_qty_lot, ts_ns=now))
        if outcome.state is OrderState.REJECTED and outcome.previous is not OrderState.REJECTED:
            self._send(OrderRejected(client_id=ours, symbol=self.symbol, reason=reason or "venue rejected",
                                     ts_ns=now))

    def _send(self, msg: Any) -> None:
        self._push.send(frame(self._topic, msg))
