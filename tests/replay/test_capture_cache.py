"""The decoded-capture cache (processes/capture_cache.py): under the user's cache directory, never
beside the capture; read back only for the same input; a broken file is rebuilt, loudly."""

from __future__ import annotations

import logging
from pathlib import Path

from ipc.messages import Trade
from processes import capture_cache

KEY = "0123456789abcdef" * 2


def cached_feed(key: str = KEY) -> capture_cache.CachedFeed:
    trade = Trade(symbol="BTCUSDT", trade_id=1, px_tick=1000, qty_lot=5, taker_side=1, ts_event_ns=1, ts_recv_ns=2,
                  ts_feed_ns=3)
    return capture_cache.CachedFeed(version=capture_cache.CONVERTER_VERSION, key=key, messages=[trade],
                                    capture={"lines": 1}, dropped={}, first_ts_ns=2, last_ts_ns=2)


def test_the_cache_lives_under_xdg_cache_home_not_beside_the_capture(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    capture = tmp_path / "data" / "feed.jsonl.gz"
    where = capture_cache.cache_path([capture], KEY)
    assert where.parent == tmp_path / "cache" / "mm" / "replay" and where.name.startswith("feed.jsonl.gz.")
    capture_cache.store(where, cached_feed())
    assert capture_cache.load(where, KEY) == cached_feed()
    assert not (tmp_path / "data").exists()  # nothing written next to the capture


def test_another_input_or_a_broken_file_is_not_read(tmp_path: Path, caplog):
    where = tmp_path / "feed.mmcache"
    capture_cache.store(where, cached_feed())
    assert capture_cache.load(where, "f" * 32) is None  # another capture, symbol or grid
    where.write_bytes(b"\x93not msgpack of a cache")
    with caplog.at_level(logging.WARNING, "processes.capture_cache"):
        assert capture_cache.load(where, KEY) is None
    assert "unreadable" in caplog.text and str(where) in caplog.text
