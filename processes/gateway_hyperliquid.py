"""The gateway's real venue Hyperliquid (`[gateway] venue = "hyperliquid"`): wallet-signed orders and
cancels (processes.hyperliquid_adapter: EIP-712 over ccxt's offline code, raw /exchange bodies, never
a builder fee or a referrer), in its own asyncio thread like processes.gateway_live.LiveVenue (same
interface: submit, ready, venue_state, stats; answers over the same inproc PUSH socket).

- The key: `[gateway] private_key_env` (the wallet or an approved API wallet), else the encrypted
  `key_file` (its secret is the key). `account_address` names the master account an API wallet signs
  for (queries and stream subscriptions use it).
- Client order ids: the one tracker (mm.orders.OrderTracker) makes ours; each is sent as its cloid
  (mm.hyperliquid_frames.cloid_for), so cancels go by cloid and cancel-all touches only ours.
- Nonces: ms time, strictly increasing beyond the last one persisted in the run dir
  (`hyperliquid-nonce-<signer>`): a block of `NONCE_RESERVE` is reserved on disk before any nonce
  of it is used, so a restart (even after kill -9) never reuses one.
- Fills and order states come from `/ws` orderUpdates and userFills (fills deduplicated by tid, the
  tracker fed cumulative quantities); `/info` (frontendOpenOrders, userFills, clearinghouseState)
  only on start and after each (re)connect of the stream.
- Requotes: the commands that arrive together (one quote decision, one wake-up of this thread)
  are planned by `plan_modifies` (pure): a cancel of a resting order and a post-only place on the
  same side become one `batchModify` entry, the replacement under its own new cloid
  (`OrderTracker.replace`: the one tracker owns both orders' states); a modify refused because the
  old order had closed places the new one on its own, any other refusal still cancels the old one,
  so the outcome is always what cancel + place would have given.
- Dead-man's switch: scheduleCancel at now + `countdown_ms`, renewed every third while quoting.
- Address budget: userRateLimit on start, each request counted; places are refused locally once
  the remaining budget falls below `BUDGET_RESERVE` (cancels still go), so quoting slows before the
  venue refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import zmq

from ipc.messages import CancelAll, CancelOrder, OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, PlaceOrder
from ipc.sockets import frame
from mm.config import Config, run_dir
from mm.fees import config_fees
from mm.hyperliquid_frames import cloid_for, is_our_cloid
from mm.journal import PositionSnapshot
from mm.orders import (
    Applied,
    CancelDecision,
    OrdersView,
    OrderState,
    OrderTracker,
    Side,
    VenueStatus,
    VenueUpdate,
    instance_token,
)
from mm.ticks import TickGrid
from processes.async_worker import AsyncWorker
from processes.gateway_live import INPROC
from processes.hyperliquid_adapter import (
    CcxtTransport,
    HyperliquidClient,
    HyperliquidError,
    HyperliquidOrder,
    HyperliquidSigner,
    Modify,
    NonceClock,
    PlaceResult,
    assets_from_meta,
    modify_falls_back_to_place,
    order_value_usd_below_min,
    plan_modifies,
    VenueReadFailed,
)
from processes.journal_file import JournalFile
from processes.keys_cli import read_key_file
from processes.redaction import RedactSecrets

log = logging.getLogger(__name__)

MS = 1_000_000
NONCE_RESERVE = 10_000  # nonces reserved on disk at a time
BUDGET_RESERVE = 500  # requests kept back for cancels and the dead-man's switch
PING_S = 20.0
RECONCILE_RETRY_MAX_S = 10.0  # the longest wait before a failed reconcile is tried again
CLOSED = (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED)
_CANCELED = "anceled"  # canceled, marginCanceled, ..., and scheduledCancel below


class PersistentNonces(NonceClock):
    """NonceClock whose nonces never repeat across restarts: it starts past the reserved block on disk."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            self.last = int(path.read_text().strip() or 0)
        except FileNotFoundError:
            self.last = 0
        self.reserved = self.last

    def next(self) -> int:
        nonce = super().next()
        if nonce >= self.reserved:
            self.reserved = nonce + NONCE_RESERVE
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                f.write(str(self.reserved))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        return nonce


