"""The gateway's Hyperliquid (DEX) adapter: wallet-signed orders and cancels through ccxt.

There are no API keys: every `/exchange` action is authorised by an EIP-712 signature from a
secp256k1 wallet key (HYPERLIQUID.md §7.1). `HyperliquidSigner` builds that signature OFFLINE with
ccxt's own code (`ccxt.hyperliquid`: msgpack `packb`, keccak, `construct_phantom_agent`,
`eth_encode_structured_data`, `sign_message` = RFC 6979 ECDSA with v = 27 + recovery id). One
piece is ours: the L1 action hash, because ccxt's `action_hash` writes the nonce as `'00000' +
hex(nonce)`, which is 8 bytes only for 11-hex-digit nonces (it raises on the official vectors'
nonce 0, HYPERLIQUID.md §9); ours writes it as 8 bytes big-endian, as the venue and the SDK do,
and equals ccxt's wherever ccxt's is defined (tested).

The key comes from the environment (`MM_HYPERLIQUID_PRIVATE_KEY`), never from config; it is
registered with `RedactSecrets` before anything else happens, and no repr holds it.

`HyperliquidClient` is the async order path: `place`, `modify`, `cancel`, `cancel_all_ours`, `query`. Its
transport is injected (`HyperliquidTransport`: `info(body)`, `exchange(body)`); `CcxtTransport`
sends through `ccxt.async_support.hyperliquid`'s plain `publicPostInfo` / `privatePostExchange`
endpoints, so none of ccxt's order helpers run (they would add a builder fee, a referrer and an
`approveBuilderFee` action, HYPERLIQUID.md §9). Tests inject a fake transport: nothing here
needs the network to build or sign.

Outcomes (HYPERLIQUID.md §1): per-order statuses (`resting`, `filled`, `error`); a whole-request
failure (`{"status":"err"}`) or a single batch-wide error is fanned out to every order; a timeout
or transport failure leaves each order UNKNOWN: never resent blindly, `query(cloid)` settles it.
Client order ids are cloids derived from our client ids (`mm.hyperliquid_frames.cloid_for`), so
cancel-all touches only cloids carrying our prefix tag, never the account's other orders.

Modifies (`plan_modifies`, pure): a requote is a cancel of a resting order and a post-only place
on the same side; the pair goes out as one `batchModify` entry (one signature, one request against
the address budget instead of two, and no moment with neither order at the venue). The venue's
modify is a cancel-replace: the old oid is cancelled and a new oid opened with the wire's `c`
(HYPERLIQUID.md §3; on mainnet, with the same cloid, the stream shows `open` for the new oid, then
`canceled` for the old one under that same cloid). We always send the replacement with its OWN new
cloid (the tracker's successor id, `OrderTracker.replace`), so the old order's `canceled` and the
new one's `open` name two different orders and neither can be taken for the other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

import ccxt
import ccxt.async_support as ccxt_async
import msgspec
from ccxt.static_dependencies import keccak

from ipc.messages import CancelAll, CancelOrder, PlaceOrder
from mm.hyperliquid_frames import (
    cloid_for,
    format_wire_price,
    format_wire_size,
    grid_for,
    is_our_cloid,
    round_px_tick,
)
from mm.ticks import TickGrid
from processes.redaction import RedactSecrets

log = logging.getLogger(__name__)

PRIVATE_KEY_ENV = "MM_HYPERLIQUID_PRIVATE_KEY"
EIP712_DOMAIN = {
    "chainId": 1337,
    "name": "Exchange",
    "verifyingContract": "0x0000000000000000000000000000000000000000",
    "version": "1",
}
USER_SIGNED_CHAIN_ID = 421614  # 0x66eee
AGENT_TYPES = {"Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}]}
MIN_ORDER_VALUE_USD = 10  # perps: "Order must have minimum value of $10."
MODIFY_GONE = "Cannot modify canceled or filled order"  # the old order had closed: nothing was replaced
_PRIVATE_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")

Tif = Literal["Alo", "Gtc", "Ioc"]


class HyperliquidError(Exception):
    """The adapter was misused (bad key, unknown coin); venue refusals are outcomes, not errors."""


class VenueReadFailed(Exception):
    """An /info read got no usable answer (timeout, transport failure, HTTP 429 / 5xx, a refusal):
    nothing was learnt, and the read may be tried again later."""


# --- signing --------------------------------------------------------------------------------


class HyperliquidSigner:
    """Signs L1 actions for one wallet key with ccxt's signing code; holds the key, never shows it."""

    __slots__ = ("_exchange", "address", "is_mainnet")

    def __init__(self, private_key: str, is_mainnet: bool = True) -> None:
        if not isinstance(private_key, str) or not _PRIVATE_KEY.fullmatch(private_key):
            raise HyperliquidError("private key must be 32 bytes of hex (64 hex digits, optional 0x)")
        key = private_key.lower().removeprefix("0x")
        RedactSecrets.register(key)
        RedactSecrets.register("0x" + key)
        RedactSecrets.register(private_key)
        # sync ccxt instance, used only for its signing helpers: it never sends a request
        self._exchange = ccxt.hyperliquid({"privateKey": "0x" + key})
        self._exchange.options["sandboxMode"] = not is_mainnet  # phantom agent source "a" / "b"
        self.is_mainnet = is_mainnet
        self.address = self._exchange.eth_get_address_from_private_key("0x" + key).lower()

    def __repr__(self) -> str:
        return f"HyperliquidSigner(address={self.address}, mainnet={self.is_mainnet})"

    __str__ = __repr__

    def action_hash(
        self, action: dict, nonce: int, vault_address: str | None = None, expires_after: int | None = None
    ) -> bytes:
        """connectionId = keccak256(msgpack(action) ‖ nonce:u64be ‖ vault tag ‖ [0x00 ‖ expiresAfter:u64be])."""
        data = bytes(self._exchange.packb(action)) + nonce.to_bytes(8, "big")
        if vault_address is None:
            data += b"\x00"
        else:
            data += b"\x01" + _address_bytes(vault_address)
        if expires_after is not None:
            data += b"\x00" + expires_after.to_bytes(8, "big")
        return bytes(keccak.SHA3(data))

    def typed_data(self, connection_id: bytes) -> bytes:
        """EIP-712 pre-image `0x1901 ‖ domainSeparator ‖ hashStruct(Agent)` of the phantom agent."""
        agent = self._exchange.construct_phantom_agent(connection_id, not self.is_mainnet)
        return bytes(self._exchange.eth_encode_structured_data(EIP712_DOMAIN, AGENT_TYPES, agent))

    def sign_l1_action(
        self, action: dict, nonce: int, vault_address: str | None = None, expires_after: int | None = None
    ) -> dict[str, Any]:
        """`{"r": "0x..", "s": "0x..", "v": 27|28}` as ccxt writes it (r and s zero-padded to 64 digits)."""
        message = self.typed_data(self.action_hash(action, nonce, vault_address, expires_after))
        return self._exchange.sign_message(message, self._exchange.privateKey)

    def user_signed_typed_data(self, primary_type: str, fields: list[tuple[str, str]], message: dict) -> bytes:
        """EIP-712 pre-image of a user-signed action (§7.2: domain HyperliquidSignTransaction,
        chainId 421614); `fields` are (name, type) in the venue's order, e.g. UsdSend's."""
        types = {primary_type: [{"name": name, "type": kind} for name, kind in fields]}
        domain = dict(EIP712_DOMAIN, name="HyperliquidSignTransaction", chainId=USER_SIGNED_CHAIN_ID)
        return bytes(self._exchange.eth_encode_structured_data(domain, types, message))

    def sign_user_signed_action(
        self, primary_type: str, fields: list[tuple[str, str]], message: dict
    ) -> dict[str, Any]:
        """Transfers, withdrawals, agent approval: `mm` quotes without them; kept for the vectors."""
        types = {primary_type: [{"name": name, "type": kind} for name, kind in fields]}
        return self._exchange.sign_user_signed_action(types, message)

    def signed_body(
        self, action: dict, nonce: int, vault_address: str | None = None, expires_after: int | None = None
    ) -> dict[str, Any]:
        """The `/exchange` body, ccxt style: unused `vaultAddress` / `expiresAfter` keys omitted."""
        body: dict[str, Any] = {
            "action": action,
            "nonce": nonce,
            "signature": self.sign_l1_action(action, nonce, vault_address, expires_after),
        }
        if vault_address is not None:
            body["vaultAddress"] = vault_address.lower()
        if expires_after is not None:
            body["expiresAfter"] = expires_after
        return body


