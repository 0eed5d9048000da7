"""Trading fees: each venue's standard published tier, and the fees a config charges.

`[gateway] maker_fee_bps` / `taker_fee_bps` and `[quoter] maker_fee_bps` default to the standard
tier of the instrument's market (`[instrument] market`); a number in the config overrides it.
The table holds the entry tier of each venue (no volume, no BNB / referral discount):

| market          | maker bp | taker bp | source |
|-----------------|---------:|---------:|--------|
| binance_spot    |     10.0 |     10.0 | Binance fee schedule, spot Regular user / VIP 0: 0.1000% / 0.1000% |
| binance_usdm    |      2.0 |      5.0 | Binance Futures fee schedule, USD-M Regular / VIP 0: 0.0200% / 0.0500% |
| binance_coinm   |      1.0 |      5.0 | Binance Futures fee schedule, COIN-M Regular / VIP 0: 0.0100% / 0.0500% |
| hyperliquid     |      1.5 |      4.5 | Hyperliquid docs, Trading > Fees, perps base tier (< $5M 14 d volume): 0.015% / 0.045% |
| okx_spot        |      8.0 |     10.0 | OKX fee schedule, spot Regular user Lv1: 0.080% / 0.100% |
| okx_swap        |      2.0 |      5.0 | OKX fee schedule, perpetual / expiry futures Regular user Lv1: 0.020% / 0.050% |
| kraken_spot     |     25.0 |     40.0 | Kraken Pro fee schedule, spot < $10k 30 d volume: 0.25% / 0.40% |
| other           |      0.0 |      0.0 | no table: set the fees in config |

(../shared/protocols/ does not list fees; the figures are the venues' public fee pages, as of 2025.)

Fee in quote = price x quantity x bps / 1e4 (mm.fill_model charges it once per fill; a negative
bps is a rebate).
"""

from __future__ import annotations

import re
from typing import Literal

from msgspec import Struct

from mm.config import Config

Market = Literal["binance_spot", "binance_usdm", "binance_coinm", "hyperliquid", "okx_spot", "okx_swap",
                 "kraken_spot", "other"]
MARKETS: tuple[str, ...] = ("binance_spot", "binance_usdm", "binance_coinm", "hyperliquid", "okx_spot", "okx_swap",
                            "kraken_spot", "other")


_OKX_EXPIRY = re.compile(r"-\d{6}$")  # BTC-USD-220527: a dated future


class FeeTier(Struct, frozen=True):
    maker_bps: float
    taker_bps: float
    source: str


STANDARD_TIERS: dict[str, FeeTier] = {
    "binance_spot": FeeTier(10.0, 10.0, "Binance spot Regular (VIP 0): maker 0.1000%, taker 0.1000%"),
    "binance_usdm": FeeTier(2.0, 5.0, "Binance USD-M futures Regular (VIP 0): maker 0.0200%, taker 0.0500%"),
    "binance_coinm": FeeTier(1.0, 5.0, "Binance COIN-M futures Regular (VIP 0): maker 0.0100%, taker 0.0500%"),
    "hyperliquid": FeeTier(1.5, 4.5, "Hyperliquid perps base tier: maker 0.015%, taker 0.045%"),
    "okx_spot": FeeTier(8.0, 10.0, "OKX spot Regular (Lv1): maker 0.080%, taker 0.100%"),
    "okx_swap": FeeTier(2.0, 5.0, "OKX perpetual / expiry futures Regular (Lv1): maker 0.020%, taker 0.050%"),
    "kraken_spot": FeeTier(25.0, 40.0, "Kraken Pro spot base tier: maker 0.25%, taker 0.40%"),
    "other": FeeTier(0.0, 0.0, "no standard tier known for this venue: fees 0 unless the config sets them"),
}

VENUE_MARKETS: dict[str, str] = {"spot": "binance_spot", "usdm": "binance_usdm", "hyperliquid": "hyperliquid"}