def load_signer(config: Config, environ: dict[str, str] | None = None) -> HyperliquidSigner:
    environ = dict(os.environ) if environ is None else environ
    gw = config.gateway
    key = environ.get(gw.private_key_env, "")
    if not key and gw.key_file:
        keys = read_key_file(Path(gw.key_file), environ.get("MM_KEYS_PASSPHRASE", ""))
        key = keys.api_secret.reveal()
    if not key:
        raise HyperliquidError(f"no Hyperliquid wallet key: set {gw.private_key_env} or [gateway] key_file")
    RedactSecrets.register(key)
    return HyperliquidSigner(key, is_mainnet="testnet" not in gw.rest_url)


class HyperliquidLive(AsyncWorker):
    name = "gateway venue"

    def __init__(self, ctx: zmq.Context, config: Config, *, journal: JournalFile, baseline: dict[str, str],
                 orders: OrdersView | None = None) -> None:
        """`orders`: the view of the tracker that other threads read (attached at connect)."""
        super().__init__()
        self.ctx = ctx
        self.orders = orders if orders is not None else OrdersView()
        self.config = config
        self.journal = journal
        self.baseline = baseline
        self.symbol = config.instrument.symbol
        self.maker_bps = config_fees(config).maker_bps
        self.ready = False
        self.counts: Counter[str] = Counter()
        self.client: HyperliquidClient | None = None
        self.tracker: OrderTracker | None = None
        self.grid: TickGrid | None = None
        self.px_scale = self.qty_scale = 1
        self.ours_to_venue: dict[str, str] = {}
        self.venue_to_ours: dict[str, str] = {}
        self.by_cloid: dict[str, str] = {}  # cloid -> tracker client id
        self.filled: dict[str, int] = {}  # tracker client id -> cumulative lots from fills
        self.seen_tids: set[int] = set()
        self.venue_position_lot = 0
        self.budget_left = 10_000
        self.stream_up = False
        self._accepted: set[str] = set()
        self._inbox: list[Any] = []  # commands from the actor's thread, taken as one turn
        self._inbox_lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._resync: asyncio.Event | None = None
        self.reconcile_retry_s = 1.0  # the first wait after a failed reconcile (then doubled)
        self._quoting = False
        self._scheduled_ms = 0

    # ---- the actor's thread ----

    def submit(self, command: Any) -> None:
        if self._loop is None or self._wake is None:
            log.error("venue not connected yet: %s dropped", type(command).__name__)
            return
        with self._inbox_lock:
            self._inbox.append(command)
            if len(self._inbox) > 1:
                return  # a wake-up is on its way: this command joins the same turn (one quote decision)
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed: stopped (its last act cancelled ours), a late command goes nowhere
            log.warning("venue stopped: %s dropped", type(command).__name__)

    def before_stop(self) -> None:
        self.submit(CancelAll(symbol="", reason="stop", ts_ns=0))

    def stats(self) -> dict[str, Any]:
        return {"market": "hyperliquid", "budget_left": self.budget_left, **dict(sorted(self.counts.items()))}

    def venue_state(self) -> tuple[list[list[Any]], int]:
        rows = []
        for order in self.orders.open_orders():  # the view copies first: the asyncio thread mutates the tracker
            ours = self.venue_to_ours.get(order.client_id, order.client_id)
            rows.append([ours, 1 if order.side is Side.BUY else -1, order.px_tick,
                         order.qty_lot - order.filled_qty_lot])
        return sorted(rows), self.venue_position_lot

    # ---- the asyncio thread ----

    async def main(self, stop: asyncio.Event) -> None:
        gw = self.config.gateway
        signer = load_signer(self.config)
        base = gw.rest_url or "https://api.hyperliquid.xyz"
        transport = _HttpTransport(base) if gw.rest_url else CcxtTransport(signer.is_mainnet)
        directory = run_dir(self.config)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        nonces = PersistentNonces(directory / f"hyperliquid-nonce-{signer.address}")
        meta = await transport.info({"type": "meta"})
        assets = assets_from_meta(meta)
        if self.symbol not in assets:
            raise HyperliquidError(f"[instrument] symbol {self.symbol!r} is not a Hyperliquid perp "
                                   f"(listed: {', '.join(sorted(assets))[:200]})")
        self.client = HyperliquidClient(signer, transport, assets, gw.client_id_prefix,
                                        user_address=gw.account_address or None, nonces=nonces)
        self.grid = assets[self.symbol].grid
        inst = self.config.instrument
        px_scale = Decimal(inst.tick_size) / self.grid.tick_size
        qty_scale = Decimal(inst.lot_size) / self.grid.lot_size
        if px_scale != int(px_scale) or qty_scale != int(qty_scale) or px_scale < 1 or qty_scale < 1:
            raise HyperliquidError(f"[instrument] tick_size {inst.tick_size} / lot_size {inst.lot_size} must be whole "
                                   f"multiples of {self.symbol}'s {self.grid.tick_size} / {self.grid.lot_size}")
        self.px_scale, self.qty_scale = int(px_scale), int(qty_scale)
        self.tracker = OrderTracker(gw.client_id_prefix, instance_token(int(time.time()) % 26**5),
                                    query_after_ns=10 * 1_000_000_000, cancel_timeout_ns=5 * 1_000_000_000)
        self.orders.attach(self.tracker)
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(INPROC)
        self._push, self._topic = push, f"venue.{self.symbol}".encode()
        self._resync = asyncio.Event()
        tasks: list[asyncio.Task] = []
        try:
            stale = await self.client.cancel_all_ours()  # an earlier run's orders (ours by cloid tag)
            self.counts["start_cancelled"] += sum(r.status == "success" for r in stale)
            await self._adopt_position(first=True)
            await self._read_budget()
            tasks.append(asyncio.create_task(self._stream(stop)))
            deadline = time.monotonic() + 5.0
            while not self.stream_up and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # bounded wait for the first subscription
            self._wake = asyncio.Event()
            self.ready = True
            tasks.append(asyncio.create_task(self._dead_mans_switch(stop)))
            tasks.append(asyncio.create_task(self._reconciler(stop)))
            while not (stop.is_set() and not self._inbox):
                try:
                    await asyncio.wait_for(self._wake.wait(), 0.1)
                except asyncio.TimeoutError:
                    continue
                self._wake.clear()
                with self._inbox_lock:
                    commands, self._inbox = self._inbox, []
                await self._execute_turn(commands)
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        raise task.exception()
            self._quoting = False
            if self._scheduled_ms:
                await self._schedule(None)  # our orders are cancelled: the switch is off
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            close = getattr(transport, "close", None)
            if close is not None:
                await close()
            push.close()

    async def _adopt_position(self, first: bool = False) -> None:
        assert self.client is not None and self.grid is not None
        state = await self.client.info({"type": "clearinghouseState", "user": self.client.user_address})
        szi = sum((Decimal(p["position"]["szi"]) for p in state.get("assetPositions", [])
                   if p.get("position", {}).get("coin") == self.symbol), Decimal(0))
        key = f"{self.symbol}:position"
        if key not in self.baseline:
            self.baseline[key] = str(szi)
            self.journal.append(PositionSnapshot(symbol=self.symbol, position_lot=0, cost_tick_lot=0.0,
                                                 realized_tick_lot=0.0, fees_quote=0.0, traded_lot=0, fills=0,
                                                 ts_ns=time.time_ns(), balances={key: str(szi)}))
        lot = Decimal(self.config.instrument.lot_size)
        self.venue_position_lot = int((szi - Decimal(self.baseline[key])) / lot)
        if first:
            log.info("venue position of %s: %d lots (%s now)", self.symbol, self.venue_position_lot, szi)

    async def _read_budget(self) -> None:
        assert self.client is not None
        reply = await self.client.info({"type": "userRateLimit", "user": self.client.user_address})
        self.budget_left = int(reply.get("nRequestsCap", 10_000)) - int(reply.get("nRequestsUsed", 0))

    async def _execute_turn(self, commands: list[Any]) -> None:
        """One turn's commands as `plan_modifies` pairs them: consecutive modifies in one batchModify."""
        assert self.tracker is not None
        resting = {self.venue_to_ours.get(o.client_id, o.client_id): 1 if o.side is Side.BUY else -1
                   for o in self.tracker.open_orders() if o.state in (OrderState.ACKED, OrderState.PARTIALLY_FILLED)}
        modifies: list[Modify] = []
        for step in plan_modifies(commands, resting):
            if isinstance(step, Modify):
                modifies.append(step)
                continue
            if modifies:
                await self._modify(modifies)
                modifies = []
            await self._execute(step)
        if modifies:
            await self._modify(modifies)

    def _order(self, cid: str, command: PlaceOrder) -> HyperliquidOrder:
        return HyperliquidOrder(coin=self.symbol, is_buy=command.side > 0, px_tick=command.px_tick * self.px_scale,
                                qty_lot=command.qty_lot * self.qty_scale, client_id=cid,
                                tif="Alo" if command.post_only else "Gtc")

    def _map(self, ours: str, cid: str) -> None:
        assert self.client is not None
        self.ours_to_venue[ours] = cid
        self.venue_to_ours[cid] = ours
        self.by_cloid[cloid_for(cid, self.client.prefix)] = cid

    def _budget_refuses(self, command: PlaceOrder) -> bool:
        if self.budget_left >= BUDGET_RESERVE:
            return False
        self.counts["budget_refused_locally"] += 1
        self._send(OrderRejected(client_id=command.client_id, symbol=self.symbol, ts_ns=time.time_ns(),
                                 reason=f"address budget: {self.budget_left} requests left"))
        return True

    async def _start_quoting(self) -> None:
        if not self._quoting or self._schedule_due():
            self._quoting = True
            await self._schedule(time.time_ns() // MS + self.config.gateway.countdown_ms)

    async def _send_place(self, cid: str, command: PlaceOrder) -> None:
        """Send one order the tracker already holds as SENT; its answer goes to the tracker."""
        assert self.client is not None
        self.budget_left -= 1
        [result] = await self.client.place([self._order(cid, command)])
        self.counts[f"place_{result.status}"] += 1
        self._on_placed(cid, result)

    def _on_placed(self, cid: str, result: PlaceResult) -> None:
        if result.status == "error":
            self._apply(VenueUpdate(cid, VenueStatus.REJECTED, self.filled.get(cid, 0), time.time_ns(),
                                    reason=result.error))
        elif result.status in ("resting", "filled"):  # fills themselves come from userFills
            self._apply(VenueUpdate(cid, VenueStatus.NEW, self.filled.get(cid, 0), time.time_ns(),
                                    venue_order_id=result.oid or -1))
        else:
            self._resync_now()

    async def _modify(self, steps: list[Modify]) -> None:
        """Each step's resting order becomes its replacement (`OrderTracker.replace`), all in one
        batchModify; where a modify cannot be sent, the step is its cancel and its place."""
        assert self.client is not None and self.tracker is not None
        asset = self.client.assets[self.symbol]
        sendable: list[tuple[str, str, PlaceOrder]] = []  # (old cid, new cid, the place)
        for step in steps:
            place, old = step.place, self.ours_to_venue.get(step.cancel.client_id)
            if old is None or self.budget_left - len(sendable) < BUDGET_RESERVE \
                    or order_value_usd_below_min(asset, self._order(old, place)):
                self.counts["modify_as_cancel_and_place"] += 1
                await self._execute(step.cancel)
                await self._execute(place)
                continue
            await self._start_quoting()
            now = time.time_ns()
            decision, cancel, successor = self.tracker.replace(old, place.px_tick, place.qty_lot, now)
            if cancel is not None:
                self.journal.append(cancel)
            if successor is None:  # the old one is already closed: a plain place
                await self._execute(place)
                continue
            self.journal.append(successor)
            new = successor.client_id
            self._map(place.client_id, new)
            self.journal.append(self.tracker.mark_sent(new, now))
            if decision is CancelDecision.SEND:
                sendable.append((old, new, place))
                continue
            if decision is CancelDecision.DROPPED:
                self._emit(old)  # never sent: cancelled here
            await self._send_place(new, place)
        if not sendable:
            return
        self.budget_left -= len(sendable)
        prefix = self.client.prefix
        results = await self.client.modify([(cloid_for(old, prefix), self._order(new, place))
                                            for old, new, place in sendable])
        for (old, new, place), result in zip(sendable, results):
            self.counts[f"modify_{result.status}"] += 1
            if result.status == "error" and modify_falls_back_to_place(result.error):
                self._resync_now()  # the old order closed before: the stream or the reconcile says how
                await self._send_place(new, place)
                continue
            self._on_placed(new, result)
            if result.status == "error":  # the new order was refused: the old one must still go
                await self._send_cancels([old])

    async def _execute(self, command: Any) -> None:
        assert self.client is not None and self.tracker is not None
        match command:
            case PlaceOrder():
                if self._budget_refuses(command):
                    return
                await self._start_quoting()
                side = Side.BUY if command.side > 0 else Side.SELL
                now = time.time_ns()
                record = self.tracker.submit(self.symbol, side, command.px_tick, command.qty_lot, now)
                self.journal.append(record)
                cid = record.client_id
                self._map(command.client_id, cid)
                self.journal.append(self.tracker.mark_sent(cid, now))
                await self._send_place(cid, command)
            case CancelOrder():
                cid = self.ours_to_venue.get(command.client_id)
                if cid is None:
                    self._send(OrderRejected(client_id=command.client_id, symbol=self.symbol, ts_ns=time.time_ns(),
                                             reason=f"cancel {command.client_id!r}: unknown order"))
                    return
                await self._cancel([cid])
            case CancelAll():
                await self._cancel([o.client_id for o in self.tracker.open_orders()])
                try:  # the sweep finds ours the tracker does not know (an earlier life's)
                    swept = await self.client.cancel_all_ours()
                except VenueReadFailed as e:
                    self.counts["cancel_all_sweep_failed"] += 1
                    log.warning("gateway venue: cancel-all sweep skipped (%s): only the orders we track "
                                "were cancelled", e)
                    return
                self.counts["cancel_all_swept"] += sum(r.status == "success" for r in swept)

    async def _cancel(self, cids: list[str]) -> None:
        assert self.client is not None and self.tracker is not None
        sendable = []
        for cid in cids:
            decision, record = self.tracker.request_cancel(cid, time.time_ns())
            if record is not None:
                self.journal.append(record)
            if decision is CancelDecision.SEND:
                sendable.append(cid)
            elif decision is CancelDecision.DROPPED:
                self._emit(cid)
        await self._send_cancels(sendable)

    async def _send_cancels(self, sendable: list[str]) -> None:
        """cancelByCloid for orders the tracker holds as CANCEL_PENDING."""
        assert self.client is not None
        if not sendable:
            return
        self.budget_left -= len(sendable)
        results = await self.client.cancel([(self.symbol, cloid_for(cid, self.client.prefix)) for cid in sendable])
        for cid, result in zip(sendable, results):
            self.counts[f"cancel_{result.status}"] += 1
            if result.status != "success":
                self._resync_now()  # filled, gone or unknown: the stream or the reconcile settles it

    # ---- dead-man's switch ----

    def _schedule_due(self) -> bool:
        return self._scheduled_ms - time.time_ns() // MS < self.config.gateway.countdown_ms * 2 // 3

    async def _schedule(self, due_ms: int | None) -> None:
        assert self.client is not None
        action: dict[str, Any] = {"type": "scheduleCancel"}
        if due_ms is not None:
            action["time"] = due_ms
        reply, why = await self.client._call("exchange", self.client._signed(action))
        ok = isinstance(reply, dict) and reply.get("status") == "ok"
        self.counts["schedule_cancel_ok" if ok else "schedule_cancel_failed"] += 1
        if not ok:
            log.warning("gateway venue: scheduleCancel refused: %s", why or str(reply)[:200])
        self._scheduled_ms = (due_ms or 0) if ok else self._scheduled_ms

    async def _dead_mans_switch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.25)
            if self._quoting and self._schedule_due():
                await self._schedule(time.time_ns() // MS + self.config.gateway.countdown_ms)

    # ---- the stream ----

    async def _stream(self, stop: asyncio.Event) -> None:
        assert self.client is not None
        url = self.config.gateway.user_stream_url or "wss://api.hyperliquid.xyz/ws"
        user = self.client.user_address
        backoff = 0.1
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    async with session.ws_connect(url, heartbeat=None) as ws:
                        for kind in ("orderUpdates", "userFills"):
                            await ws.send_str(json.dumps({"method": "subscribe",
                                                          "subscription": {"type": kind, "user": user}}))
                        last_ping = time.monotonic()
                        while not stop.is_set():
                            try:
                                msg = await ws.receive(timeout=1.0)
                            except asyncio.TimeoutError:
                                msg = None
                            if time.monotonic() - last_ping > PING_S:
                                await ws.send_str('{"method":"ping"}')
                                last_ping = time.monotonic()
                            if msg is None:
                                continue
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                break
                            self._on_frame(msg.data)
                            backoff = 0.1
                except (aiohttp.ClientError, OSError) as e:
                    log.warning("gateway venue: /ws failed: %s", type(e).__name__)
                if self.stream_up:
                    self.counts["stream_downs"] += 1
                self.stream_up = False
                if not stop.is_set():
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)

    def _on_frame(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        channel = message.get("channel") if isinstance(message, dict) else None
        data = message.get("data") if isinstance(message, dict) else None
        if channel == "subscriptionResponse" and (data or {}).get("subscription", {}).get("type") == "userFills":
            self.stream_up = True
            self.counts["stream_ups"] += 1
            self._resync_now()  # events may have been missed before (or while) it was up
        elif channel == "orderUpdates" and isinstance(data, list):
            for update in data:
                self.counts["events_orderUpdates"] += 1
                self._on_order_update(update)
        elif channel == "userFills" and isinstance(data, dict):
            for fill in data.get("fills", []):
                self._on_fill(fill, from_stream=True)

    def _on_order_update(self, update: dict) -> None:
        order, status = update.get("order") or {}, str(update.get("status", ""))
        cid = self.by_cloid.get(str(order.get("cloid")))
        if cid is None or self.tracker is None:
            return
        filled = self.filled.get(cid, 0)
        if status == "open":
            venue_status = VenueStatus.NEW
        elif status == "filled":
            venue_status = VenueStatus.FILLED
        elif _CANCELED in status or status == "scheduledCancel":
            venue_status = VenueStatus.CANCELED
        else:
            venue_status = VenueStatus.REJECTED
        self._apply(VenueUpdate(cid, venue_status, filled, time.time_ns(), venue_order_id=int(order.get("oid", -1)),
                                reason="" if venue_status is not VenueStatus.REJECTED else status))

    def _on_fill(self, fill: dict, from_stream: bool) -> None:
        assert self.grid is not None and self.tracker is not None
        tid = int(fill.get("tid", -1))
        cid = self.by_cloid.get(str(fill.get("cloid")))
        if fill.get("coin") != self.symbol or tid in self.seen_tids:
            return
        self.seen_tids.add(tid)
        qty = int(Decimal(fill["sz"]) / self.grid.lot_size) // self.qty_scale
        side = 1 if fill.get("side") == "B" else -1
        if cid is None or self.tracker.get(cid) is None:
            if is_our_cloid(fill.get("cloid"), self.config.gateway.client_id_prefix):
                self.counts["fills_of_earlier_runs"] += 1  # the position is read from clearinghouseState
            return
        self.filled[cid] = self.filled.get(cid, 0) + qty
        order = self.tracker.get(cid)
        status = VenueStatus.FILLED if self.filled[cid] >= order.qty_lot else VenueStatus.PARTIALLY_FILLED
        px_tick = round(Decimal(fill["px"]) / self.grid.tick_size / self.px_scale)
        fee = float(Decimal(fill.get("fee", "0")))
        self.counts["fills_from_stream" if from_stream else "fills_from_rest"] += 1
        self._apply(VenueUpdate(cid, status, self.filled[cid], time.time_ns(), last_px_tick=px_tick),
                    fill=(fee, not fill.get("crossed", False), int(fill.get("time", 0)) * MS, side))

    def _resync_now(self) -> None:
        if self._resync is not None:
            self._resync.set()

    async def _reconciler(self, stop: asyncio.Event) -> None:
        """/info only after a (re)connect or a doubtful answer: open orders, fills, position, budget.
        A pass the venue does not answer (429, 5xx, a timeout) is tried again after a backoff that
        doubles up to RECONCILE_RETRY_MAX_S; trading goes on meanwhile (the stream still reports)."""
        assert self._resync is not None
        retry_s = self.reconcile_retry_s
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._resync.wait(), 0.5)
            except asyncio.TimeoutError:
                continue
            self._resync.clear()
            self.counts["reconciles"] += 1
            try:
                await self._reconcile_once()
            except VenueReadFailed as e:
                self.counts["reconcile_failed"] += 1
                log.warning("gateway venue: reconcile failed (%s): again in %.3g s", e, retry_s)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_s)
                retry_s = min(2 * retry_s, RECONCILE_RETRY_MAX_S)
                self._resync_now()
                continue
            retry_s = self.reconcile_retry_s

    async def _reconcile_once(self) -> None:
        assert self.client is not None and self.tracker is not None
        fills = await self.client.info({"type": "userFills", "user": self.client.user_address}, list)
        for fill in reversed(fills):
            self._on_fill(fill, from_stream=False)
        listed = {self.by_cloid.get(o.get("cloid")) for o in await self.client.open_orders()}
        for order in self.tracker.open_orders():
            if order.client_id not in listed and order.state not in (OrderState.NEW, OrderState.SENT):
                result = await self.client.query(cloid_for(order.client_id, self.client.prefix))
                if result.status != "unknown":
                    raw = (result.raw or {}).get("order") or {}
                    self._on_order_update({"order": {"cloid": result.cloid, "oid": result.oid or -1},
                                           "status": raw.get("status", "canceled")})
        await self._adopt_position()
        await self._read_budget()

    # ---- outcomes -> the pipeline's order events ----

    def _apply(self, update: VenueUpdate, fill: tuple[float, bool, int, int] | None = None) -> None:
        assert self.tracker is not None
        self.journal.append(update)
        outcome = self.tracker.apply(update, time.time_ns())
        if outcome.applied is not Applied.APPLIED:
            self.counts[f"outcome_{outcome.applied.value}"] += 1
            return
        self._emit(update.client_id, outcome.fill_qty_lot, outcome.fill_px_tick, outcome.previous, fill)

    def _emit(self, cid: str, fill_qty: int = 0, fill_px: int = 0, previous: OrderState | None = None,
              fill: tuple[float, bool, int, int] | None = None) -> None:
        assert self.tracker is not None and self.grid is not None
        order = self.tracker.get(cid)
        if order is None:
            return
        ours = self.venue_to_ours.get(cid, cid)
        side = 1 if order.side is Side.BUY else -1
        now = time.time_ns()
        if order.is_acked and cid not in self._accepted:
            self._accepted.add(cid)
            self._send(OrderAccepted(client_id=ours, venue_order_id=str(order.venue_order_id), symbol=self.symbol,
                                     side=side, px_tick=order.px_tick, qty_lot=order.qty_lot, ts_ns=now))
        if fill_qty > 0:
            self.venue_position_lot += side * fill_qty  # the next clearinghouseState confirms it
            fee, is_maker, ts_event = (fill[0], fill[1], fill[2]) if fill else (0.0, True, now)
            self._send(OrderFilled(client_id=ours, symbol=self.symbol, side=side, px_tick=fill_px, qty_lot=fill_qty,
                                   leaves_lot=order.qty_lot - order.filled_qty_lot, fee_quote=fee, is_maker=is_maker,
                                   ts_event_ns=ts_event or now, ts_ns=now))
        if order.state in (OrderState.CANCELLED, OrderState.EXPIRED) and previous not in CLOSED:
            self._send(OrderCanceled(client_id=ours, symbol=self.symbol,
                                     leaves_lot=order.qty_lot - order.filled_qty_lot, ts_ns=now))
        if order.state is OrderState.REJECTED and previous is not OrderState.REJECTED:
            self._send(OrderRejected(client_id=ours, symbol=self.symbol, reason=order.reason or "venue rejected",
                                     ts_ns=now))

    def _send(self, msg: Any) -> None:
        self._push.send(frame(self._topic, msg))


class _HttpTransport:
    """POST /info and /exchange to a loopback stand-in (`mm venue --market hyperliquid`), plain JSON."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(self.base_url + path, json=body) as reply:
                if reply.status >= 500 or reply.status == 429:
                    raise OSError(f"HTTP {reply.status} from {path}")
                if reply.status != 200:
                    return {"status": "err", "response": f"HTTP {reply.status}: {(await reply.text())[:200]}"}
                return await reply.json()
        except aiohttp.ClientError as e:  # a dropped connection is a transport failure, like a reset socket
            raise OSError(f"{path}: {type(e).__name__}: {e}") from e

    async def info(self, body: dict[str, Any]) -> Any:
        return await self._post("/info", body)

    async def exchange(self, body: dict[str, Any]) -> Any:
        return await self._post("/exchange", body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