def signer_from_environment(
    is_mainnet: bool = True, env_var: str = PRIVATE_KEY_ENV, environ: dict[str, str] | None = None
) -> HyperliquidSigner:
    environ = os.environ if environ is None else environ
    key = environ.get(env_var, "")
    if not key:
        raise HyperliquidError(f"no Hyperliquid wallet key: environment variable {env_var} is not set")
    RedactSecrets.register(key)
    return HyperliquidSigner(key, is_mainnet)


def recover_address(typed_data: bytes, signature: dict[str, Any]) -> str:
    """The signer's address from an EIP-712 pre-image and `{r, s, v}` (r/s compared as numbers:
    the SDK writes them unpadded, ccxt padded). For a local stand-in and for tests."""
    import coincurve  # ccxt's secp256k1 backend

    digest = bytes(keccak.SHA3(typed_data))
    r, s, v = int(signature["r"], 16), int(signature["s"], 16), int(signature["v"])
    if v not in (27, 28):
        raise ValueError(f"signature v must be 27 or 28, was {v}")
    compact = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v - 27])
    public = coincurve.PublicKey.from_signature_and_message(compact, digest, hasher=None)
    return "0x" + bytes(keccak.SHA3(public.format(compressed=False)[1:]))[-20:].hex()


def _address_bytes(address: str) -> bytes:
    lowered = address.lower()
    if not _ADDRESS.fullmatch(lowered):
        raise HyperliquidError(f"address must be 0x + 40 hex digits, was {address!r}")
    return bytes.fromhex(lowered[2:])


