"""examples/: every config loads, paper and sim ones simulate fills, live ones name a real venue with loopback URLs
only (they point at `mm venue`, never at the internet)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mm.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))


def test_there_are_paper_and_live_configs_for_spot_usdm_and_hyperliquid() -> None:
    assert {p.stem for p in EXAMPLES} >= {"spot-paper", "spot-live", "usdm-paper", "usdm-live",
                                         "hyperliquid-paper", "hyperliquid-live"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_loads_and_points_at_loopback(path: Path) -> None:
    config = load_config(path)
    mode = path.stem.split("-")[1]
    assert config.pipeline.mode == mode
    market = path.stem.split("-")[0]
    assert config.instrument.market == ("hyperliquid" if market == "hyperliquid" else f"binance_{market}")
    if mode in ("paper", "sim"):  # sim: the built-in simulator priced as that market (no URL at all)
        assert config.gateway.venue == "sim"
    else:
        assert config.gateway.venue == {"spot": "binance", "usdm": "binance-usdm", "hyperliquid": "hyperliquid"}[market]
    gw = config.gateway
    urls = [u for u in (config.feed.ws_url, config.feed.rest_url, gw.rest_url, gw.ws_api_url, gw.user_stream_url) if u]
    assert urls or mode == "sim"
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in urls), urls
