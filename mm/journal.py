"""The journal's format and recovery: framing, checksums, the record types, and the scan that finds
the good prefix of a journal file. The file itself (append, fsync, truncate) is processes/journal_file.py.

File = HEADER, then frames. Frame = u32 little-endian payload length, u32 CRC32 of (length bytes +
payload), payload = one msgpack record (a tagged msgspec Struct, `JournalEntry`).

A crash can leave a partial last frame (truncated) or garbage after the last good one (corrupt);
`scan` stops at the first frame that is short, has an impossible length or fails its checksum and
reports the good length: the shell cuts the file there with a warning. A frame whose checksum holds
but whose payload does not decode was written by another version of mm: that is not damage, so
`scan` raises JournalFormatError rather than cut records away.
"""

from __future__ import annotations

import enum
import struct
import zlib

import msgspec

from mm.errors import JournalFormatError
from mm.orders import (
    CancelRejected,
    CancelRequested,
    CancelTimedOut,
    OrderNotFound,
    OrderSent,
    OrderSubmitted,
    RequestTimedOut,
    Side,
    VenueUpdate,
)

HEADER = b"MMJRNL\x00\x01"           # magic + format version 1
FRAME = struct.Struct("<II")          # payload length, crc32(length bytes + payload)
MAX_PAYLOAD_LEN = 1 << 20             # a longer length field can only be damage


class FillRecorded(msgspec.Struct, frozen=True, array_like=True, tag_field="t", tag=str.lower):
    """One fill as risk accounts it (fee included)."""

    client_id: str
    symbol: str
    side: Side
    px_tick: int
    qty_lot: int
    fee_quote: float
    trade_id: int
    ts_ns: int


class PositionSnapshot(msgspec.Struct, frozen=True, array_like=True, tag_field="t", tag=str.lower):
    """Risk's position at ts_ns (mm.position.Position's state); recovery starts from the last one
    and applies the fills journaled after it."""

    symbol: str
    position_lot: int
    cost_tick_lot: float
    realized_tick_lot: float
    fees_quote: float
    traded_lot: int
    fills: int
    ts_ns: int
    balances: dict[str, str] = {}   # venue balances (asset -> decimal text) when reconciled


class AuditEntry(msgspec.Struct, frozen=True, array_like=True, tag_field="t", tag=str.lower):
    """An operator action: who (origin), what (command), and the value before and after."""

    ts_ns: int
    origin: str
    command: str
    before: str
    after: str


JournalEntry = (OrderSubmitted | OrderSent | CancelRequested | VenueUpdate | RequestTimedOut | CancelTimedOut
                | CancelRejected | OrderNotFound | FillRecorded | PositionSnapshot | AuditEntry)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(JournalEntry)


class Tail(enum.Enum):
    CLEAN = "clean"          # every byte belongs to a good frame
    EMPTY = "empty"          # no file content (or only part of the header): a new journal
    TRUNCATED = "truncated"  # the last frame is cut short
    CORRUPT = "corrupt"      # a frame's length is impossible or its checksum fails


class Recovery(msgspec.Struct, frozen=True):
    records: list
    good_length: int         # bytes to keep; the shell truncates the file to this
    tail: Tail
    dropped_bytes: int
    detail: str = ""         # where and why the scan stopped, for the warning


def encode_frame(record: JournalEntry) -> bytes:
    payload = _encoder.encode(record)
    length = len(payload)
    if length > MAX_PAYLOAD_LEN:
        raise ValueError(f"journal record {type(record).__name__} is {length} bytes, over {MAX_PAYLOAD_LEN}")
    length_bytes = length.to_bytes(4, "little")
    return length_bytes + zlib.crc32(payload, zlib.crc32(length_bytes)).to_bytes(4, "little") + payload


def scan(data: bytes | memoryview) -> Recovery:
    """Decode every good frame of a whole journal file's bytes; see the module docstring."""
    view = memoryview(data)
    total = len(view)
    if total < len(HEADER):
        if bytes(view) != HEADER[:total]:
            raise JournalFormatError(f"not a journal: starts with {bytes(view[:8])!r}, expected {HEADER!r}")
        tail = Tail.EMPTY if total == 0 else Tail.TRUNCATED
        return Recovery([], 0, tail, total, "partial header" if total else "")
    if bytes(view[:len(HEADER)]) != HEADER:
        raise JournalFormatError(f"not a journal of this version: starts with {bytes(view[:8])!r}, expected {HEADER!r}")
    records = []
    offset = len(HEADER)
    frame_len = FRAME.size
    while offset < total:
        if total - offset < frame_len:
            return _cut(records, offset, total, Tail.TRUNCATED, f"frame header cut short at offset {offset}")
        length, crc = FRAME.unpack_from(view, offset)
        if length > MAX_PAYLOAD_LEN:
            return _cut(records, offset, total, Tail.CORRUPT, f"impossible length {length} at offset {offset}")
        end = offset + frame_len + length
        if end > total:
            return _cut(records, offset, total, Tail.TRUNCATED,
                        f"record at offset {offset} needs {length} bytes, {total - offset - frame_len} left")
        payload = view[offset + frame_len:end]
        if zlib.crc32(payload, zlib.crc32(view[offset:offset + 4])) != crc:
            return _cut(records, offset, total, Tail.CORRUPT, f"checksum mismatch at offset {offset}")
        try:
            records.append(_decoder.decode(payload))
        except msgspec.DecodeError as e:
            raise JournalFormatError(f"journal record at offset {offset} has a good checksum but does not "
                                     f"decode (written by another version?): {e}") from None
        offset = end
    return Recovery(records, total, Tail.CLEAN, 0)


def _cut(records: list, offset: int, total: int, tail: Tail, detail: str) -> Recovery:
    return Recovery(records, offset, tail, total - offset, detail)


class FsyncPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When appended records reach the disk: `always` (each append), `interval_ms` (at most
    interval_ms after an append), `never` (the OS decides; a process crash still loses nothing,
    a power cut may)."""

    mode: str = "interval_ms"
    interval_ms: int = 50

    def __post_init__(self) -> None:
        if self.mode not in ("always", "interval_ms", "never"):
            raise ValueError(f"'mode' must be always, interval_ms or never, was {self.mode!r}")
        if self.mode == "interval_ms" and self.interval_ms <= 0:
            raise ValueError(f"'interval_ms' must be > 0, was {self.interval_ms}")


def is_sync_due(policy: FsyncPolicy, is_dirty: bool, last_sync_ns: int, now_ns: int) -> bool:
    if not is_dirty or policy.mode == "never":
        return False
    if policy.mode == "always":
        return True
    return now_ns - last_sync_ns >= policy.interval_ms * 1_000_000
