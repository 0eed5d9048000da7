"""The Hyperliquid gateway's nonces never repeat across restarts (the reserved block is on disk first)."""

from __future__ import annotations

from pathlib import Path

from processes.gateway_hyperliquid import NONCE_RESERVE, PersistentNonces


def test_nonces_grow_strictly_and_a_restart_starts_past_every_one_used(tmp_path: Path):
    path = tmp_path / "nonce"
    first = PersistentNonces(path)
    first._clock_ms = lambda: 1_000
    used = [first.next() for _ in range(5)]
    assert used == sorted(set(used)) and used[0] == 1_000
    assert int(path.read_text()) == 1_000 + NONCE_RESERVE  # reserved before any nonce of it was used
    again = PersistentNonces(path)  # a kill -9 and a restart with the clock behind (or equal)
    again._clock_ms = lambda: 1_000
    assert again.next() > max(used) and again.next() > 1_000 + NONCE_RESERVE
