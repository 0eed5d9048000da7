"""The gateway's real venue, Binance spot (`[gateway] venue = "binance"`) or USD-M futures
(`"binance-usdm"`): the adapter (processes/binance_adapter.py: ccxt REST, rate limiter, the one
order tracker mm.orders.OrderTracker) in its own asyncio thread. Commands go in with
`call_soon_threadsafe`; the venue's answers come back as order events over an inproc PUSH/PULL pair
(the PUSH socket lives in the asyncio thread).

- Orders and cancels go over one persistent, signed WebSocket API connection (spot `/ws-api/v3`,
  USD-M `/ws-fapi/v1`; `order_entry = "rest"` for REST only); while it is down, over REST.
- Fills and order states come from the user-data stream: spot subscribes on the ws-api connection
  (`userDataStream.subscribe.signature`); USD-M opens `/private/ws?listenKey=...` (POST
  /fapi/v1/listenKey, PUT every `listen_key_keepalive_s`, a new key on `listenKeyExpired`). Each
  event is applied to the tracker, which takes cumulative filled quantities: a duplicate or
  reordered event never counts a fill twice. A missed event (mm.venue_sync.missed_fill) or a
  (re)connect of the stream triggers a REST reconcile (mm.venue_sync.reconcile_plan). Polling stays
  only as reconciliation: every `reconcile_s`, and our open orders queried every `poll_ms` only
  while the stream is down.
- The venue's position: spot, the base asset's balance change since the pipeline's baseline (from
  `outboundAccountPosition`); USD-M, the one-way position's change (`ACCOUNT_UPDATE`), both
  reconciled over REST (account) too; risk reconciles with it (VenueState).
- USD-M: the dead-man's switch `countdownCancelAll` is armed once the gateway is quoting and renewed
  every third of `countdown_ms`, so a gateway killed with -9 leaves nothing resting longer than
  that; disarmed on a clean stop after our orders are cancelled.

Our pipeline's client ids map to the adapter's venue client ids (prefix + instance + seq). Counts
of every request by path (`ws_*` / `rest_*`) are in `stats()` for the report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

from ipc.messages import CancelAll, CancelOrder, OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, PlaceOrder
from ipc.sockets import frame
from mm.config import Config
from mm.fees import config_fees
from mm.journal import PositionSnapshot
from mm.rate_limit import Priority
from mm.orders import Applied, FollowUp, OrdersView, OrderState, Outcome, Side, instance_token
from mm.venue_sync import (
    OrderReport,
    ReportError,
    account_gap,
    countdown_due,
    fee_in_quote,
    missed_fill,
    position_lot,
    spot_report,
    usdm_report,
)
from processes.async_worker import AsyncWorker
from processes.binance_adapter import AdapterConfig, BinanceAdapter
from processes.binance_ws import check_url
from processes.binance_ws_api_client import WsApiClient
from processes.journal_file import JournalFile
from processes.keys_cli import load_api_keys

log = logging.getLogger(__name__)

INPROC = "inproc://gateway-venue"
CLOSED = (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED)
NS = 1_000_000_000
WS_API_URL = {"spot": "wss://ws-api.binance.com:443/ws-api/v3", "usdm": "wss://ws-fapi.binance.com/ws-fapi/v1"}
USER_STREAM_URL = "wss://fstream.binance.com/private/ws"
STREAM_WAIT_S = 5.0  # at start, how long the user-data stream may take before trading begins without it


def position_key(symbol: str) -> str:
    """The journal's baseline entry for a USD-M position (spot keys the base asset's balance)."""
    return f"{symbol}:position"


class LiveVenue(AsyncWorker):
    name = "gateway venue"

    def __init__(self, ctx: zmq.Context, config: Config, *, journal: JournalFile, baseline: dict[str, str],
                 orders: OrdersView | None = None) -> None:
        """`orders`: the view of the adapter's tracker that other threads read (attached at connect)."""
        super().__init__()
        self.ctx = ctx
        self.orders = orders if orders is not None else OrdersView()
        self.journal = journal  # live mode: this thread is its only writer
        self.baseline = baseline  # the account's balances (USD-M: position) when the pipeline first traded here
        self.ready = False
        self.venue_position_lot = 0  # change since the baseline, in lots
        self.fills_position_lot = 0  # the same, from the fills we applied (a lost fill event shows as a difference)
        self.config = config
        self.market = "usdm" if config.gateway.venue == "binance-usdm" else "spot"
        self.symbol = config.instrument.symbol
        self.maker_bps = config_fees(config).maker_bps
        self.adapter: BinanceAdapter | None = None
        self.orders_ws: WsApiClient | None = None
        self.user_ws: WsApiClient | None = None
        self.ours_to_venue: dict[str, str] = {}
        self.venue_to_ours: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.stream_up = False
        self.base_asset = self.quote_asset = ""
        self._accepted: set[str] = set()  # venue ids whose acceptance was reported (once each)
        self._queue: asyncio.Queue | None = None
        self._resync: asyncio.Event | None = None
        self._listen_key = ""
        self._countdown_armed_ns = 0
        self._quoting = False

    def submit(self, command: Any) -> None:
        if self._loop is None or self._queue is None:
            log.error("venue not connected yet: %s dropped", type(command).__name__)
            return
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, command)
        except RuntimeError:  # the loop is closed: stopped (its last act cancelled ours), a late command goes nowhere
            log.warning("venue stopped: %s dropped", type(command).__name__)

    def before_stop(self) -> None:
        """Cancel every order of ours before the client closes."""
        if self._loop is not None and self._queue is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, CancelAll(symbol="", reason="stop", ts_ns=0))

    def stats(self) -> dict[str, Any]:
        """Requests by path and the stream's figures (any thread; counters only)."""
        adapter_counts = dict(self.adapter.counts) if self.adapter is not None else {}
        requests = {k: v for k, v in sorted(adapter_counts.items()) if k.startswith(("ws_", "rest_"))}
        streams = {name: dict(client.counts) for name, client in (("orders_ws", self.orders_ws),
                                                                  ("user_stream", self.user_ws)) if client is not None}
        return {"market": self.market, "order_entry": self.config.gateway.order_entry, "requests": requests,
                "reconciles": adapter_counts.get("reconciles", 0), **dict(sorted(self.counts.items())),
                "connections": streams}

    # ---- the asyncio thread ---------------------------------------------------------------------

    async def main(self, stop: asyncio.Event) -> None:
        gw = self.config.gateway
        keys = load_api_keys(key_env=gw.api_key_env, secret_env=gw.api_secret_env,
                             key_file=Path(gw.key_file) if gw.key_file else None)
        adapter = BinanceAdapter(AdapterConfig(symbol=self.symbol, prefix=gw.client_id_prefix, market=self.market,
                                               instance=instance_token(int(time.time()) % 26**5), base_url=gw.rest_url,
                                               recv_window_ms=gw.recv_window_ms), keys.api_key, keys.api_secret,
                                 journal=self.journal.append)  # order records: `mm report latency` reads them
        self.adapter = adapter
        self.orders.attach(adapter.tracker)
        adapter.on_settled = self._emit  # an UNKNOWN new order settles beside the order flow
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(INPROC)
        self._push, self._topic = push, f"venue.{self.symbol}".encode()
        self._resync = asyncio.Event()
        links = asyncio.Event()  # stops the connections after the last cancels went out
        tasks: list[asyncio.Task] = []
        try:
            await adapter.start()  # safe start: our stale orders cancelled, balances fetched
            self._read_assets()
            await self._adopt_position()
            tasks = self._connect(keys.api_key.reveal(), keys.api_secret.reveal(), links)
            await self._wait_stream(STREAM_WAIT_S)
            self._queue = asyncio.Queue()
            self.ready = True
            tasks.append(asyncio.create_task(self._reconciler(stop)))
            if self.market == "usdm":
                tasks.append(asyncio.create_task(self._countdown(stop)))
            while not (stop.is_set() and self._queue.empty()):
                try:
                    command = await asyncio.wait_for(self._queue.get(), 0.1)
                except asyncio.TimeoutError:
                    continue
                await self._execute(command)
                self._raise_failed(tasks)
            self._quoting = False
            if self.market == "usdm" and self._countdown_armed_ns:
                await self._arm_countdown(0)  # our orders are cancelled: the switch is off
        finally:
            links.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close_listen_key()
            await adapter.close()
            push.close()

    def _raise_failed(self, tasks: list[asyncio.Task]) -> None:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    def _read_assets(self) -> None:
        assert self.adapter is not None
        entry = next(e for e in self.adapter.exchange_info["symbols"] if e["symbol"] == self.symbol)
        self.base_asset, self.quote_asset = entry["baseAsset"], entry["quoteAsset"]

    def _connect(self, api_key: str, secret: str, links: asyncio.Event) -> list[asyncio.Task]:
        """The ws-api connection (orders; spot: also the user-data subscription) and, on USD-M, the
        listenKey stream; with its keepalive."""
        assert self.adapter is not None
        gw = self.config.gateway
        adapter = self.adapter
        ws_url = gw.ws_api_url or WS_API_URL[self.market]
        check_url(ws_url, "wss", "ws")

        def venue_now_ms() -> int:
            return adapter.venue_now_ns() // 1_000_000

        async def ws_api_url() -> str:
            return ws_url

        spot = self.market == "spot"
        tasks = []
        if spot or gw.order_entry == "ws":
            self.orders_ws = WsApiClient(
                "ws-api" if spot else "ws-fapi", ws_api_url, api_key=api_key, secret=secret,
                recv_window_ms=gw.recv_window_ms, venue_now_ms=venue_now_ms, subscribe_user_data=spot,
                on_event=self._on_user_event if spot else None, on_up=self._on_stream_up if spot else None,
                on_down=self._on_stream_down if spot else None, timeout_s=adapter.config.timeout_s)
            tasks.append(asyncio.create_task(self.orders_ws.run(links)))
            if gw.order_entry == "ws":
                adapter.ws = self.orders_ws
        if not spot:
            stream_url = gw.user_stream_url or USER_STREAM_URL
            check_url(stream_url, "wss", "ws")

            async def listen_url() -> str:
                self._listen_key = await self._new_listen_key()
                return f"{stream_url}?listenKey={self._listen_key}"

            self.user_ws = WsApiClient("user stream", listen_url, on_event=self._on_user_event,
                                       on_up=self._on_stream_up, on_down=self._on_stream_down,
                                       timeout_s=adapter.config.timeout_s)
            tasks.append(asyncio.create_task(self.user_ws.run(links)))
            tasks.append(asyncio.create_task(self._keepalive(links)))
        return tasks

    async def _wait_stream(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.stream_up and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # a bounded wait for the first subscription
        if not self.stream_up:
            log.warning("gateway venue: the user-data stream is not up after %.0f s: polling until it is", timeout_s)

    async def _adopt_position(self) -> None:
        """The venue's position since the pipeline's baseline (the first start here writes it to the
        journal), so fills while the gateway was down count too."""
        assert self.adapter is not None
        key = position_key(self.symbol) if self.market == "usdm" else self.base_asset
        total = self._venue_total()
        if key not in self.baseline:
            self.baseline[key] = str(total)
            self.journal.append(PositionSnapshot(symbol=self.symbol, position_lot=0, cost_tick_lot=0.0,
                                                 realized_tick_lot=0.0, fees_quote=0.0, traded_lot=0, fills=0,
                                                 ts_ns=time.time_ns(), balances={key: str(total)}))
        self._set_position(total)
        self.fills_position_lot = self.venue_position_lot
        log.info("venue position of %s: %d lots (%s now, %s at the baseline)", self.symbol,
                 self.venue_position_lot, total, self.baseline[key])

    def _venue_total(self) -> Decimal:
        assert self.adapter is not None
        if self.market == "usdm":
            return self.adapter.position
        held = self.adapter.balances.get(self.base_asset, {"free": Decimal(0), "locked": Decimal(0)})
        return held["free"] + held["locked"]

    def _set_position(self, total: Decimal) -> None:
        assert self.adapter is not None and self.adapter.grid is not None
        key = position_key(self.symbol) if self.market == "usdm" else self.base_asset
        self.venue_position_lot = position_lot(total, Decimal(self.baseline[key]), self.adapter.grid.lot_size)

    def venue_state(self) -> tuple[list[list[Any]], int]:
        """Our open orders at the venue, by our client ids, and the venue's position (any thread)."""
        rows = []
        for order in self.orders.open_orders():  # the view copies first: the asyncio thread mutates the tracker
            ours = self.venue_to_ours.get(order.client_id, order.client_id)
            rows.append([ours, 1 if order.side is Side.BUY else -1, order.px_tick, order.qty_lot - order.filled_qty_lot])
        return sorted(rows), self.venue_position_lot

    async def _execute(self, command: Any) -> None:
        adapter = self.adapter
        assert adapter is not None
        match command:
            case PlaceOrder():
                self._quoting = True
                if self.market == "usdm" and countdown_due(adapter.venue_now_ns(), self._countdown_armed_ns,
                                                           self.config.gateway.countdown_ms):
                    await self._arm_countdown(self.config.gateway.countdown_ms)  # before the first order rests
                def named(venue_id: str, ours: str = command.client_id) -> None:
                    self.ours_to_venue[ours] = venue_id
                    self.venue_to_ours[venue_id] = ours

                outcome = await adapter.place(Side.BUY if command.side > 0 else Side.SELL, command.px_tick,
                                              command.qty_lot, post_only=command.post_only, named=named)
                self._emit(outcome)
            case CancelOrder():
                venue_id = self.ours_to_venue.get(command.client_id)
                if venue_id is None:
                    self._send(OrderRejected(client_id=command.client_id, symbol=self.symbol,
                                             reason=f"cancel {command.client_id!r}: unknown order", ts_ns=time.time_ns()))
                    return
                self._emit(await adapter.cancel(venue_id))
            case CancelAll():
                for outcome in await adapter.cancel_all_ours():
                    self._emit(outcome)

    # ---- the user-data stream ---------------------------------------------------------------------

    def _on_stream_up(self) -> None:
        self.stream_up = True
        self.counts["stream_ups"] += 1
        assert self._resync is not None
        self._resync.set()  # events may have been missed while it was down (or before it was up)

    def _on_stream_down(self, reason: str) -> None:
        self.stream_up = False
        self.counts["stream_downs"] += 1

    def _on_user_event(self, event: dict) -> None:
        """One user-data event, in arrival order (called inside the websocket's frame callback)."""
        adapter = self.adapter
        if adapter is None or adapter.grid is None:
            return
        kind = event.get("e")
        self.counts[f"events_{kind}"] += 1
        if kind in ("executionReport", "ORDER_TRADE_UPDATE"):
            symbol = event.get("s") if kind == "executionReport" else (event.get("o") or {}).get("s")
            if symbol != self.symbol:
                return
            try:
                report = (spot_report if kind == "executionReport" else usdm_report)(event, adapter.grid,
                                                                                     adapter.venue_now_ns())
            except ReportError as e:
                self.counts["events_unreadable"] += 1
                log.warning("gateway venue: unreadable order event: %s", e)
                return
            if missed_fill(report, adapter.tracker.get(report.update.client_id)):
                self.counts["stream_gaps"] += 1
                assert self._resync is not None
                self._resync.set()
            outcome = adapter._apply(report.update)
            self._emit(outcome, report)
            if outcome.follow_up is not FollowUp.NONE:
                self._spawn(self._follow(outcome))
        elif kind == "outboundAccountPosition":
            for balance in event.get("B", []):
                if balance.get("a") == self.base_asset:
                    adapter.balances[self.base_asset] = {"free": Decimal(balance["f"]), "locked": Decimal(balance["l"])}
                    self._on_account_position()
        elif kind == "ACCOUNT_UPDATE":
            for position in (event.get("a") or {}).get("P", []):
                if position.get("s") == self.symbol and position.get("ps", "BOTH") == "BOTH":
                    adapter.position = Decimal(position["pa"])
                    self._on_account_position()
        elif kind == "listenKeyExpired":
            log.warning("gateway venue: the listenKey expired: a new one, and a reconcile")
            if self.user_ws is not None:
                self.user_ws.drop("listen_key_expired")

    def _on_account_position(self) -> None:
        self._set_position(self._venue_total())
        if account_gap(self.venue_position_lot, self.fills_position_lot):
            self.counts["account_gaps"] += 1
            assert self._resync is not None
            self._resync.set()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                               or log.error("gateway venue: follow-up failed: %s", t.exception()))

    async def _follow(self, outcome: Outcome) -> None:
        assert self.adapter is not None
        self._emit(await self.adapter._follow(outcome))

    # ---- reconciliation (REST) ---------------------------------------------------------------------

    async def _reconciler(self, stop: asyncio.Event) -> None:
        """A REST reconcile when the stream (re)connects or shows a gap, and every `reconcile_s`;
        while the stream is down, our open orders are queried every `poll_ms`."""
        assert self._resync is not None and self.adapter is not None
        gw = self.config.gateway
        last = time.monotonic()
        while not stop.is_set():
            wait_s = gw.reconcile_s - (time.monotonic() - last) if self.stream_up else gw.poll_ms / 1000
            try:
                await asyncio.wait_for(self._resync.wait(), max(wait_s, 0.0))
            except asyncio.TimeoutError:
                pass
            if stop.is_set():
                return
            if self._resync.is_set() or time.monotonic() - last >= gw.reconcile_s:
                self._resync.clear()
                try:
                    await self._reconcile()
                except Exception as e:  # noqa: BLE001 - the venue's REST failed: try again, the stream goes on
                    self.counts["reconcile_failures"] += 1
                    log.warning("gateway venue: reconcile failed (%s): again in %.0f ms", type(e).__name__, gw.poll_ms)
                    await asyncio.sleep(gw.poll_ms / 1000)  # a backoff before the retry
                    self._resync.set()
                    continue
                last = time.monotonic()
            elif not self.stream_up:
                self.counts["polls"] += 1
                try:
                    for order in list(self.adapter.tracker.open_orders()):
                        self._emit(await self.adapter.query(order.client_id))
                except Exception as e:  # noqa: BLE001 - polled again next period
                    self.counts["poll_failures"] += 1
                    log.warning("gateway venue: polling our open orders failed (%s)", type(e).__name__)

    async def _reconcile(self) -> None:
        assert self.adapter is not None
        plan, outcomes = await self.adapter.reconcile()
        for outcome in outcomes:
            self._emit(outcome)
        self._set_position(self._venue_total())
        if account_gap(self.venue_position_lot, self.fills_position_lot):
            log.warning("gateway venue: after the reconcile the account's position is %d lots, our fills say %d: "
                        "the account's is adopted", self.venue_position_lot, self.fills_position_lot)
            self.counts["adopted_account_position"] += 1
            self.fills_position_lot = self.venue_position_lot
        self.counts["reconcile_cancelled_untracked"] += len(plan.cancel_untracked)
        self.counts["reconcile_queried"] += len(plan.query)

    # ---- USD-M: the listenKey and the dead-man's switch ---------------------------------------------

    async def _new_listen_key(self) -> str:
        assert self.adapter is not None
        reply = await self.adapter._idempotent("listen_key", Priority.NORMAL, "fapiPrivatePostListenKey", {})
        return str(reply["listenKey"])

    async def _keepalive(self, links: asyncio.Event) -> None:
        assert self.adapter is not None
        interval_s = self.config.gateway.listen_key_keepalive_s
        while not links.is_set():
            try:
                await asyncio.wait_for(links.wait(), interval_s)
                return
            except asyncio.TimeoutError:
                pass
            if not self._listen_key:
                continue
            try:
                await self.adapter._idempotent("listen_key", Priority.NORMAL, "fapiPrivatePutListenKey", {})
                self.counts["listen_key_keepalives"] += 1
            except Exception as e:  # noqa: BLE001 - e.g. -1125 the key is gone: make a new one
                log.warning("gateway venue: listenKey keepalive failed (%s): a new key", type(e).__name__)
                if self.user_ws is not None:
                    self.user_ws.drop("keepalive_failed")

    async def _close_listen_key(self) -> None:
        if self.market != "usdm" or not self._listen_key or self.adapter is None:
            return
        try:
            await self.adapter._idempotent("listen_key", Priority.NORMAL, "fapiPrivateDeleteListenKey", {})
        except Exception as e:  # noqa: BLE001 - it expires by itself within the hour
            log.warning("gateway venue: closing the listenKey failed: %s", type(e).__name__)

    async def _countdown(self, stop: asyncio.Event) -> None:
        """Renew the dead-man's switch while quoting (the first arm happens before the first order)."""
        assert self.adapter is not None
        countdown_ms = self.config.gateway.countdown_ms
        while not stop.is_set():
            await asyncio.sleep(min(0.5, countdown_ms / 3000 / 4))  # a timer tick, well inside a third
            if self._quoting and countdown_due(self.adapter.venue_now_ns(), self._countdown_armed_ns, countdown_ms):
                await self._arm_countdown(countdown_ms)

    async def _arm_countdown(self, countdown_ms: int) -> None:
        assert self.adapter is not None
        await self.adapter._idempotent("countdown_cancel_all", Priority.HIGH, "fapiPrivatePostCountdownCancelAll",
                                       {"symbol": self.symbol, "countdownTime": str(countdown_ms)})
        self._countdown_armed_ns = self.adapter.venue_now_ns() if countdown_ms else 0
        self.counts["countdown_arms" if countdown_ms else "countdown_disarms"] += 1

    # ---- outcomes -> the pipeline's order events ------------------------------------------------------

    def _emit(self, outcome: Outcome, report: OrderReport | None = None) -> None:
        """The adapter's outcome as the pipeline's order events (by our client id)."""
        assert self.adapter is not None
        if outcome.applied is not Applied.APPLIED:
            if outcome.applied is not Applied.DUPLICATE:
                self.counts[f"outcome_{outcome.applied.value}"] += 1
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
            self.venue_position_lot += side * outcome.fill_qty_lot  # the account's next event confirms it
            self.fills_position_lot += side * outcome.fill_qty_lot
            self._send(self._fill(ours, side, order.qty_lot - order.filled_qty_lot, outcome, report, now))
        if outcome.state in (OrderState.CANCELLED, OrderState.EXPIRED) and outcome.previous not in CLOSED:
            self._send(OrderCanceled(client_id=ours, symbol=self.symbol,
                                     leaves_lot=order.qty_lot - order.filled_qty_lot, ts_ns=now))
        if outcome.state is OrderState.REJECTED and outcome.previous is not OrderState.REJECTED:
            self._send(OrderRejected(client_id=ours, symbol=self.symbol, reason=order.reason or "venue rejected",
                                     ts_ns=now))

    def _fill(self, ours: str, side: int, leaves: int, outcome: Outcome, report: OrderReport | None,
              now: int) -> OrderFilled:
        """The fill, with the stream's own commission and maker flag when this event carried all of it;
        else (a fill learned by a query or a reconcile) the fee at our maker rate."""
        assert self.adapter is not None and self.adapter.grid is not None
        grid = self.adapter.grid
        fee = None
        is_maker = True
        ts_event = now
        if report is not None and report.last_qty_lot == outcome.fill_qty_lot:
            fee = fee_in_quote(report, self.quote_asset)
            is_maker = report.is_maker
            ts_event = report.event_ms * 1_000_000 or now
            self.counts["fills_from_stream"] += 1
        else:
            self.counts["fills_from_rest"] += 1
        if fee is None:
            notional = Decimal(outcome.fill_px_tick) * grid.tick_size * Decimal(outcome.fill_qty_lot) * grid.lot_size
            fee = float(notional) * self.maker_bps / 1e4
        return OrderFilled(client_id=ours, symbol=self.symbol, side=side, px_tick=outcome.fill_px_tick,
                           qty_lot=outcome.fill_qty_lot, leaves_lot=leaves, fee_quote=fee, is_maker=is_maker,
                           ts_event_ns=ts_event, ts_ns=now)

    def _send(self, msg: Any) -> None:
        self._push.send(frame(self._topic, msg))