class NonceClock:
    """Strictly increasing ms nonces for one signer, fast-forwarded to the wall clock (§6)."""

    __slots__ = ("_clock_ms", "last")

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.last = 0

    def next(self) -> int:
        self.last = max(self.last + 1, self._clock_ms())
        return self.last


# --- assets and wire orders -----------------------------------------------------------------


class HyperliquidAsset(msgspec.Struct, frozen=True):
    coin: str
    asset_id: int  # the integer `a` of actions: perp = index in meta.universe, spot = 10000 + index
    sz_decimals: int
    is_spot: bool = False
    is_delisted: bool = False

    @property
    def grid(self) -> TickGrid:
        return grid_for(self.coin, self.sz_decimals, self.is_spot)


class _MetaAsset(msgspec.Struct):
    name: str
    szDecimals: int
    isDelisted: bool = False


class _Meta(msgspec.Struct):
    universe: list[_MetaAsset]


def assets_from_meta(meta: Any) -> dict[str, HyperliquidAsset]:
    """Perp assets from a `meta` (or `metaAndAssetCtxs[0]`) reply: the id is the universe index;
    delisted coins keep their slot so ids never shift."""
    parsed = msgspec.convert(meta, _Meta)
    return {
        item.name: HyperliquidAsset(item.name, index, item.szDecimals, False, item.isDelisted)
        for index, item in enumerate(parsed.universe)
    }


