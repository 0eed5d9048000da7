"""One trade reported on both `@trade` and `@aggTrade` (the USD-M venue serves both) fills the
venue's resting orders once: before, the order side handed both frames to the matching engine,
so every simulated USD-M print ate twice its quantity of queue and fills."""

from __future__ import annotations

from mm.capture import AggTradeFrame, TradeFrame
from mm.trade_tape import NewTrades
from processes.venue_orders import OrderSide, SymbolRules


def test_a_print_is_taken_once_whichever_stream_brings_it_first():
    seen = NewTrades()
    assert seen.take("BTCUSDT", 7, 9)  # an aggregate of trades 7..9
    assert not seen.take("BTCUSDT", 8, 8) and not seen.take("BTCUSDT", 9, 9)  # its trades, again
    assert seen.take("BTCUSDT", 10, 10) and not seen.take("BTCUSDT", 10, 10)
    assert seen.take("ETHUSDT", 8, 8)  # ids are per symbol


class _Engine:
    def __init__(self) -> None:
        self.trades: list[tuple[str, str, str, bool]] = []

    def on_trade(self, symbol: str, px: str, qty: str, buyer_maker: bool, now_ns: int) -> None:
        self.trades.append((symbol, px, qty, buyer_maker))


def test_the_order_side_matches_each_trade_once_from_both_streams():
    engine = _Engine()
    side = OrderSide(engine, keys={}, symbols={"BTCUSDT": SymbolRules(symbol="BTCUSDT", base_asset="BTC",
                                                                      quote_asset="USDT")})
    for t in (1, 2):  # the simulator's order: the aggregate, then the trade
        side.on_frame("BTCUSDT", AggTradeFrame(s="BTCUSDT", a=t, p="100.00", q="0.5", f=t, l=t, T=t, m=True))
        side.on_frame("BTCUSDT", TradeFrame(s="BTCUSDT", t=t, p="100.00", q="0.5", T=t, m=True))
    side.on_frame("BTCUSDT", TradeFrame(s="BTCUSDT", t=3, p="100.01", q="0.1", T=3, m=False))  # @trade only
    assert engine.trades == [("BTCUSDT", "100.00", "0.5", True)] * 2 + [("BTCUSDT", "100.01", "0.1", False)]
