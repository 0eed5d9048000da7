"""Hyperliquid wallet signing against every official vector of HYPERLIQUID.md §8, signer recovery,
the venue's number rules, cloids, and the async client over a fake transport (no network).

The EIP-712 hashes and the address recovery here are computed independently of the adapter
(keccak from ccxt's bundled `keccak`, secp256k1 recovery from `coincurve`, ccxt's backend), so a
wrong pre-image cannot recover the right address (HYPERLIQUID.md §7.3).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import coincurve
import pytest
from ccxt.static_dependencies import keccak

from mm.hyperliquid_frames import (
    cloid_for,
    format_wire_number,
    grid_for,
    is_our_cloid,
    is_valid_price,
    round_px_tick,
)
from processes.hyperliquid_adapter import (
    HyperliquidAsset,
    HyperliquidClient,
    HyperliquidError,
    HyperliquidOrder,
    HyperliquidSigner,
    NonceClock,
    assets_from_meta,
    recover_address,
    signer_from_environment,
)
from processes.redaction import RedactSecrets

PRIVATE_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
ADDRESS = "0x14791697260E4c9A71f18484C9f997B308e59325"
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"

ORDER_A = {"type": "order", "orders": [{"a": 1, "b": True, "p": "100", "s": "100", "r": False,
                                          "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"}
ORDER_B = {"type": "order", "orders": [{"a": 1, "b": True, "p": "100", "s": "100", "r": False,
                                          "t": {"limit": {"tif": "Gtc"}},
                                          "c": "0x00000000000000000000000000000001"}], "grouping": "na"}
DUMMY = {"type": "dummy", "num": 100_000_000_000}

# (name, action, is_mainnet, vault, nonce, r, s, v) — HYPERLIQUID.md §8 (SDK tests/signing_test.py)
L1_VECTORS = [
    ("A", ORDER_A, True, None, 0,
     "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
     "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e", 28),
    ("A-testnet", ORDER_A, False, None, 0,
     "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
     "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5", 27),
    ("B", ORDER_B, True, None, 0,
     "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
     "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da", 27),
    ("B-testnet", ORDER_B, False, None, 0,
     "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
     "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988", 28),
    ("C", DUMMY, True, None, 0,
     "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
     "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8", 27),
    ("C-testnet", DUMMY, False, None, 0,
     "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
     "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613", 28),
    ("D", DUMMY, True, VAULT, 0,
     "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
     "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c", 28),
    ("E", {"type": "scheduleCancel"}, True, None, 0,
     "0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
     "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0", 27),
    ("F", {"type": "scheduleCancel", "time": 123456789}, True, None, 0,
     "0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55",
     "0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b", 28),
    ("realistic-nonce", ORDER_A, True, None, 1795580000123,
     "0x7f65794ab2f6d08d975fa35201473d6ecc56889018df2548bb53ac7d27b0f2a2",
     "0x70b816d92edec7a73109c453932e0a9c1d895e5b201d05cda89e31b8fc5f32bf", 27),
]

USD_SEND_FIELDS = [("hyperliquidChain", "string"), ("destination", "string"), ("amount", "string"), ("time", "uint64")]
USER_MESSAGE = {"destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a", "amount": "1", "time": 1687816341423,
                "hyperliquidChain": "Testnet", "signatureChainId": "0x66eee"}
# (primary type, r, s, v) — testnet user-signed vectors of §8
USER_VECTORS = [
    ("HyperliquidTransaction:UsdSend",
     "0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073",
     "0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7", 27),
    ("HyperliquidTransaction:Withdraw",
     "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
     "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881", 28),
]


# --- independent EIP-712 and recovery ---------------------------------------------------------


def _keccak(data: bytes) -> bytes:
    return bytes(keccak.SHA3(data))


def _domain_separator(name: str, chain_id: int) -> bytes:
    type_hash = _keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    return _keccak(type_hash + _keccak(name.encode()) + _keccak(b"1") + chain_id.to_bytes(32, "big") + bytes(32))


def _agent_digest(connection_id: bytes, is_mainnet: bool) -> bytes:
    """keccak(0x1901 ‖ domainSeparator(Exchange, 1337) ‖ hashStruct(Agent{source, connectionId}))."""
    type_hash = _keccak(b"Agent(string source,bytes32 connectionId)")
    struct_hash = _keccak(type_hash + _keccak(b"a" if is_mainnet else b"b") + connection_id)
    return _keccak(b"\x19\x01" + _domain_separator("Exchange", 1337) + struct_hash)


def _user_digest(primary_type: str, message: dict[str, Any]) -> bytes:
    type_hash = _keccak(f"{primary_type}(string hyperliquidChain,string destination,string amount,uint64 time)".encode())
    struct_hash = _keccak(
        type_hash
        + _keccak(message["hyperliquidChain"].encode())
        + _keccak(message["destination"].encode())
        + _keccak(message["amount"].encode())
        + message["time"].to_bytes(32, "big")
    )
    return _keccak(b"\x19\x01" + _domain_separator("HyperliquidSignTransaction", 421614) + struct_hash)


def _recover(digest: bytes, r: int, s: int, v: int) -> str:
    compact = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v - 27])
    public = coincurve.PublicKey.from_signature_and_message(compact, digest, hasher=None)
    return "0x" + _keccak(public.format(compressed=False)[1:])[-20:].hex()


def _independent_action_hash(msgpack_bytes: bytes, nonce: int, vault: str | None) -> bytes:
    tail = b"\x00" if vault is None else b"\x01" + bytes.fromhex(vault[2:])
    return _keccak(msgpack_bytes + nonce.to_bytes(8, "big") + tail)


@pytest.fixture(scope="module")
def signers() -> dict[bool, HyperliquidSigner]:
    return {True: HyperliquidSigner(PRIVATE_KEY, is_mainnet=True), False: HyperliquidSigner(PRIVATE_KEY, is_mainnet=False)}


# --- vectors ----------------------------------------------------------------------------------


def test_signer_address_matches_vector_key(signers):
    assert signers[True].address == ADDRESS.lower()


def test_msgpack_of_vector_a_matches_byte_check(signers):
    expected = ("83a474797065a56f72646572a66f72646572739186a16101a162c3a170a3313030a173a3313030a172c2a17481a56c"
                "696d697481a3746966a3477463a867726f7570696e67a26e61")
    assert bytes(signers[True]._exchange.packb(ORDER_A)).hex() == expected


def test_action_hash_hash_only_vector_reproduces_connection_id(signers):
    action = {"type": "order", "orders": [{"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False,
                                           "t": {"limit": {"tif": "Ioc"}}}], "grouping": "na"}
    connection_id = signers[True].action_hash(action, 1677777606040)
    assert connection_id.hex() == "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"


@pytest.mark.parametrize("name,action,is_mainnet,vault,nonce,r,s,v", L1_VECTORS, ids=[v[0] for v in L1_VECTORS])
def test_sign_l1_action_vector_reproduced_and_signer_recovered(signers, name, action, is_mainnet, vault, nonce, r, s, v):
    signer = signers[is_mainnet]
    connection_id = signer.action_hash(action, nonce, vault)
    packed = bytes(signer._exchange.packb(action))
    assert connection_id == _independent_action_hash(packed, nonce, vault)
    typed_data = signer.typed_data(connection_id)
    digest = _agent_digest(connection_id, is_mainnet)
    assert _keccak(typed_data) == digest  # ccxt's EIP-712 encoding = the independent one

    signature = signer.sign_l1_action(action, nonce, vault)

    # r/s as numbers: the SDK writes them unpadded (62/63 digits occur), ccxt zero-pads to 64
    assert (int(signature["r"], 16), int(signature["s"], 16), signature["v"]) == (int(r, 16), int(s, 16), v)
    assert len(signature["r"]) == len(signature["s"]) == 66
    assert _recover(digest, int(r, 16), int(s, 16), v) == ADDRESS.lower()  # the vector's own signature
    assert recover_address(typed_data, signature) == ADDRESS.lower()


@pytest.mark.parametrize("primary_type,r,s,v", USER_VECTORS, ids=[v[0].split(":")[1] for v in USER_VECTORS])
def test_user_signed_vector_reproduced_and_signer_recovered(signers, primary_type, r, s, v):
    signer = signers[False]
    typed_data = signer.user_signed_typed_data(primary_type, USD_SEND_FIELDS, USER_MESSAGE)
    digest = _user_digest(primary_type, USER_MESSAGE)
    assert _keccak(typed_data) == digest

    signature = signer.sign_user_signed_action(primary_type, USD_SEND_FIELDS, USER_MESSAGE)

    assert (int(signature["r"], 16), int(signature["s"], 16), signature["v"]) == (int(r, 16), int(s, 16), v)
    assert _recover(digest, int(r, 16), int(s, 16), v) == ADDRESS.lower()


@pytest.mark.parametrize(
    "action,vault,expires_after",
    [(ORDER_A, None, None), (DUMMY, VAULT, None), (ORDER_B, None, 1795580060000), (DUMMY, VAULT, 1795580060000)],
)
def test_action_hash_equals_ccxt_at_realistic_nonce(signers, action, vault, expires_after):
    signer = signers[True]
    nonce = 1795580000004
    ccxt_vault = signer._exchange.format_vault_address(vault)
    assert signer.action_hash(action, nonce, vault, expires_after) == bytes(
        signer._exchange.action_hash(action, ccxt_vault, nonce, expires_after)
    )


def test_sign_l1_action_equals_ccxt_sign_l1_action_at_realistic_nonce(signers):
    signer = signers[True]
    action = {"type": "scheduleCancel", "time": 1795580999999}
    nonce = 1795580000004
    assert signer.sign_l1_action(action, nonce) == signer._exchange.sign_l1_action(action, nonce)


def test_sign_l1_action_trailing_zero_price_changes_signature(signers):
    with_zero = {**ORDER_A, "orders": [{**ORDER_A["orders"][0], "p": "100.0"}]}
    assert signers[True].sign_l1_action(with_zero, 0) != signers[True].sign_l1_action(ORDER_A, 0)


# --- key handling -----------------------------------------------------------------------------


def test_signer_key_redacted_from_logs_and_repr(caplog):
    signer = signer_from_environment(environ={"MM_HYPERLIQUID_PRIVATE_KEY": PRIVATE_KEY})
    logger = logging.getLogger("test.hyperliquid.redaction")
    logger.addFilter(RedactSecrets(set()))
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("key=%s bare=%s signer=%r", PRIVATE_KEY, PRIVATE_KEY[2:], signer)
    text = caplog.text
    assert PRIVATE_KEY[2:] not in text and PRIVATE_KEY[2:].upper() not in text
    assert PRIVATE_KEY[2:] not in repr(signer) and ADDRESS.lower() in repr(signer)


def test_signer_from_environment_missing_key_raises():
    with pytest.raises(HyperliquidError, match="MM_HYPERLIQUID_PRIVATE_KEY"):
        signer_from_environment(environ={})


def test_signer_malformed_key_raises_without_echoing_it():
    with pytest.raises(HyperliquidError) as info:
        HyperliquidSigner("0x1234deadbeef")
    assert "1234deadbeef" not in str(info.value)


# --- price and size rules, cloids ---------------------------------------------------------------


@pytest.mark.parametrize(
    "price,sz_decimals,is_spot,valid",
    [
        ("1234.5", 0, False, True), ("1234.56", 0, False, False),
        ("0.001234", 0, False, True), ("0.0012345", 0, False, False),
        ("0.01234", 1, False, True), ("0.012345", 1, False, False),
        ("123456", 0, False, True), ("12345.6", 0, False, False),
        ("0.0001234", 0, True, True), ("0.0001234", 1, True, True),
        ("0.0001234", 2, True, False), ("0.0001234", 3, True, False),
        ("105055", 5, False, True), ("105055.5", 5, False, False),
    ],
)
def test_is_valid_price_doc_table(price, sz_decimals, is_spot, valid):
    grid = grid_for("X", sz_decimals, is_spot)
    whole, _, frac = price.partition(".")
    if len(frac) > grid.price_decimals:
        assert not valid  # more decimals than the grid holds: off the grid, invalid
        return
    px_tick = int(whole + frac.ljust(grid.price_decimals, "0"))
    assert is_valid_price(grid, px_tick) is valid


@pytest.mark.parametrize(
    "sz_decimals,px_tick,is_buy,expected",
    [
        (5, 1050555, True, 1050550), (5, 1050555, False, 1050560),  # BTC 105055.5 -> 105055 / 105056
        (4, 250055, True, 250050), (4, 250055, False, 250060),  # ETH 2500.55 -> 2500.5 / 2500.6
        (4, 250050, True, 250050),  # already valid: unchanged
        (4, 999995, False, 1000000),  # 9999.95 ask -> 10000
        (0, 123456, True, 123450),  # 0.123456 -> 0.12345 bid
    ],
)
def test_round_px_tick_passive_side(sz_decimals, px_tick, is_buy, expected):
    grid = grid_for("X", sz_decimals)
    rounded = round_px_tick(grid, px_tick, is_buy)
    assert rounded == expected and is_valid_price(grid, rounded)


def test_format_wire_number_drops_trailing_zeros():
    assert [format_wire_number(u, d) for u, d in [(1050550, 1), (147, 4), (100, 0), (1231, 8), (0, 3)]] == [
        "105055", "0.0147", "100", "0.00001231", "0"]


def test_cloid_for_carries_prefix_and_is_stable():
    cloid = cloid_for("mmABC17", "mm")
    assert cloid == cloid_for("mmABC17", "mm") and len(cloid) == 34 and cloid.startswith("0x")
    assert is_our_cloid(cloid, "mm") and not is_our_cloid(cloid, "other")
    assert not is_our_cloid("0x00000000000000000000000000000001", "mm") and not is_our_cloid(None, "mm")
    assert cloid_for("mmABC18", "mm") != cloid


def test_assets_from_meta_ids_are_universe_index():
    meta = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
                         {"name": "ETH", "szDecimals": 4, "maxLeverage": 50},
                         {"name": "OLD", "szDecimals": 2, "maxLeverage": 3, "isDelisted": True}]}
    assets = assets_from_meta(meta)
    assert (assets["BTC"].asset_id, assets["ETH"].asset_id, assets["OLD"].asset_id) == (0, 1, 2)
    assert assets["OLD"].is_delisted and assets["BTC"].grid.price_decimals == 1


# --- client over a fake transport ---------------------------------------------------------------


class FakeTransport:
    """Records every body; answers from queues of canned replies (or raises them)."""

    def __init__(self, exchange_replies: list[Any] | None = None, info_replies: list[Any] | None = None) -> None:
        self.exchange_replies = list(exchange_replies or [])
        self.info_replies = list(info_replies or [])
        self.exchange_bodies: list[dict[str, Any]] = []
        self.info_bodies: list[dict[str, Any]] = []

    async def exchange(self, body: dict[str, Any]) -> Any:
        self.exchange_bodies.append(body)
        return self._answer(self.exchange_replies.pop(0))

    async def info(self, body: dict[str, Any]) -> Any:
        self.info_bodies.append(body)
        return self._answer(self.info_replies.pop(0))

    @staticmethod
    def _answer(reply: Any) -> Any:
        if isinstance(reply, BaseException):
            raise reply
        return reply


ASSETS = {"BTC": HyperliquidAsset("BTC", 0, 5), "ETH": HyperliquidAsset("ETH", 1, 4)}


def _client(transport: FakeTransport, signer: HyperliquidSigner, **kwargs: Any) -> HyperliquidClient:
    return HyperliquidClient(signer, transport, ASSETS, "mm", nonces=NonceClock(lambda: 1795580000000), **kwargs)


def _order(client_id: str, is_buy: bool = True, px_tick: int = 1050555, qty_lot: int = 100) -> HyperliquidOrder:
    return HyperliquidOrder(coin="BTC", is_buy=is_buy, px_tick=px_tick, qty_lot=qty_lot, client_id=client_id)


def test_place_signed_body_recovers_signer_and_maps_statuses(signers):
    transport = FakeTransport(exchange_replies=[{"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"resting": {"oid": 77738308}}, {"filled": {"totalSz": "0.001", "avgPx": "105056.0", "oid": 2**40}}]}}}])
    client = _client(transport, signers[True])

    results = asyncio.run(client.place([_order("mmA1"), _order("mmA2", is_buy=False)]))

    body = transport.exchange_bodies[0]
    assert [o["p"] for o in body["action"]["orders"]] == ["105055", "105056"]  # bid floored, ask ceiled
    assert list(body["action"]["orders"][0]) == ["a", "b", "p", "s", "r", "t", "c"]
    assert body["action"]["orders"][0]["s"] == "0.001" and body["action"]["orders"][0]["t"] == {"limit": {"tif": "Alo"}}
    assert "vaultAddress" not in body and "builder" not in body["action"] and body["nonce"] == 1795580000000
    typed = signers[True].typed_data(signers[True].action_hash(body["action"], body["nonce"]))
    assert recover_address(typed, body["signature"]) == ADDRESS.lower()
    assert [(r.status, r.oid) for r in results] == [("resting", 77738308), ("filled", 2**40)]
    assert results[0].cloid == cloid_for("mmA1", "mm") == body["action"]["orders"][0]["c"]


def test_place_whole_request_error_fans_out_to_every_order(signers):
    transport = FakeTransport(exchange_replies=[{"status": "err", "response": "User or API Wallet 0xabc does not exist."}])
    results = asyncio.run(_client(transport, signers[True]).place([_order("mmA1"), _order("mmA2")]))
    assert [r.status for r in results] == ["error", "error"] and "does not exist" in results[1].error


def test_place_timeout_is_unknown_not_resent(signers):
    transport = FakeTransport(exchange_replies=[TimeoutError()])
    results = asyncio.run(_client(transport, signers[True]).place([_order("mmA1")]))
    assert results[0].status == "unknown" and len(transport.exchange_bodies) == 1


def test_place_below_min_value_refused_locally(signers):
    transport = FakeTransport(exchange_replies=[{"status": "ok", "response": {"type": "order", "data": {
        "statuses": [{"resting": {"oid": 5}}]}}}])
    results = asyncio.run(_client(transport, signers[True]).place([_order("mmA1", qty_lot=1), _order("mmA2")]))
    assert [r.status for r in results] == ["error", "resting"]
    assert len(transport.exchange_bodies[0]["action"]["orders"]) == 1


def test_place_nonces_strictly_increase(signers):
    ok = {"status": "ok", "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": 1}}]}}}
    transport = FakeTransport(exchange_replies=[ok, ok])
    client = _client(transport, signers[True])
    asyncio.run(client.place([_order("mmA1")]))
    asyncio.run(client.place([_order("mmA2")]))
    assert transport.exchange_bodies[1]["nonce"] > transport.exchange_bodies[0]["nonce"]


def test_cancel_all_ours_touches_only_prefixed_cloids(signers):
    ours = cloid_for("mmA1", "mm")
    open_orders = [
        {"coin": "BTC", "oid": 1, "cloid": ours},
        {"coin": "BTC", "oid": 2, "cloid": cloid_for("otherX1", "other")},
        {"coin": "ETH", "oid": 3},  # no cloid: someone else's
    ]
    transport = FakeTransport(
        info_replies=[open_orders],
        exchange_replies=[{"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}],
    )
    results = asyncio.run(_client(transport, signers[True]).cancel_all_ours())

    action = transport.exchange_bodies[0]["action"]
    assert action == {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": ours}]}  # no "f": false
    assert [(r.cloid, r.status) for r in results] == [(ours, "success")]
    assert transport.info_bodies[0] == {"type": "frontendOpenOrders", "user": ADDRESS.lower()}


def test_cancel_foreign_cloid_refused(signers):
    client = _client(FakeTransport(), signers[True])
    with pytest.raises(HyperliquidError, match="not ours"):
        asyncio.run(client.cancel([("BTC", "0x00000000000000000000000000000001")]))


def test_cancel_error_status_reported(signers):
    transport = FakeTransport(exchange_replies=[{"status": "ok", "response": {"type": "cancel", "data": {"statuses": [
        {"error": "Order was never placed, already canceled, or filled."}]}}}])
    results = asyncio.run(_client(transport, signers[True]).cancel([("BTC", cloid_for("mmA1", "mm"))]))
    assert results[0].status == "error" and "never placed" in results[0].error


def test_query_by_cloid_unknown_and_open(signers):
    cloid = cloid_for("mmA1", "mm")
    transport = FakeTransport(info_replies=[
        {"status": "unknownOid"},
        {"status": "order", "order": {"order": {"coin": "BTC", "oid": 57118842019, "cloid": cloid}, "status": "open",
                                      "statusTimestamp": 1785261289146}},
    ])
    client = _client(transport, signers[True])
    assert asyncio.run(client.query(cloid)).status == "unknownOid"
    result = asyncio.run(client.query(cloid))
    assert (result.status, result.oid) == ("open", 57118842019)
    assert transport.info_bodies[0] == {"type": "orderStatus", "user": ADDRESS.lower(), "oid": cloid}


def test_vault_client_signs_vault_and_queries_it(signers):
    transport = FakeTransport(exchange_replies=[{"status": "ok", "response": {"type": "order", "data": {
        "statuses": [{"resting": {"oid": 9}}]}}}])
    client = _client(transport, signers[True], vault_address=VAULT, expires_after_ms=5_000)
    asyncio.run(client.place([_order("mmA1")]))
    body = transport.exchange_bodies[0]
    assert body["vaultAddress"] == VAULT and body["expiresAfter"] == body["nonce"] + 5_000
    typed = signers[True].typed_data(signers[True].action_hash(body["action"], body["nonce"], VAULT, body["expiresAfter"]))
    assert recover_address(typed, body["signature"]) == ADDRESS.lower()
    assert client.user_address == VAULT