class HyperliquidOrder(msgspec.Struct, frozen=True, kw_only=True):
    coin: str
    is_buy: bool
    px_tick: int  # on the asset's fine grid; rounded to a valid venue price on the passive side
    qty_lot: int
    client_id: str  # ours (`mm.orders`), carries the prefix; the cloid is derived from it
    tif: Tif = "Alo"
    reduce_only: bool = False


def order_wire(asset: HyperliquidAsset, order: HyperliquidOrder, prefix: str) -> dict[str, Any]:
    """The order's wire dict, keys in the signed order a, b, p, s, r, t, c (§3)."""
    grid = asset.grid
    px_tick = round_px_tick(grid, order.px_tick, order.is_buy)
    return {
        "a": asset.asset_id,
        "b": order.is_buy,
        "p": format_wire_price(grid, px_tick),
        "s": format_wire_size(grid, order.qty_lot),
        "r": order.reduce_only,
        "t": {"limit": {"tif": order.tif}},
        "c": cloid_for(order.client_id, prefix),
    }


def order_value_usd_below_min(asset: HyperliquidAsset, order: HyperliquidOrder) -> bool:
    grid = asset.grid
    scale = 10 ** (grid.price_decimals + grid.qty_decimals)
    return not asset.is_spot and order.px_tick * order.qty_lot < MIN_ORDER_VALUE_USD * scale


# --- modify or cancel + place (pure) --------------------------------------------------------


class Modify(msgspec.Struct, frozen=True):
    """One `batchModify` entry: the resting order `cancel` names becomes the order `place` asks for."""

    cancel: CancelOrder
    place: PlaceOrder


def plan_modifies(commands: list[Any], resting_sides: dict[str, int]) -> list[Any]:
    """The commands of one turn, in order, with each cancel of an order that rests at the venue
    (`resting_sides`: its client id -> side, for acknowledged open orders only) paired with the
    first unpaired post-only place of the same side into one `Modify` at the cancel's place.

    Left as they are: a cancel of an order not known to rest (not acknowledged yet, or already
    being cancelled: the venue would refuse the modify), a place that is not post-only (a modify
    without `a` turns a non-crossing Gtc into Alo: not what was asked), and every command of a turn
    that holds a CancelAll (it cancels them all anyway)."""
    if any(isinstance(c, CancelAll) for c in commands):
        return list(commands)
    free = [c for c in commands if isinstance(c, PlaceOrder) and c.post_only]
    sides = dict(resting_sides)
    planned: list[Any] = []
    paired: set[int] = set()
    for command in commands:
        if isinstance(command, CancelOrder) and command.client_id in sides:
            side = sides.pop(command.client_id)
            place = next((p for p in free if p.side == side), None)
            if place is not None:
                free.remove(place)
                paired.add(id(place))
                planned.append(Modify(command, place))
                continue
        planned.append(command)
    return [c for c in planned if id(c) not in paired]


def modify_falls_back_to_place(error: str) -> bool:
    """A refused modify whose old order had already closed replaced nothing: the new order is
    then placed on its own (what cancel + place would have done). Any other refusal is the new
    order's (price, size, margin): it is rejected like a place would be."""
    return error.startswith(MODIFY_GONE)


# --- outcomes -------------------------------------------------------------------------------


