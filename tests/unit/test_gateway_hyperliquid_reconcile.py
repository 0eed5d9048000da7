"""The Hyperliquid gateway keeps running where it used to exit 1: its reconcile survives a venue that
does not answer (an /info read refused with HTTP 429 or 5xx, or a connection the server drops, is
counted and logged, and the pass is tried again after a backoff until it goes through), and a
command that arrives after its venue worker stopped is dropped with a warning."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from processes.gateway_hyperliquid import HyperliquidLive, _HttpTransport
from processes.hyperliquid_adapter import HyperliquidClient, HyperliquidSigner
from tests.unit.test_gateway_hyperliquid_modify import PREFIX, cancel, make_live

KEY = "0x" + "5e" * 32  # the test wallet (never a real one)


class FlakyTransport:
    """Answers /info like the venue, after refusing the first `refusals` reads as the venue's
    limiter and a failing server do."""

    def __init__(self, refusals: int, coin: str, szi: str) -> None:
        self.coin = coin
        self.refusals = refusals
        self.szi = szi
        self.reads: list[str] = []

    async def info(self, body: dict[str, Any]) -> Any:
        self.reads.append(body["type"])
        if self.refusals > 0:
            self.refusals -= 1
            raise OSError(f"HTTP {429 if self.refusals % 2 else 500} from /info")
        return {"userFills": [], "frontendOpenOrders": [],
                "clearinghouseState": {"assetPositions": [{"position": {"coin": self.coin, "szi": self.szi}}]},
                "userRateLimit": {"nRequestsCap": 10_000, "nRequestsUsed": 42}}[body["type"]]

    async def exchange(self, body: dict[str, Any]) -> Any:
        raise AssertionError("a reconcile only reads")


def reconcile_until_settled(live: HyperliquidLive, transport: FlakyTransport) -> None:
    async def main() -> None:
        live._resync = asyncio.Event()
        stop = asyncio.Event()
        task = asyncio.create_task(live._reconciler(stop))
        live._resync_now()
        for _ in range(500):  # bounded: 5 s at most
            if "userRateLimit" in transport.reads or task.done():
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task  # a reconcile that gave up would raise here

    asyncio.run(main())


def test_reconcile_retries_reads_the_venue_refused_until_it_books_the_position(make_config, caplog):
    live, _, _ = make_live(make_config)
    transport = FlakyTransport(refusals=3, coin=live.symbol, szi="0.25")
    live.client = HyperliquidClient(HyperliquidSigner(KEY), transport, live.client.assets, PREFIX)
    live.baseline = {f"{live.symbol}:position": "0"}
    live.reconcile_retry_s = 0.01
    reconcile_until_settled(live, transport)
    assert live.counts["reconcile_failed"] == 3 and live.counts["reconciles"] == 4
    assert transport.reads[:3] == ["userFills"] * 3  # each refused pass starts over
    lot = Decimal(live.config.instrument.lot_size)
    assert live.venue_position_lot == int(Decimal("0.25") / lot) and live.budget_left == 10_000 - 42
    refusals = [r.getMessage() for r in caplog.records if "reconcile failed" in r.getMessage()]
    assert len(refusals) == 3 and "info userFills" in refusals[0] and "HTTP" in refusals[0]


def test_a_dropped_connection_is_an_unanswered_read_not_a_crash():
    """aiohttp's ServerDisconnectedError is no OSError: the transport makes it one, so the client
    reports the read as unanswered (None, why) like a timeout."""

    async def main() -> tuple[Any, str]:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = _HttpTransport(f"http://127.0.0.1:{port}")
        client = HyperliquidClient(HyperliquidSigner(KEY), transport, {}, PREFIX, timeout_s=2.0)
        try:
            return await client._call("info", {"type": "userFills", "user": client.user_address})
        finally:
            await transport.close()
            server.close()
            await server.wait_closed()

    reply, why = asyncio.run(main())
    assert reply is None and "/info" in why and "Disconnected" in why


def test_a_command_after_the_venue_worker_stopped_is_dropped_with_a_warning(make_config, caplog):
    """At a stop the quoter's last cancels can reach the gateway after its venue worker closed its
    loop (the stop already cancelled every order of ours): they are dropped and said so; before,
    the gateway failed with "Event loop is closed" and the run exited 1."""
    live, _, _ = make_live(make_config)
    live._loop = asyncio.new_event_loop()
    live._wake = asyncio.Event()
    live._loop.close()
    live.submit(cancel("q1"))
    assert any("venue stopped: CancelOrder dropped" in r.getMessage() for r in caplog.records)
