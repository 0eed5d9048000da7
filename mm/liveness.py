"""Peer liveness after the Paranoid Pirate pattern (zguide ch. 4), on monotonic ns.

Any frame from a peer resets its count to `liveness`; every missed heartbeat interval takes one
away; 0 means dead. A peer never heard from is not alive yet.
"""

from __future__ import annotations


class PeerLiveness:
    def __init__(self, peers: tuple[str, ...] | list[str], *, interval_ns: int, liveness: int) -> None:
        self._interval_ns = interval_ns
        self._liveness = liveness
        self._count: dict[str, int] = {p: 0 for p in peers}
        self._last_seen_ns: dict[str, int] = {p: -1 for p in peers}
        self._next_tick_ns: dict[str, int] = {p: 0 for p in peers}

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(self._count)

    def on_frame(self, peer: str, now_ns: int) -> bool:
        """Record life from `peer`; return True when it was dead (or unknown) before."""
        if peer not in self._count:
            return False
        was_dead = self._count[peer] == 0
        self._count[peer] = self._liveness
        self._last_seen_ns[peer] = now_ns
        self._next_tick_ns[peer] = now_ns + self._interval_ns
        return was_dead

    def tick(self, now_ns: int) -> list[str]:
        """Age every peer to `now_ns`; return the peers that died at this tick."""
        died: list[str] = []
        for peer, count in self._count.items():
            if count == 0:
                continue
            while count > 0 and now_ns >= self._next_tick_ns[peer]:
                count -= 1
                self._next_tick_ns[peer] += self._interval_ns
            self._count[peer] = count
            if count == 0:
                died.append(peer)
        return died

    def is_alive(self, peer: str) -> bool:
        return self._count.get(peer, 0) > 0

    def was_seen(self, peer: str) -> bool:
        return self._last_seen_ns.get(peer, -1) >= 0

    def age_ns(self, peer: str, now_ns: int) -> int | None:
        seen = self._last_seen_ns.get(peer, -1)
        return None if seen < 0 else now_ns - seen

    def dead(self) -> set[str]:
        return {p for p, c in self._count.items() if c == 0}