class Fees(Struct, frozen=True):
    """What a run charges: the venue's maker / taker fee and what the quoter prices in."""

    maker_bps: float
    taker_bps: float
    quoter_maker_bps: float
    source: str  # "config", or the standard tier's description


def standard_tier(market: str) -> FeeTier:
    """The standard published tier of `market` (one of MARKETS); ValueError naming it otherwise."""
    try:
        return STANDARD_TIERS[market]
    except KeyError:
        raise ValueError(f"no fee table for market {market!r} (one of: {', '.join(MARKETS)})") from None


def venue_tier(venue_market: str) -> FeeTier:
    """The tier `mm venue --market spot|usdm|hyperliquid` charges by default."""
    try:
        return STANDARD_TIERS[VENUE_MARKETS[venue_market]]
    except KeyError:
        raise ValueError(f"mm venue: no fee table for --market {venue_market!r}") from None


def resolve_fees(market: str, maker_bps: float | None, taker_bps: float | None,
                 quoter_maker_bps: float | None) -> Fees:
    """Config values where set (not None), else the market's standard tier; the quoter prices in
    the venue's maker fee unless it says otherwise."""
    tier = standard_tier(market)
    maker = tier.maker_bps if maker_bps is None else maker_bps
    taker = tier.taker_bps if taker_bps is None else taker_bps
    quoter = maker if quoter_maker_bps is None else quoter_maker_bps
    from_config = maker_bps is not None and taker_bps is not None
    return Fees(maker, taker, quoter, "config" if from_config else tier.source)


TARDIS_MARKETS = {"binance": "binance_spot", "binance-us": "binance_spot", "binance-futures": "binance_usdm",
                  "binance-delivery": "binance_coinm", "hyperliquid": "hyperliquid", "okex": "okx_spot",
                  "okex-swap": "okx_swap", "okex-futures": "okx_swap", "kraken": "kraken_spot"}  # tardis exchange ids


def market_of_capture(head: bytes, instrument: str = "") -> str:
    """The market a capture was recorded on, from its first lines (`head`): a Binance REST
    snapshot's path (/api/v3 spot, /fapi USD-M, /dapi COIN-M), a futures diff's `pu`, a
    Hyperliquid channel, an OKX `arg` (spot, or a swap / dated future by the `instrument` name) or a
    Kraken channel array, a tardis CSV's exchange column; "other" when none of these shows."""
    if head.startswith(b"exchange,symbol,timestamp,local_timestamp"):  # tardis CSV: its exchange column
        row = head.split(b"\n", 2)[1] if head.count(b"\n") >= 1 else b""
        return TARDIS_MARKETS.get(row.partition(b",")[0].decode("ascii", "replace"), "other")
    if b'"rest":"/fapi' in head or b'"rest": "/fapi' in head:
        return "binance_usdm"
    if b'"rest":"/dapi' in head or b'"rest": "/dapi' in head:
        return "binance_coinm"
    if b'"rest":"/api/v3' in head or b'"rest": "/api/v3' in head:
        return "binance_spot"
    if b'"channel":"l2Book"' in head or b'"channel": "l2Book"' in head:
        return "hyperliquid"
    if b'"stream":"' in head and b'"e":"depthUpdate"' in head:
        return "binance_usdm" if b'"pu":' in head else "binance_spot"
    if b'"arg":{"channel":"books' in head or b'"arg": {"channel": "books' in head:
        is_derivative = instrument.endswith("-SWAP") or _OKX_EXPIRY.search(instrument) is not None
        return "okx_swap" if is_derivative else "okx_spot"
    if b'"channelName":"book-' in head or b',"book-' in head:
        return "kraken_spot"
    return "other"


def config_fees(config: Config) -> Fees:
    """The fees a pipeline with `config` charges and prices in."""
    gateway = config.gateway
    return resolve_fees(config.instrument.market, gateway.maker_fee_bps, gateway.taker_fee_bps,
                        config.quoter.maker_fee_bps)