class PlaceResult(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    cloid: str
    status: Literal["resting", "filled", "error", "unknown"]  # unknown: settle with query(cloid)
    oid: int | None = None
    error: str = ""
    filled_sz: str = ""
    avg_px: str = ""


class CancelResult(msgspec.Struct, frozen=True, kw_only=True):
    cloid: str
    status: Literal["success", "error", "unknown"]
    error: str = ""


class QueryResult(msgspec.Struct, frozen=True, kw_only=True):
    cloid: str
    status: str  # "unknownOid" (never placed), a venue order status (§3), or "unknown" (no answer)
    oid: int | None = None
    raw: Any = None


class HyperliquidTransport(Protocol):
    async def info(self, body: dict[str, Any]) -> Any: ...

    async def exchange(self, body: dict[str, Any]) -> Any: ...


class CcxtTransport:
    """POST /info and /exchange through ccxt's async client (TLS on, ccxt's rate limiter on).

    ccxt's `handle_errors` is switched off on this instance: it raises on the first per-order
    error and loses the other orders' statuses; the client reads every status itself. HTTP-level
    failures (429, 5xx, timeouts) still raise ccxt's exceptions.
    """

    def __init__(self, is_mainnet: bool = True, timeout_ms: int = 5_000) -> None:
        self._exchange = ccxt_async.hyperliquid({"enableRateLimit": True, "timeout": timeout_ms})
        if not is_mainnet:
            self._exchange.set_sandbox_mode(True)
        self._exchange.handle_errors = lambda *args, **kwargs: None

    async def info(self, body: dict[str, Any]) -> Any:
        return await self._exchange.public_post_info(body)

    async def exchange(self, body: dict[str, Any]) -> Any:
        return await self._exchange.private_post_exchange(body)

    async def close(self) -> None:
        await self._exchange.close()


# --- client ---------------------------------------------------------------------------------


class HyperliquidClient:
    """Async order path for one wallet (or one vault through `vault_address`)."""

    def __init__(
        self,
        signer: HyperliquidSigner,
        transport: HyperliquidTransport,
        assets: dict[str, HyperliquidAsset],
        prefix: str,
        *,
        user_address: str | None = None,
        vault_address: str | None = None,
        timeout_s: float = 5.0,
        nonces: NonceClock | None = None,
        expires_after_ms: int | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if not prefix:
            raise HyperliquidError("'prefix' must not be empty: cancel-all would not know our orders")
        self.signer = signer
        self.transport = transport
        self.assets = assets
        self.prefix = prefix
        # queries name the account (master, sub-account or vault), never an agent wallet (§6)
        self.user_address = (vault_address or user_address or signer.address).lower()
        self.vault_address = vault_address.lower() if vault_address else None
        self.timeout_s = timeout_s
        self.nonces = nonces or NonceClock(clock_ms)
        self.expires_after_ms = expires_after_ms  # relative: expiresAfter = nonce + this
        self._assets_by_id = {a.asset_id: a for a in assets.values()}

    def _asset(self, coin: str) -> HyperliquidAsset:
        asset = self.assets.get(coin)
        if asset is None:
            raise HyperliquidError(f"unknown Hyperliquid coin {coin!r}")
        return asset

    def build_order_body(self, orders: list[HyperliquidOrder], grouping: str = "na") -> dict[str, Any]:
        action = {
            "type": "order",
            "orders": [order_wire(self._asset(o.coin), o, self.prefix) for o in orders],
            "grouping": grouping,
        }
        return self._signed(action)

    def build_cancel_body(self, cancels: list[tuple[str, str]]) -> dict[str, Any]:
        """`cancelByCloid` for (coin, cloid) pairs; `f` (fast) omitted, never sent as false (§3)."""
        action = {
            "type": "cancelByCloid",
            "cancels": [{"asset": self._asset(coin).asset_id, "cloid": cloid} for coin, cloid in cancels],
        }
        return self._signed(action)

    def build_modify_body(self, modifies: list[tuple[str, HyperliquidOrder]]) -> dict[str, Any]:
        """`batchModify` of (old cloid, new order) pairs: entry keys `oid` then `order`, as the SDK."""
        action = {
            "type": "batchModify",
            "modifies": [{"oid": old, "order": order_wire(self._asset(o.coin), o, self.prefix)} for old, o in modifies],
        }
        return self._signed(action)

    def _signed(self, action: dict[str, Any]) -> dict[str, Any]:
        nonce = self.nonces.next()
        expires = nonce + self.expires_after_ms if self.expires_after_ms is not None else None
        return self.signer.signed_body(action, nonce, self.vault_address, expires)

    async def _call(self, kind: Literal["info", "exchange"], body: dict[str, Any]) -> tuple[Any, str]:
        """(reply, "") or (None, why): a timeout or transport failure is an unknown outcome."""
        send = self.transport.info if kind == "info" else self.transport.exchange
        try:
            return await asyncio.wait_for(send(body), self.timeout_s), ""
        except TimeoutError:
            return None, f"timeout after {self.timeout_s} s"
        except (ccxt.NetworkError, OSError) as e:  # 429 and 5xx included: settle by query
            return None, f"{type(e).__name__}: {e}"
        except ccxt.ExchangeError as e:  # a definite HTTP-level refusal (4xx)
            return {"status": "err", "response": f"{type(e).__name__}: {e}"}, ""

    async def place(self, orders: list[HyperliquidOrder]) -> list[PlaceResult]:
        """One signed batch; one result per order, in order. Orders below $10 are refused here."""
        if not orders:
            return []
        sendable: list[HyperliquidOrder] = []
        results: dict[int, PlaceResult] = {}
        for i, order in enumerate(orders):
            asset = self._asset(order.coin)
            if order_value_usd_below_min(asset, order):
                results[i] = PlaceResult(
                    client_id=order.client_id,
                    cloid=cloid_for(order.client_id, self.prefix),
                    status="error",
                    error=f"order value below ${MIN_ORDER_VALUE_USD} (refused locally)",
                )
            else:
                sendable.append(order)
        if sendable:
            body = self.build_order_body(sendable)
            reply, why = await self._call("exchange", body)
            statuses = _statuses(reply, len(sendable), why)
            sent = iter(zip(sendable, body["action"]["orders"], statuses))
            for i in range(len(orders)):
                if i not in results:
                    order, wire, status = next(sent)
                    results[i] = _place_result(order.client_id, wire["c"], status)
        return [results[i] for i in range(len(orders))]

    async def modify(self, modifies: list[tuple[str, HyperliquidOrder]]) -> list[PlaceResult]:
        """One signed `batchModify`: each of our resting orders (by old cloid) becomes its new order;
        one result per entry, as for places (`resting` / `filled` / `error` / `unknown`)."""
        if not modifies:
            return []
        for old, order in modifies:
            if not is_our_cloid(old, self.prefix):
                raise HyperliquidError(f"refusing to modify cloid {old!r}: not ours (prefix {self.prefix!r})")
            if order_value_usd_below_min(self._asset(order.coin), order):
                raise HyperliquidError(f"modify to {order.client_id}: order value below ${MIN_ORDER_VALUE_USD}")
        body = self.build_modify_body(modifies)
        reply, why = await self._call("exchange", body)
        statuses = _statuses(reply, len(modifies), why)
        return [_place_result(order.client_id, wire["order"]["c"], status)
                for (_, order), wire, status in zip(modifies, body["action"]["modifies"], statuses)]

    async def cancel(self, cancels: list[tuple[str, str]]) -> list[CancelResult]:
        """Cancel our orders by (coin, cloid); a cloid without our prefix tag is refused here."""
        if not cancels:
            return []
        for _, cloid in cancels:
            if not is_our_cloid(cloid, self.prefix):
                raise HyperliquidError(f"refusing to cancel cloid {cloid!r}: not ours (prefix {self.prefix!r})")
        reply, why = await self._call("exchange", self.build_cancel_body(cancels))
        out = []
        for (_, cloid), status in zip(cancels, _statuses(reply, len(cancels), why)):
            if status == "success":
                out.append(CancelResult(cloid=cloid, status="success"))
            elif isinstance(status, dict) and "error" in status:
                out.append(CancelResult(cloid=cloid, status="error", error=str(status["error"])))
            elif isinstance(status, dict) and "unknown" in status:
                out.append(CancelResult(cloid=cloid, status="unknown", error=str(status["unknown"])))
            else:
                out.append(CancelResult(cloid=cloid, status="error", error=f"unexpected status {status!r}"))
        return out

    async def info(self, body: dict[str, Any], shape: type = dict) -> Any:
        """The venue's answer to one /info read, of `shape`; raises VenueReadFailed naming the read."""
        reply, why = await self._call("info", body)
        if not isinstance(reply, shape):
            raise VenueReadFailed(f"info {body.get('type')}: {why or repr(reply)[:200]}")
        return reply

    async def open_orders(self) -> list[dict[str, Any]]:
        return await self.info({"type": "frontendOpenOrders", "user": self.user_address}, list)

    async def cancel_all_ours(self) -> list[CancelResult]:
        """Cancel every open order whose cloid carries our prefix tag; other orders stay."""
        open_orders = await self.open_orders()
        ours = [
            (o["coin"], o["cloid"])
            for o in open_orders
            if is_our_cloid(o.get("cloid"), self.prefix) and o.get("coin") in self.assets
        ]
        if not ours:
            return []
        results = await self.cancel(ours)
        log.info(
            "hyperliquid cancel_all_ours: cancelled=%d failed=%d left_foreign=%d",
            sum(r.status == "success" for r in results),
            sum(r.status != "success" for r in results),
            len(open_orders) - len(ours),
        )
        return results

    async def query(self, cloid: str) -> QueryResult:
        """`orderStatus` by cloid: settles an UNKNOWN order (`unknownOid` = never placed)."""
        reply, why = await self._call("info", {"type": "orderStatus", "user": self.user_address, "oid": cloid})
        if reply is None:
            return QueryResult(cloid=cloid, status="unknown", raw=why)
        if isinstance(reply, dict) and reply.get("status") == "unknownOid":
            return QueryResult(cloid=cloid, status="unknownOid", raw=reply)
        order = reply.get("order") if isinstance(reply, dict) else None
        if isinstance(order, dict) and isinstance(order.get("status"), str):
            inner = order.get("order") or {}
            return QueryResult(cloid=cloid, status=order["status"], oid=inner.get("oid"), raw=reply)
        return QueryResult(cloid=cloid, status="unknown", raw=reply)


def _statuses(reply: Any, count: int, why: str) -> list[Any]:
    """Per-element statuses of an /exchange reply, fanned out when the venue answers once."""
    if reply is None:
        return [{"unknown": why}] * count
    if not isinstance(reply, dict):
        return [{"error": f"unexpected reply {reply!r:.200}"}] * count
    if reply.get("status") == "err":
        return [{"error": str(reply.get("response"))}] * count
    data = (reply.get("response") or {}).get("data") or {}
    statuses = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(statuses, list):
        return [{"error": f"reply without statuses: {reply!r:.200}"}] * count
    if len(statuses) == 1 and count > 1:  # a batch-wide error comes back once (§1)
        return statuses * count
    if len(statuses) != count:
        return [{"error": f"{len(statuses)} statuses for {count} requests"}] * count
    return statuses


def _place_result(client_id: str, cloid: str, status: Any) -> PlaceResult:
    if isinstance(status, dict):
        if "resting" in status:
            return PlaceResult(client_id=client_id, cloid=cloid, status="resting", oid=status["resting"].get("oid"))
        if "filled" in status:
            filled = status["filled"]
            return PlaceResult(client_id=client_id, cloid=cloid, status="filled", oid=filled.get("oid"),
                               filled_sz=str(filled.get("totalSz", "")), avg_px=str(filled.get("avgPx", "")))
        if "error" in status:
            return PlaceResult(client_id=client_id, cloid=cloid, status="error", error=str(status["error"]))
        if "unknown" in status:
            return PlaceResult(client_id=client_id, cloid=cloid, status="unknown", error=str(status["unknown"]))
    return PlaceResult(client_id=client_id, cloid=cloid, status="error", error=f"unexpected status {status!r:.200}")
