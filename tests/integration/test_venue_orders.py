"""The local venue's order API (processes.venue_orders on processes.venue_market's REST app) driven by
the REAL ccxt async client and by processes.binance_adapter, in-process on 127.0.0.1 ephemeral ports.

Each test runs one asyncio loop (venue + clients), bounded by TEST_TIMEOUT_S; waits poll to a deadline.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest

from mm.journal import FsyncPolicy
from mm.orders import OrderState, Side
from mm.rate_limit import RateLimitPolicy
from mm.signing import sign_payload
from mm.ticks import grid_from_sizes, parse_price
from processes.binance_adapter import AdapterConfig, BinanceAdapter
from processes.journal_file import JournalFile
from processes.venue_market import VenueMarket
from processes.venue_orders import (
    MatchingEngine,
    OrderFaults,
    OrderLimits,
    OrderSide,
    RateLimitRule,
    SymbolRules,
    attach,
    book_seeder,
    parse_venue_keys,
    verify_request,
)
from tests.conftest import run_async, wait_until_async

TEST_TIMEOUT_S = 40.0
SYMBOL = "BTCUSDT"
KEY = "mmTestKeyA1b2C3d4E5f6G7h8"
SECRET = "mmTestSecret-Zq9Xw8Vu7Ts6Rp5On4Ml3Kj2"
OTHER_KEY = "mmOtherKey9z8y7x6w5v4u3t2s"
OTHER_SECRET = "mmOtherSecret-aaaabbbbccccddddeeee"
PREFIX = "mmt-"
GRID = grid_from_sizes(SYMBOL, "0.01", "0.00001", 8, 8)
RULES = SymbolRules(symbol=SYMBOL, base_asset="BTC", quote_asset="USDT", tick_size="0.01", lot_size="0.00001",
                    min_notional="5")
LOOPBACK_POLICY = RateLimitPolicy(clock_skew_ns=20_000_000, max_latency_ns=50_000_000, max_delay_low_ns=2_000_000_000)

# BINANCE.md §3.1, official vectors
V_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
V1_QUERY = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
            "&timestamp=1499827319559")
V1_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
V2_QUERY = ("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC"
            "&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
V2_SIG = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
V3_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
V3_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
V3_SIG = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


async def eventually(condition: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
    return await wait_until_async(condition, timeout_s, what)


def mount(market: VenueMarket, side: OrderSide, monkeypatch: pytest.MonkeyPatch) -> None:
    attach(market, side)


class Venue:
    def __init__(self, market: VenueMarket, side: OrderSide) -> None:
        self.market = market
        self.side = side

    @property
    def url(self) -> str:
        return self.market.http_url

    def best(self) -> tuple[int, int]:
        top = self.market.book_top(SYMBOL, 1)
        return parse_price(GRID, top["bids"][0][0]), parse_price(GRID, top["asks"][0][0])

    def orders_with(self, client_id: str) -> int:
        return sum(1 for o in self.side.engine.orders.values() if o.client_id == client_id)


async def start_venue(monkeypatch: pytest.MonkeyPatch, *, limits: OrderLimits | None = None,
                      faults: OrderFaults | None = None) -> Venue:
    market = VenueMarket(symbol=SYMBOL, port=0, http_port=0)
    keys = {KEY: SECRET, OTHER_KEY: OTHER_SECRET}
    engine = MatchingEngine({SYMBOL: RULES}, keys=keys, seed_book=book_seeder(market))
    side = OrderSide(engine, keys=keys, symbols={SYMBOL: RULES}, faults=faults, limits=limits)
    mount(market, side, monkeypatch)
    await market.start()
    await eventually(lambda: market.books.books.get(SYMBOL) is not None
                     and market.books.books[SYMBOL].sync.is_synced
                     and market.book_top(SYMBOL, 1)["asks"], what="venue book")
    return Venue(market, side)


def ccxt_client(venue: Venue, key: str = KEY, secret: str = SECRET) -> ccxt_async.binance:
    """Configured exactly as BINANCE.md §9 says, nothing else."""
    exchange = ccxt_async.binance({"apiKey": key, "secret": secret, "options": {
        "fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}}})
    exchange.urls["api"]["public"] = venue.url + "/api/v3"
    exchange.urls["api"]["private"] = venue.url + "/api/v3"
    return exchange


def make_adapter(venue: Venue, **overrides: Any) -> BinanceAdapter:
    values: dict[str, Any] = dict(symbol=SYMBOL, prefix=PREFIX, instance="a", base_url=venue.url,
                                  recv_window_ms=500, timeout_s=0.5, backoff_initial_s=0.01,
                                  backoff_max_s=0.1, policy=LOOPBACK_POLICY)
    values.update(overrides)
    return BinanceAdapter(AdapterConfig(**values), KEY, SECRET, rng=random.Random(3))


# ---- signature vectors --------------------------------------------------------------------------


def test_venue_verifier_accepts_official_hmac_vectors() -> None:
    assert sign_payload(V_SECRET, V1_QUERY) == V1_SIG
    assert verify_request(V_SECRET, f"{V1_QUERY}&signature={V1_SIG}", "")
    assert verify_request(V_SECRET, "", f"{V1_QUERY}&signature={V1_SIG}")   # all in the body
    assert verify_request(V_SECRET, f"{V2_QUERY}&signature={V2_SIG}", "")   # non-ASCII, percent-encoded
    assert verify_request(V_SECRET, V3_QUERY, f"{V3_BODY}&signature={V3_SIG}")  # query ‖ body
    assert verify_request(V_SECRET, f"{V1_QUERY}&signature={V1_SIG.upper()}", "")  # hex case-insensitive


def test_venue_verifier_rejects_altered_payload_or_missing_signature() -> None:
    assert not verify_request(V_SECRET, f"{V1_QUERY.replace('0.1', '0.2')}&signature={V1_SIG}", "")
    assert not verify_request(V_SECRET, V1_QUERY, "")
    assert not verify_request("wrong", f"{V1_QUERY}&signature={V1_SIG}", "")


def test_parse_venue_keys_pairs_and_errors() -> None:
    assert parse_venue_keys("a:b,c:d") == {"a": "b", "c": "d"}
    with pytest.raises(ValueError) as info:
        parse_venue_keys("keyonly,x:verysecretvalue")
    assert "verysecretvalue" not in str(info.value)


# ---- ccxt against the venue -------------------------------------------------------------------


def test_ccxt_loads_markets_places_lists_cancels_queries_post_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        venue = await start_venue(monkeypatch)
        exchange = ccxt_client(venue)
        try:
            markets = await exchange.load_markets()
            assert "BTC/USDT" in markets
            book = await exchange.fetch_order_book("BTC/USDT", 5)
            assert book["bids"] and book["asks"]
            balance_before = await exchange.fetch_balance()
            bid, _ = venue.best()
            price = float(GRID.tick_size * (bid - 100))
            order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, price,
                                                {"postOnly": True, "clientOrderId": "user-1"})
            assert order["status"] == "open" and order["clientOrderId"] == "user-1"
            open_orders = await exchange.fetch_open_orders("BTC/USDT")
            assert [o["id"] for o in open_orders] == [order["id"]]
            assert open_orders[0]["info"]["type"] == "LIMIT_MAKER"
            locked = await exchange.fetch_balance()
            assert locked["USDT"]["used"] == pytest.approx(price * 0.01)
            cancelled = await exchange.cancel_order(order["id"], "BTC/USDT")
            assert cancelled["status"] == "canceled"
            queried = await exchange.fetch_order(order["id"], "BTC/USDT")
            assert queried["status"] == "canceled"
            by_client = await exchange.fetch_order(None, "BTC/USDT", {"origClientOrderId": "user-1"})
            assert by_client["id"] == order["id"]
            after = await exchange.fetch_balance()
            assert after["USDT"]["free"] == balance_before["USDT"]["free"] and after["USDT"]["used"] == 0
            assert await exchange.fetch_open_orders("BTC/USDT") == []
            assert "X-MBX-USED-WEIGHT-1M" in exchange.last_response_headers
        finally:
            await exchange.close()
            await venue.market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_ccxt_taker_fill_moves_balances_and_shows_trade(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        venue = await start_venue(monkeypatch)
        exchange = ccxt_client(venue)
        try:
            await exchange.load_markets()
            before = await exchange.fetch_balance()
            _, ask = venue.best()
            order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, float(GRID.tick_size * (ask + 500)),
                                                {"timeInForce": "IOC"})
            assert order["filled"] == pytest.approx(0.001)
            after = await exchange.fetch_balance()
            assert after["BTC"]["free"] == pytest.approx(before["BTC"]["free"] + 0.001)
            assert after["USDT"]["free"] < before["USDT"]["free"] and after["USDT"]["used"] == 0
            trades = await exchange.fetch_my_trades("BTC/USDT")
            assert len(trades) >= 1 and trades[0]["order"] == order["id"]
        finally:
            await exchange.close()
            await venue.market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_ccxt_refusals_carry_venue_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        venue = await start_venue(monkeypatch)
        good = ccxt_client(venue)
        wrong_secret = ccxt_client(venue, KEY, "not-the-secret-at-all")
        unknown_key = ccxt_client(venue, "nobodyskey123", "whatever-secret")
        try:
            await good.load_markets()
            wrong_secret.markets, wrong_secret.markets_by_id = good.markets, good.markets_by_id
            with pytest.raises(ccxt_async.AuthenticationError, match="-1022"):
                await wrong_secret.fetch_balance()
            with pytest.raises(ccxt_async.AuthenticationError, match="-2015"):
                await unknown_key.fetch_balance()
            good.options["timeDifference"] = 10_000  # our timestamps 10 s behind the venue's clock
            with pytest.raises(ccxt_async.InvalidNonce, match="-1021"):
                await good.fetch_balance()
            good.options["timeDifference"] = -5_000  # 5 s ahead
            with pytest.raises(ccxt_async.InvalidNonce, match="-1021"):
                await good.fetch_balance()
            good.options["timeDifference"] = 0
            _, ask = venue.best()
            with pytest.raises(ccxt_async.OrderImmediatelyFillable):
                await good.create_order("BTC/USDT", "limit", "buy", 0.01, float(GRID.tick_size * ask),
                                        {"postOnly": True})
            assert venue.side.counts["error_-2010"] == 1
            with pytest.raises(ccxt_async.OrderNotFound, match="-2011"):
                await good.cancel_order("999999", "BTC/USDT")
            with pytest.raises(ccxt_async.OrderNotFound, match="-2013"):
                await good.fetch_order("999999", "BTC/USDT")
            base = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT_MAKER"}
            for params, name in (({"price": "1000.005", "quantity": "0.01"}, "PRICE_FILTER"),
                                 ({"price": "1000.00", "quantity": "0.000015"}, "LOT_SIZE"),
                                 ({"price": "1000.00", "quantity": "0.00100"}, "NOTIONAL")):
                with pytest.raises((ccxt_async.InvalidOrder, ccxt_async.BadRequest), match=f"-1013.*{name}"):
                    await good.privatePostOrder(base | params)
            assert venue.side.engine.counts["orders_accepted"] == 0
        finally:
            for exchange in (good, wrong_secret, unknown_key):
                await exchange.close()
            await venue.market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_direct_burst_without_limiter_gets_429_with_retry_after_then_418(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = OrderLimits(rate_limits=(RateLimitRule(kind="REQUEST_WEIGHT", interval="MINUTE", interval_num=1,
                                                    limit=100),), ban_after_429s=3, ban_s=5)

    async def scenario() -> None:
        venue = await start_venue(monkeypatch, limits=limits)
        statuses: list[tuple[int, str | None, str | None]] = []
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(20):  # 20 x weight 20 against 100 per minute
                    async with session.get(venue.url + "/api/v3/exchangeInfo") as response:
                        statuses.append((response.status, response.headers.get("Retry-After"),
                                         response.headers.get("X-MBX-USED-WEIGHT-1M")))
                    if response.status == 418:
                        break
        finally:
            await venue.market.stop()
        codes = [s for s, _, _ in statuses]
        first_limited = codes.index(429)  # 5 fit in a window; more if a minute boundary passed
        assert first_limited >= 5 and set(codes[:first_limited]) == {200}
        assert int(statuses[first_limited][1]) >= 1 and int(statuses[first_limited][2]) > 100
        assert codes[-1] == 418 and 1 <= int(statuses[-1][1]) <= 5
        assert set(codes[first_limited:-1]) == {429} and len(codes) - 1 - first_limited == 3

    run_async(scenario, TEST_TIMEOUT_S)


# ---- the adapter ------------------------------------------------------------------------------


def test_adapter_load_run_never_earns_429(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = OrderLimits(rate_limits=(RateLimitRule(kind="REQUEST_WEIGHT", interval="SECOND", interval_num=1, limit=600),
                                      RateLimitRule(kind="ORDERS", interval="SECOND", interval_num=10, limit=100)))

    async def scenario() -> None:
        venue = await start_venue(monkeypatch, limits=limits)
        adapter = make_adapter(venue, max_wait_s=5.0)
        try:
            await adapter.start()
            bid, _ = venue.best()
            placed = await adapter.place(Side.BUY, bid - 200, 100)
            assert placed.state is OrderState.ACKED
            for i in range(300):  # weight 4 and 6 alternately: ~1500 weight against 600 per second
                if i % 2:
                    await adapter.query(placed.client_id)
                else:
                    await adapter.fetch_open_orders()
            assert venue.side.counts["http_429"] == 0 and venue.side.counts["http_418"] == 0
            assert adapter.counts["delayed"] > 0          # the limiter did hold requests back
            assert adapter.counts["rate_limited"] == 0
        finally:
            await adapter.close()
            await venue.market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_adapter_cancel_retried_through_5xx_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        venue = await start_venue(monkeypatch)
        adapter = make_adapter(venue)
        try:
            await adapter.start()
            bid, _ = venue.best()
            placed = await adapter.place(Side.BUY, bid - 200, 100)
            venue.side.set_faults(OrderFaults(error_5xx_ratio=1.0, is_5xx_applied=False, endpoints=("cancel",),
                                              max_faults=2))
            outcome = await adapter.cancel(placed.client_id)
            assert outcome.state is OrderState.CANCELLED
            assert venue.side.counts["fault_5xx_cancel"] == 2
            assert adapter.counts["retry_cancel_order"] == 2
            venue.side.set_faults(OrderFaults(timeout_ratio=1.0, endpoints=("cancel",), max_faults=1))
            second = await adapter.place(Side.BUY, bid - 201, 100)
            outcome = await adapter.cancel(second.client_id)
            assert outcome.state is OrderState.CANCELLED
            assert venue.side.counts["fault_timeout_cancel"] == 1
        finally:
            await adapter.close()
            await venue.market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


@pytest.mark.parametrize("fault, is_applied", [
    (OrderFaults(drop_ratio=1.0, endpoints=("new",), max_faults=1), True),           # applied, no answer
    (OrderFaults(error_5xx_ratio=1.0, endpoints=("new",), max_faults=1), True),      # applied, 503 -1007
    (OrderFaults(timeout_ratio=1.0, endpoints=("new",), max_faults=1), False),       # not applied, no answer
])
def test_adapter_unknown_new_order_settled_by_query_never_duplicated(
        monkeypatch: pytest.MonkeyPatch, fault: OrderFaults, is_applied: bool) -> None:
    async def scenario() -> None:
        venue = await start_venue(monkeypatch)
        adapter = make_adapter(venue)
        try:
            await adapter.start()
            venue.side.set_faults(fault)
            bid, _ = venue.best()
            outcome = await adapter.place(Side.BUY, bid - 300, 100)
            expected = OrderState.ACKED if is_applied else OrderState.REJECTED
            assert outcome.state is expected
            assert adapter.counts["new_unknown"] == 1
            assert venue.orders_with(outcome.client_id) == (1 if is_applied else 0)
            assert venue.side.counts["requests_new"] == 1  # never resent
        finally:
            await adapter.close()
            await venue.market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_adapter_cancel_all_ours_leaves_foreign_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        venue = await start_venue(monkeypatch)
        foreign = ccxt_client(venue)
        adapter = make_adapter(venue)
        stale = make_adapter(venue, instance="b")  # an earlier run of this pipeline
        try:
            await foreign.load_markets()
            bid, _ = venue.best()
            await foreign.create_order("BTC/USDT", "limit", "buy", 0.01, float(GRID.tick_size * (bid - 400)),
                                       {"postOnly": True, "clientOrderId": "manual-keep-1"})
            await stale.start()
            leftover = await stale.place(Side.BUY, bid - 401, 100)
            assert leftover.state is OrderState.ACKED
            await adapter.start()  # safe start cancels our stale order only
            assert venue.orders_with(leftover.client_id) == 1
            assert not any(o.client_id == leftover.client_id for o in venue.side.engine.open_orders(KEY, SYMBOL))
            ours = [await adapter.place(Side.BUY, bid - 402 - i, 100) for i in range(3)]
            assert all(o.state is OrderState.ACKED for o in ours)
            outcomes = await adapter.cancel_all_ours()
            assert {o.client_id for o in outcomes} == {o.client_id for o in ours}
            remaining = await foreign.fetch_open_orders("BTC/USDT")
            assert [o["clientOrderId"] for o in remaining] == ["manual-keep-1"]
            assert (await adapter.reconcile())[0].foreign == 1
        finally:
            for closer in (foreign.close(), adapter.close(), stale.close()):
                await closer
            await venue.market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_session_never_writes_the_secret(monkeypatch: pytest.MonkeyPatch, tmp_path, caplog, capfd) -> None:
    monkeypatch.setenv("MM_VENUE_KEYS", f"{KEY}:{SECRET},{OTHER_KEY}:{OTHER_SECRET}")
    journal_path = tmp_path / "orders.journal"

    async def scenario() -> None:
        venue = await start_venue(monkeypatch, faults=OrderFaults(error_5xx_ratio=0.3, seed=5,
                                                                   endpoints=("cancel", "query")))
        journal, _ = JournalFile.open(journal_path, FsyncPolicy(mode="always"))
        adapter = BinanceAdapter(AdapterConfig(symbol=SYMBOL, prefix=PREFIX, base_url=venue.url, recv_window_ms=500,
                                               timeout_s=0.5, backoff_initial_s=0.01, policy=LOOPBACK_POLICY),
                                 KEY, SECRET, journal=journal.append, rng=random.Random(1))
        wrong = ccxt_client(venue, KEY, "wrong-secret-value")
        try:
            await adapter.start()
            bid, _ = venue.best()
            for i in range(5):
                placed = await adapter.place(Side.BUY, bid - 100 - i, 100)
                await adapter.cancel(placed.client_id)
            try:
                await wrong.fetch_balance()
            except ccxt_async.AuthenticationError as e:
                logging.getLogger("test.session").warning("refused: %s", e)
            logging.getLogger("test.session").info("adapter %r side %r", adapter, venue.side)
        finally:
            await wrong.close()
            await adapter.close()
            journal.close()
            await venue.market.stop()

    with caplog.at_level(logging.DEBUG):
        run_async(scenario, TEST_TIMEOUT_S)
    out, err = capfd.readouterr()
    outputs = {"logs": caplog.text, "stdout": out, "stderr": err,
               "journal": journal_path.read_bytes().decode("latin-1")}
    assert len(outputs["journal"]) > 100 and caplog.text
    for name, text in outputs.items():
        assert SECRET not in text, f"secret in {name}"
        assert OTHER_SECRET not in text, f"venue's other secret in {name}"
