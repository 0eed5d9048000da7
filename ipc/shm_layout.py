"""Byte layouts of every shared-memory segment: the segment header and the record dtypes.

A segment is `[header line][writer counter line][body]`, each part starting on a 64-byte line:
line 0 is the header (written once by the creator, magic last), line 1 holds the one counter the
writer bumps (the seqlock seq, or the ring's write cursor) so readers polling it never share a
line with anything else, and the body follows at offset 128 (a ring puts its per-slot seq stamps
first, then the records). Readers write nothing into a segment. All dtypes are `align=True`, so
every 8-byte field sits on an 8-byte boundary (an aligned x86-64 store is never torn).
"""

from __future__ import annotations

import hashlib

import numpy as np

CACHE_LINE = 64
MAGIC = int.from_bytes(b"mm.shm\x00\x01", "little")
LAYOUT_VERSION = 1

KIND_SEQLOCK = 1
KIND_RING = 2
KIND_NAMES = {KIND_SEQLOCK: "seqlock", KIND_RING: "ring"}

LAYOUT_NAME_LEN = 16
HEADER_DTYPE = np.dtype(
    [
        ("magic", "u8"),
        ("version", "u8"),
        ("kind", "u8"),  # KIND_SEQLOCK or KIND_RING
        ("capacity", "u8"),  # records in the body: 1 for a seqlock slot
        ("itemsize", "u8"),  # bytes per record
        ("fingerprint", "u8"),  # hash of field names, types, shapes and offsets
        ("layout", f"S{LAYOUT_NAME_LEN}"),  # e.g. b"book_top20", b"trade"
    ],
    align=True,
)
assert HEADER_DTYPE.itemsize == CACHE_LINE

COUNTER_OFFSET = CACHE_LINE  # the writer's u64 seq / cursor, alone on line 1
BODY_OFFSET = 2 * CACHE_LINE
STAMP_SIZE = 8  # u64 seq stamp per ring slot
RING_EMPTY_STAMP = 2**64 - 1  # stamp of a slot never written


def _with_layout_name(fields: list, layout: str) -> np.dtype:
    if len(layout.encode("ascii")) > LAYOUT_NAME_LEN:
        raise ValueError(f"layout name must be <= {LAYOUT_NAME_LEN} ascii chars, was {layout!r}")
    return np.dtype(fields, align=True, metadata={"layout": layout})


def book_top_dtype(depth: int) -> np.dtype:
    """Top `depth` levels of one book: bids best first (descending px), asks best first
    (ascending px); levels at index >= n_bids / n_asks are stale and must be ignored."""
    if depth < 1:
        raise ValueError(f"'depth' must be >= 1, was {depth}")
    return _with_layout_name(
        [
            ("update_id", "i8"),
            ("ts_recv_ns", "i8"),
            ("ts_feed_ns", "i8"),
            ("ts_book_ns", "i8"),
            ("n_bids", "i8"),
            ("n_asks", "i8"),
            ("bid_px", "i8", (depth,)),
            ("bid_qty", "i8", (depth,)),
            ("ask_px", "i8", (depth,)),
            ("ask_qty", "i8", (depth,)),
        ],
        f"book_top{depth}",
    )


SIGNAL_DTYPE = _with_layout_name(
    [
        ("ts_ns", "i8"),
        ("update_id", "i8"),
        ("predicted_return", "f8"),
        ("fair_px_tick", "f8"),
        ("volatility_bps_per_s", "f8"),
        ("imbalance", "f8"),
        ("healthy", "i8"),  # 1 healthy, 0 not
    ],
    "signal",
)

TRADE_DTYPE = _with_layout_name(
    [
        ("trade_id", "i8"),
        ("px_tick", "i8"),
        ("qty_lot", "i8"),
        ("taker_side", "i8"),  # +1 the aggressor bought, -1 it sold
        ("ts_event_ns", "i8"),
        ("ts_recv_ns", "i8"),
    ],
    "trade",
)


def layout_name(dtype: np.dtype) -> str:
    """The name a dtype from this module carries in its metadata; "anon" for any other dtype."""
    metadata = dtype.metadata or {}
    return str(metadata.get("layout", "anon"))


def layout_fingerprint(dtype: np.dtype) -> int:
    """A u64 that changes when any field's name, type, shape or offset changes."""
    if dtype.names is None:
        text = dtype.str
    else:
        parts = []
        for name in dtype.names:
            field_dtype, offset = dtype.fields[name][:2]
            parts.append(f"{name}:{field_dtype.base.str}:{field_dtype.shape}:{offset}")
        text = ";".join(parts) + f"|{dtype.itemsize}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def round_up_to_line(n_bytes: int) -> int:
    return -(-n_bytes // CACHE_LINE) * CACHE_LINE


def seqlock_segment_size(body_dtype: np.dtype) -> int:
    return BODY_OFFSET + round_up_to_line(body_dtype.itemsize)


def ring_stamps_offset() -> int:
    return BODY_OFFSET


def ring_items_offset(capacity: int) -> int:
    return BODY_OFFSET + round_up_to_line(capacity * STAMP_SIZE)


def ring_segment_size(capacity: int, item_dtype: np.dtype) -> int:
    return ring_items_offset(capacity) + round_up_to_line(capacity * item_dtype.itemsize)
