"""Reader of the capture line format `<recv_ts_ns> <json>` (gzip'd or plain, several files in order).

Binance frames decode straight into typed msgspec Structs: the stream name is read off the
line's prefix (`{"stream":"<name>",`) and picks a reused `msgspec.json.Decoder` of
`Combined[<payload type>]`, so each line is decoded once. A line in another key order falls back
to a `msgspec.Raw` envelope plus a second decode. REST replies come wrapped as
`{"rest": "<path>?<query>", "data": ...}`; only depth snapshots are used (symbol from the query's
`symbol=`). Other streams (kline, markPrice, partial depth, ...) are counted as skipped by kind.
A malformed line is counted and reported as `file:line: reason`; it never stops the run.
tardis.dev's normalized CSV (told by its header row) is read by mm/tardis_csv.py into these frames. A gzip
file that ends early or is corrupt (a capture cut by a crash or a full disk) is read up to the
damage, with a warning naming the file and the offset; its cut last line counts as malformed.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

log = logging.getLogger(__name__)

TextLevels = list[tuple[str, str]]  # [[price, qty], ...] as the venue wrote them
MAX_REPORTED = 100  # malformed lines kept verbatim in CaptureStats.malformed


class DepthUpdate(msgspec.Struct, gc=False):
    """`depthUpdate`: spot has no `T`/`pu`; futures send `pu` (previous event's `u`)."""

    s: str
    U: int
    u: int
    b: TextLevels
    a: TextLevels
    E: int = 0
    T: int = 0
    pu: int = -1


class RawDepthUpdate(msgspec.Struct, gc=False):
    """`depthUpdate` with its levels left as the frame's JSON text: what `read_capture` hands
    its `fast_depth` hook (a book builder that parses the text itself, without str objects)."""

    s: str
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    E: int = 0
    T: int = 0
    pu: int = -1


class BookTickerFrame(msgspec.Struct):
    """`bookTicker`: best bid/ask; `u` is on the depth stream's update-id sequence."""

    u: int
    s: str
    b: str
    B: str
    a: str
    A: str
    E: int = 0
    T: int = 0


class TradeFrame(msgspec.Struct):
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool  # buyer is the maker: the aggressor sold
    E: int = 0


class AggTradeFrame(msgspec.Struct):
    s: str
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - the venue's field name
    T: int
    m: bool
    E: int = 0


class DepthSnapshot(msgspec.Struct, gc=False):
    """REST `/api/v3/depth` or `/fapi|dapi/v1/depth` reply (futures add `E`, `T`)."""

    lastUpdateId: int
    bids: TextLevels
    asks: TextLevels
    E: int = 0
    T: int = 0


Frame = DepthUpdate | BookTickerFrame | TradeFrame | AggTradeFrame | DepthSnapshot
PayloadT = TypeVar("PayloadT")


class Combined(msgspec.Struct, Generic[PayloadT]):
    stream: str
    data: PayloadT


class RestReply(msgspec.Struct):
    rest: str
    data: msgspec.Raw


class Envelope(msgspec.Struct):
    stream: str = ""
    rest: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")
    e: str = ""  # a bare payload (a raw /ws/<stream> frame, no combined-stream wrapper): its event type


_KIND_OF_EVENT = {"depthUpdate": "depth", "bookTicker": "bookTicker", "trade": "trade", "aggTrade": "aggTrade"}


class CaptureEvent(msgspec.Struct, gc=False):
    recv_ts_ns: int
    symbol: str  # upper case, as the venue names it in payloads
    frame: Frame


class CaptureStats:
    """What a read saw: events by kind, skipped streams by kind, malformed lines (`file:line`)."""

    def __init__(self) -> None:
        self.lines = 0
        self.events: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.malformed_count = 0
        self.malformed: list[str] = []  # the first MAX_REPORTED, as "file:line: reason"
        self.damaged: list[str] = []  # "file: compressed stream damaged after N bytes of text (why)"
        self.path: Path | None = None  # where the read stands: the file and line of the event
        self.line_no = 0  # just yielded (JSON lines; None / 0 where the reader does not tell)
        self.where_text = ""  # or that place as text, from a reader that has it so (tardis CSV rows)

    def where(self) -> str:
        """`file:line` of the event just yielded ("" where unknown), for a consumer that refuses it."""
        if self.where_text:
            return self.where_text
        if self.path is None:
            return ""
        return f"{self.path}:{self.line_no}" if self.line_no else str(self.path)

    def add_malformed(self, where: str, reason: str) -> None:
        self.malformed_count += 1
        if len(self.malformed) < MAX_REPORTED:
            self.malformed.append(f"{where}: {reason}")

    def as_dict(self) -> dict:
        return {
            "lines": self.lines,
            "events": dict(self.events),
            "skipped": dict(self.skipped),
            "malformed": self.malformed_count,
            "malformed_lines": list(self.malformed),
        }


_PAYLOAD_OF_KIND: dict[str, type] = {
    "depth": DepthUpdate,
    "bookTicker": BookTickerFrame,
    "trade": TradeFrame,
    "aggTrade": AggTradeFrame,
}
_STREAM_PREFIX = b'{"stream":"'
_REST_PREFIX = b'{"rest":"'
_STREAM_AFTER_TS = b" " + _STREAM_PREFIX


def stream_kind(stream: str) -> str:
    """`btcusdt@depth@100ms` -> "depth" (a diff stream); partial depth `@depth5` stays "depth5"."""
    _, _, kind = stream.partition("@")
    if kind == "depth" or kind.startswith("depth@"):
        return "depth"
    return kind


def symbol_of_rest(path: str) -> str:
    values = parse_qs(urlsplit(path).query).get("symbol")
    return values[0].upper() if values else ""


class FrameDecoder:
    """Decodes one capture body (the JSON after the timestamp) into (symbol, Frame) or a skip."""

    def __init__(self, kinds: Iterable[str] | None = None, raw_depth: bool = False) -> None:
        """`kinds`: decode only these stream kinds ("depth", "bookTicker", "trade", "aggTrade");
        frames of any other kind are returned as skipped without being decoded. REST depth
        snapshots are always decoded. `raw_depth`: combined-stream depth diffs decode into
        `RawDepthUpdate` (levels as JSON text); `decode_depth` then gives the typed one."""
        wanted = _PAYLOAD_OF_KIND if kinds is None else set(kinds)
        payloads = {kind: t for kind, t in _PAYLOAD_OF_KIND.items() if kind in wanted}
        self._combined = {
            kind: msgspec.json.Decoder(Combined[payload]) for kind, payload in payloads.items()
        }
        self._typed_depth = self._combined.get("depth") or msgspec.json.Decoder(Combined[DepthUpdate])
        if raw_depth and "depth" in self._combined:
            self._combined["depth"] = msgspec.json.Decoder(Combined[RawDepthUpdate])
        self._payload = {kind: msgspec.json.Decoder(payload) for kind, payload in payloads.items()}
        self._snapshot = msgspec.json.Decoder(DepthSnapshot)
        self._rest = msgspec.json.Decoder(RestReply)
        self._envelope = msgspec.json.Decoder(Envelope)
        self._kind_of_stream: dict[bytes, str] = {}
        self.skipped_streams: dict[bytes, str] = {}  # stream name -> kind, of names not decoded

    def decode(self, body: bytes) -> tuple[str, Frame] | str:
        """(symbol, frame), or the kind of a skipped frame as a str. Raises msgspec.DecodeError
        or ValueError on a malformed body."""
        if body.startswith(_STREAM_PREFIX):
            end = body.find(b'"', len(_STREAM_PREFIX))
            name = body[len(_STREAM_PREFIX) : end]
            kind = self._kind_of_stream.get(name)
            if kind is None:
                kind = self._kind_of_stream[name] = stream_kind(name.decode())
            decoder = self._combined.get(kind)
            if decoder is None:
                self.skipped_streams[name] = kind
                return kind
            payload = decoder.decode(body).data
            return payload.s.upper(), payload
        if body.startswith(_REST_PREFIX):
            reply = self._rest.decode(body)
            return self._rest_frame(reply.rest, reply.data)
        envelope = self._envelope.decode(body)  # any other key order
        if envelope.rest:
            return self._rest_frame(envelope.rest, envelope.data)
        if not envelope.stream:
            kind = _KIND_OF_EVENT.get(envelope.e)
            if kind is None:
                return "unknown"
            decoder = self._payload.get(kind)
            if decoder is None:
                return kind
            payload = decoder.decode(body)  # the payload is the whole body
            return payload.s.upper(), payload
        kind = stream_kind(envelope.stream)
        decoder = self._payload.get(kind)
        if decoder is None:
            return kind
        payload = decoder.decode(envelope.data)
        return payload.s.upper(), payload

    def decode_depth(self, body: bytes) -> DepthUpdate:
        """A combined-stream depth diff's body into the typed `DepthUpdate` (levels as str)."""
        return self._typed_depth.decode(body).data

    def _rest_frame(self, path: str, data: msgspec.Raw) -> tuple[str, Frame] | str:
        if "/depth" not in path:
            return "rest"
        symbol = symbol_of_rest(path)
        if not symbol:
            raise ValueError(f"REST reply {path!r} names no symbol=")
        return symbol, self._snapshot.decode(data)


def open_capture(path: Path):
    """Binary line iterator over a capture file, gzip'd (by its magic bytes) or plain."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


READ_CHUNK = 1 << 20  # at most this many bytes of decompressed text per read
_DAMAGE_WARNED: set[str] = set()  # a file is read several times (grid, symbols, messages): say its damage once


def read_chunks(path: Path, stats: CaptureStats | None = None) -> Iterator[bytes]:
    """The file's decompressed bytes in READ_CHUNK pieces. A damaged gzip stream (truncated,
    corrupt, bad checksum) ends the file where the damage starts, with a warning (and in
    `stats.damaged`): what came before it is still the capture."""
    with open_capture(path) as stream:
        offset = 0
        while True:
            try:
                chunk = stream.read1(READ_CHUNK)  # read1: a damaged stream's last good bytes still come
            except (EOFError, OSError, zlib.error) as e:
                damage = f"{path}: compressed stream damaged after {offset} bytes of text ({e})"
                if damage not in _DAMAGE_WARNED:
                    _DAMAGE_WARNED.add(damage)
                    log.warning("%s: reading what came before it", damage)
                if stats is not None:
                    stats.damaged.append(damage)
                return
            if not chunk:
                return
            offset += len(chunk)
            yield chunk


def read_lines(path: Path, stats: CaptureStats | None = None) -> Iterator[list[bytes]]:
    """The file's lines in batches, without their line ends; one batch per chunk read
    (splitting a big chunk at once is much cheaper than a readline per line)."""
    tail = b""
    for chunk in read_chunks(path, stats):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        yield lines
    if tail:
        yield [tail]


def read_stamped_lines(paths: Iterable[Path | str], stats: CaptureStats) -> Iterator[tuple[str, int, bytes]]:
    """(`file:line`, receive time ns, frame body) of every `<recv_ts_ns> <json>` line of the files,
    in file then line order; blank lines skipped, a bad receive time counted in `stats` as malformed,
    every line counted in `stats.lines`. For the venues whose frames `read_capture` does not decode."""
    for path in paths:
        path = stats.path = Path(path)
        line_no = 0
        for lines in read_lines(path, stats):
            stats.lines += len(lines)
            for line in lines:
                line_no += 1
                ts_text, _, body = line.rstrip(b"\r").partition(b" ")
                if not body.strip():
                    continue
                if not ts_text.isdigit():
                    stats.add_malformed(f"{path}:{line_no}", bad_receive_time(ts_text))
                    continue
                yield f"{path}:{line_no}", int(ts_text), body


def read_capture(
    paths: Iterable[Path | str],
    stats: CaptureStats | None = None,
    kinds: Iterable[str] | None = None,
    fast_depth: Callable[[str, RawDepthUpdate], object | None] | None = None,
) -> Iterator[CaptureEvent]:
    """Every decodable Binance event of the files, in file then line order.

    `kinds` (optional): decode only these stream kinds (see FrameDecoder); a line of a stream
    already seen to be of another kind is counted in `stats.skipped` by kind and not read any
    further (so it is never reported malformed).
    `fast_depth` (optional): combined-stream depth diffs are decoded with their levels as JSON
    text and handed to it as (symbol, RawDepthUpdate); what it returns is the event's frame. When
    it returns None the diff is decoded again into `DepthUpdate`, as without the hook (so a
    malformed one is reported as ever). Counted in `stats.events` as DepthUpdate either way.
    """
    stats = CaptureStats() if stats is None else stats
    paths = [Path(p) for p in paths]
    from mm.tardis_csv import csv_kind, read_tardis  # the normalized CSV: its rows as these frames

    if any(csv_kind(path) for path in paths):
        yield from _counted(read_tardis(paths, stats), stats, None if kinds is None else set(kinds))
        return
    decoder = FrameDecoder(kinds, raw_depth=fast_depth is not None)
    decode = decoder.decode
    decode_depth = decoder.decode_depth
    skipped_streams = decoder.skipped_streams if kinds is not None else None
    events = stats.events
    skipped = stats.skipped
    for path in paths:
        path = stats.path = Path(path)
        line_no = 0
        for lines in read_lines(path, stats):
            stats.lines += len(lines)
            for line in lines:
                line_no += 1
                if skipped_streams:
                    start = line.find(_STREAM_AFTER_TS) + len(_STREAM_AFTER_TS)
                    if start >= len(_STREAM_AFTER_TS):
                        kind = skipped_streams.get(line[start : line.find(b'"', start)])
                        if kind is not None:
                            skipped[kind] += 1
                            continue
                ts_text, _, body = line.partition(b" ")
                if body.endswith(b"\r"):
                    body = body[:-1]
                try:
                    recv_ts_ns = int(ts_text)
                    result = decode(body)
                    if type(result) is str:
                        skipped[result] += 1
                        continue
                    symbol, frame = result
                    if type(frame) is RawDepthUpdate:
                        fast = fast_depth(symbol, frame)
                        frame = decode_depth(body) if fast is None else fast
                        name = "DepthUpdate"
                    else:
                        name = type(frame).__name__
                except (msgspec.DecodeError, ValueError, UnicodeDecodeError) as e:
                    if not line.strip():
                        continue
                    stats.add_malformed(f"{path}:{line_no}", _malformed_reason(ts_text, e))
                    continue
                events[name] += 1
                stats.line_no = line_no
                yield CaptureEvent(recv_ts_ns, symbol, frame)


_KIND_OF_FRAME = {DepthUpdate: "depth", TradeFrame: "trade", BookTickerFrame: "bookTicker", AggTradeFrame: "aggTrade"}


def _counted(events: Iterator[CaptureEvent], stats: CaptureStats, kinds: set[str] | None) -> Iterator[CaptureEvent]:
    """`read_capture`'s counting and `kinds` filter over events of another reader (snapshots always pass)."""
    for event in events:
        frame_type = type(event.frame)
        kind = _KIND_OF_FRAME.get(frame_type)
        if kinds is not None and kind is not None and kind not in kinds:
            stats.skipped[kind] += 1
            continue
        stats.events[frame_type.__name__] += 1
        yield event


def bad_receive_time(ts_text: bytes) -> str:
    """The reason a line whose receive time is not an integer is malformed."""
    return f"receive time {ts_text[:32]!r} is not an int"


def _malformed_reason(ts_text: bytes, error: Exception) -> str:
    try:
        int(ts_text)
    except ValueError:
        return bad_receive_time(ts_text)
    return str(error) or type(error).__name__
