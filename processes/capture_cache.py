"""Decoded captures, cached: the feed messages of one symbol of a set of capture files, written
once as one msgpack file and read back in one batch by every later replay of the same input.

The cache is keyed by the capture's content (BLAKE2b of every file's bytes), the symbol, its
tick grid and the converter's version, so a changed capture or converter never reads an old
cache. It lives under `$XDG_CACHE_HOME/mm/replay` (default `~/.cache/mm/replay`), never in the
capture's own folder (a user's data stays as they left it); a cache that cannot be read is
rebuilt, one that cannot be written is skipped, with a warning either way.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import msgspec

from ipc.messages import BookSnapshot, BookTicker, DepthDiff, Trade
from mm.ticks import TickGrid

log = logging.getLogger(__name__)

CONVERTER_VERSION = 4  # bump when the conversion of frames to messages changes (4: tardis CSV)
HASH_CHUNK = 1 << 20

CachedMsg = BookSnapshot | DepthDiff | Trade | BookTicker


class CachedFeed(msgspec.Struct, array_like=True):
    """What a capture read gives: the messages and the counters the report shows."""

    version: int
    key: str
    messages: list[CachedMsg]
    capture: dict  # mm.capture.CaptureStats.as_dict()
    dropped: dict[str, int]
    first_ts_ns: int
    last_ts_ns: int


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CachedFeed)


def cache_key(paths: list[Path], symbol: str, grid: TickGrid) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"v{CONVERTER_VERSION}|{symbol}|{msgspec.json.encode(grid).decode()}".encode())
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def cache_path(paths: list[Path], key: str) -> Path:
    name = f"{paths[0].name}.{key[:16]}.mmcache"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mm" / "replay"
    return base / name


def load(path: Path, key: str) -> CachedFeed | None:
    try:
        cached = _decoder.decode(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as e:
        log.warning("replay cache %s unreadable (%s): decoding the capture again", path, e)
        return None
    if cached.version != CONVERTER_VERSION or cached.key != key:
        return None
    return cached


def store(path: Path, cached: CachedFeed) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(_encoder.encode(cached))
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        log.warning("replay cache %s not written (%s): the next replay decodes the capture again", path, e)
