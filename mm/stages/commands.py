"""The order commands and order events the stages hand each other, in domain terms.

The shells turn them into the wire messages of `ipc/messages.py` (adding the latency stamps);
the in-process engine passes them on as they are. Side: +1 buy / -1 sell (`mm.orders.Side`
values on the wire).
"""

from __future__ import annotations

import msgspec


class Place(msgspec.Struct, frozen=True, gc=False):
    client_id: str
    side: int
    px_tick: int
    qty_lot: int
    post_only: bool = True


class Cancel(msgspec.Struct, frozen=True, gc=False):
    client_id: str


class CancelEverything(msgspec.Struct, frozen=True, gc=False):
    """Cancel every order of ours (not only the ones a stage tracks)."""

    reason: str


class Rejection(msgspec.Struct, frozen=True, gc=False):
    """Risk refused a place: the quoter forgets it."""

    client_id: str
    reason: str
    ts_ns: int


Command = Place | Cancel | CancelEverything
