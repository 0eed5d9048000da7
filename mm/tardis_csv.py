"""Reader of tardis.dev's normalized CSV datasets: the rows become the capture's own frames.

A file is one of these datasets when its header row says so (the file name is never read):

- `incremental_book_L2`: exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
- `trades`: exchange,symbol,timestamp,local_timestamp,id,side,price,amount
- `quotes`: exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
- `book_snapshot_N`: exchange,symbol,timestamp,local_timestamp, then asks[i].price,asks[i].amount,
  bids[i].price,bids[i].amount for i in 0..N-1 (N = 5 or 25)

Timestamps are microseconds since the epoch; `local_timestamp` (the recorder's receive time)
becomes the event's `recv_ts_ns` and orders the rows: several files (a book file and a trades
file of one day) are merged by it, stably (ties keep the order the files were given in).

Every row becomes one of mm.capture's Binance-shaped frames, so the rest of the stack (mm book,
the replay's converter processes/feed_convert.binance_message, mm venue --feed) reads them as
it reads a Binance capture. The ids are the converter's own, numbered per symbol like a spot
stream (`U = u`, no `pu`):
- L2 rows with the same symbol and local_timestamp are one venue message: one DepthUpdate of
  absolute levels (amount 0 removes the level). A run of is_snapshot=true rows starts a new book:
  one DepthSnapshot (zero amounts left out). Updates before a symbol's first snapshot get ids the
  snapshot covers, so the book drops them as stale (tardis: "skip these rows").
- `book_snapshot_N` and `quotes` rows are each a whole top of book: the first is a DepthSnapshot,
  each later one a DepthUpdate of the levels that changed. They build the book only when the files
  hold no better source (L2 > book_snapshot_25 > book_snapshot_5 > quotes); otherwise their rows are
  counted as skipped.
- `trades` rows become TradeFrame (side buy/sell is the taker's; id as written when it is an
  integer, else numbered); a trade of side "unknown" is counted as skipped (it cannot fill a queue).

Prices and amounts are written the way the venue grid is inferred without exchangeInfo: each
symbol's decimals are the most any of its first PRESCAN_ROWS rows uses (trailing zeros dropped,
1e-7 notation expanded), and every value is rewritten with exactly that many decimals, as Binance
writes its text. A later value with more decimals is off that grid: a malformed row.

Bad input is never dropped unsaid: a malformed row (wrong column count, a NaN / negative / zero
price, an unknown side or is_snapshot, a local_timestamp before the previous row's) is counted in
`CaptureStats.malformed` as `file:line: reason`. A malformed L2 row breaks that symbol's book:
the update it belongs to goes out as an empty diff that skips an id (the book sees a gap and stays
out of sync until the next snapshot). A file whose rows give no usable event fails, naming it.
While an event is handed on, `CaptureStats.where` names the row behind it (`file:line`): the first row
of its message, or its first malformed row, so what the book refuses is named as a JSON capture's is.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

import msgspec

from mm.capture import (
    BookTickerFrame,
    CaptureEvent,
    CaptureStats,
    DepthSnapshot,
    DepthUpdate,
    TradeFrame,
    read_lines,
)
from mm.errors import CaptureFormatError

PREFIX = ("exchange", "symbol", "timestamp", "local_timestamp")
L2 = "incremental_book_L2"
TRADES = "trades"
QUOTES = "quotes"
LIQUIDATIONS = "liquidations"
HEADERS = {
    L2: (*PREFIX, "is_snapshot", "side", "price", "amount"),
    TRADES: (*PREFIX, "id", "side", "price", "amount"),
    QUOTES: (*PREFIX, "ask_amount", "ask_price", "bid_price", "bid_amount"),
}
SNAPSHOT_DEPTHS = (5, 25)
PRESCAN_ROWS = 100_000  # rows per file whose decimals give each symbol's grid
MAX_US = ((1 << 63) - 1) // 1000  # a time in µs must fit int64 once in ns
REST_DEPTH = "/api/v3/depth?symbol={}&limit=1000"

_HEADER_START = b"exchange,symbol,timestamp,local_timestamp"
_BOM = b"\xef\xbb\xbf"
_PLAIN = re.compile(r"[0-9]+(\.[0-9]*)?", re.ASCII)
_SCIENTIFIC = re.compile(r"[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+", re.ASCII)
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def snapshot_header(depth: int) -> tuple[str, ...]:
    levels = [f"{side}[{i}].{what}" for i in range(depth) for side in ("asks", "bids") for what in ("price", "amount")]
    return (*PREFIX, *levels)


def _book_rank(kind: str) -> int:
    """Which dataset builds the book when several are given: higher wins."""
    if kind == L2:
        return 100
    if kind.startswith("book_snapshot_"):
        return int(kind.rpartition("_")[2])
    return 1 if kind == QUOTES else 0


def symbol_name(symbol: str) -> str:
    """The pipeline's name of a tardis symbol ("XBT/USD" -> "XBT-USD"), as processes.feed_convert names them."""
    return _NOT_A_NAME.sub("-", symbol)[:64]


# ---- detection --------------------------------------------------------------------------------


def _first_line(path: Path) -> bytes:
    for lines in read_lines(path):
        for line in lines:
            return line.rstrip(b"\r")
    return b""


def kind_of_header(path: Path, header: bytes) -> str:
    """The dataset of a header row; a tardis-like header of another dataset fails naming the file."""
    names = tuple(header.removeprefix(_BOM).decode("utf-8", "replace").strip().split(","))
    for kind, columns in HEADERS.items():
        if names == columns:
            if kind == TRADES and LIQUIDATIONS in path.name.lower():
                # tardis's liquidations have the trades' columns: only the name tells them apart
                raise CaptureFormatError(
                    f"{path}: a tardis {LIQUIDATIONS} file (named so; its columns are the {TRADES}'): forced "
                    f"orders, not the trade tape; mm does not read them (give the {TRADES} file)")
            return kind
    for depth in SNAPSHOT_DEPTHS:
        if names == snapshot_header(depth):
            return f"book_snapshot_{depth}"
    raise CaptureFormatError(
        f"{path}: a tardis CSV of columns {','.join(names[:12])}{',...' if len(names) > 12 else ''}: "
        f"not a dataset mm reads ({L2}, {TRADES}, {QUOTES}, book_snapshot_5, book_snapshot_25)")


def csv_kind(path: Path | str) -> str | None:
    """The tardis dataset of the file (by its header row), or None for a capture of another format."""
    path = Path(path)
    line = _first_line(path)
    if not line.removeprefix(_BOM).startswith(_HEADER_START):
        return None
    return kind_of_header(path, line)


# ---- values -----------------------------------------------------------------------------------


class BadRow(Exception):
    """A malformed row: the reason, for `file:line: reason`."""


def number(what: str, text: str, *, positive: bool) -> str:
    """Decimal text without trailing zeros ("61234.50" -> "61234.5", "1e-7" -> "0.0000001")."""
    if _PLAIN.fullmatch(text):
        plain = text
    elif _SCIENTIFIC.fullmatch(text):
        try:
            plain = format(Decimal(text), "f")
        except InvalidOperation:
            raise BadRow(f"{what} {text!r} is not a number") from None
        if len(plain) > 64:
            raise BadRow(f"{what} {text!r} is out of range")
    elif text.startswith("-") and _PLAIN.fullmatch(text[1:]):
        raise BadRow(f"{what} {text!r} is negative")
    else:
        raise BadRow(f"{what} {text!r} is not a finite decimal number")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    plain = plain.lstrip("0") or "0"
    if plain.startswith("."):
        plain = "0" + plain
    if positive and plain == "0":
        raise BadRow(f"{what} {text!r} must be > 0")
    return plain


def _decimals(plain: str) -> int:
    dot = plain.find(".")
    return 0 if dot < 0 else len(plain) - dot - 1


def _fixed(what: str, plain: str, decimals: int) -> str:
    have = _decimals(plain)
    if have > decimals:
        raise BadRow(f"{what} {plain} has {have} decimals, more than the {decimals} of this symbol's "
                     f"first rows (the grid it was read on)")
    if decimals == 0:
        return plain
    return plain + ("." if have == 0 else "") + "0" * (decimals - have)


def _time_us(what: str, text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise BadRow(f"{what} {text!r} is not an int of microseconds")
    value = int(text)
    if value > MAX_US:
        raise BadRow(f"{what} {text} is out of range")
    return value


# ---- one file's rows --------------------------------------------------------------------------


class Row(NamedTuple):
    """One row's common columns, checked; `fields` are all its columns as text."""

    where: str
    symbol: str
    ts_us: int
    local_us: int
    fields: list[str]


def _rows(path: Path, kind: str, stats: CaptureStats | None, limit: int = 0) -> Iterator[Row | tuple[str, str]]:
    """The rows of a file after its header: a Row, or (`file:line`, reason) of a malformed one.
    `stats` (when given) counts the lines read. A local_timestamp before the previous row's is malformed."""
    columns = len(HEADERS.get(kind) or snapshot_header(int(kind.rpartition("_")[2])))
    line_no = 0
    last_local = 0
    for lines in read_lines(path, stats):
        if stats is not None:
            stats.lines += len(lines)
        for line in lines:
            line_no += 1
            if line_no == 1:
                continue
            if limit and line_no > limit + 1:
                return
            where = f"{path}:{line_no}"
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                yield where, "not UTF-8 text"
                continue
            fields = text.split(",")
            if len(fields) != columns:
                yield where, f"{len(fields)} columns, the {kind} header has {columns}"
                continue
            try:
                if not fields[0] or not fields[1]:
                    raise BadRow("empty exchange or symbol")
                ts_us = _time_us("timestamp", fields[2])
                local_us = _time_us("local_timestamp", fields[3])
                if local_us < last_local:
                    raise BadRow(f"local_timestamp {local_us} is before the previous row's {last_local}")
            except BadRow as e:
                yield where, str(e)
                continue
            last_local = local_us
            yield Row(where, fields[1], ts_us, local_us, fields)


class Grids:
    """Per symbol: price and amount decimals, and the tick (GCD of its prices) of the first rows."""

    def __init__(self) -> None:
        self.decimals: dict[str, list[int]] = {}  # symbol -> [price_decimals, qty_decimals]
        self.prices: dict[str, set[str]] = {}
        self.book_symbols: list[str] = []  # symbols with book rows, in the order first seen
        self.exchange: dict[str, str] = {}

    def see(self, symbol: str, prices: Iterable[str], amounts: Iterable[str], is_book: bool, exchange: str) -> None:
        dec = self.decimals.get(symbol)
        if dec is None:
            dec = self.decimals[symbol] = [0, 0]
            self.prices[symbol] = set()
            self.exchange[symbol] = exchange
        seen = self.prices[symbol]
        for p in prices:
            dec[0] = max(dec[0], _decimals(p))
            if len(seen) < 20_000:
                seen.add(p)
        for q in amounts:
            dec[1] = max(dec[1], _decimals(q))
        if is_book and symbol not in self.book_symbols:
            self.book_symbols.append(symbol)

    def tick_units(self, symbol: str) -> int:
        """The GCD of the symbol's prices, in units of its last decimal (1 when none were seen)."""
        decimals = self.decimals[symbol][0]
        tick = 0
        for p in self.prices[symbol]:
            tick = math.gcd(tick, int(_fixed("price", p, decimals).replace(".", "")))
            if tick == 1:
                break
        return tick or 1


def _values(kind: str, fields: list[str]) -> tuple[list[str], list[str]]:
    """(prices, amounts) written in a row, unchecked text, empty ones left out."""
    if kind == L2 or kind == TRADES:
        return [fields[6]], [fields[7]]
    if kind == QUOTES:
        return [p for p in (fields[5], fields[6]) if p], [a for a in (fields[4], fields[7]) if a]
    levels = fields[4:]
    return [p for p in levels[0::2] if p], [a for a in levels[1::2] if a]


def prescan(paths: Iterable[Path | str]) -> tuple[dict[Path, str], Grids]:
    """Every file's dataset (a file that is no tardis CSV fails) and the grids of the first rows."""
    kinds: dict[Path, str] = {}
    grids = Grids()
    for path in map(Path, paths):
        kind = csv_kind(path)
        if kind is None:
            raise CaptureFormatError(f"{path}: no tardis CSV header: a tardis CSV cannot be replayed "
                                     f"together with a capture of another format")
        kinds[path] = kind
        is_book = kind != TRADES
        for row in _rows(path, kind, None, PRESCAN_ROWS):
            if type(row) is not Row:
                continue
            prices, amounts = _values(kind, row.fields)
            try:
                grids.see(row.symbol, [number("price", p, positive=True) for p in prices],
                          [number("amount", a, positive=False) for a in amounts], is_book, row.fields[0])
            except BadRow:
                continue  # counted with its line when the file is read
    return kinds, grids


# ---- the converter ----------------------------------------------------------------------------


class _Group(NamedTuple):
    """What one file hands the merge: an L2 message, a trade or a whole top of book."""

    local_us: int
    kind: str
    symbol: str
    ts_us: int
    bids: list[tuple[str, str]]  # (price, amount) text as written, checked; for a trade: [(price, amount)]
    asks: list[tuple[str, str]]
    extra: str  # L2: "snapshot" | "update"; a trade: "<id>,<side>"
    broken: bool  # an L2 row of this message was malformed
    where: str  # `file:line` its events are named by: its first row, or its first malformed one


class _FileReader:
    """One file's rows -> groups, malformed rows counted; `usable` counts the groups given."""

    def __init__(self, path: Path, kind: str, grids: Grids, book_kind: str, stats: CaptureStats) -> None:
        self.path, self.kind, self.grids, self.stats = path, kind, grids, stats
        self.uses_book = kind == book_kind
        self.usable = 0

    def _level(self, symbol: str, price: str, amount: str, positive_amount: bool) -> tuple[str, str]:
        dec = self.grids.decimals.get(symbol)
        if dec is None:  # a symbol first seen after the prescan
            dec = self.grids.decimals[symbol] = [_decimals(number("price", price, positive=True)),
                                                 _decimals(number("amount", amount, positive=False))]
            self.grids.prices[symbol] = set()
        return (_fixed("price", number("price", price, positive=True), dec[0]),
                _fixed("amount", number("amount", amount, positive=positive_amount), dec[1]))

    def groups(self) -> Iterator[_Group]:
        kind = self.kind
        stats = self.stats
        if kind == TRADES:
            yield from self._trades()
        elif kind == L2:
            yield from self._l2()
        elif not self.uses_book:
            for row in _rows(self.path, kind, stats):
                if type(row) is Row:
                    self.usable += 1
                    stats.skipped[f"{kind} (the book comes from a deeper dataset)"] += 1
                else:
                    stats.add_malformed(*row)
        else:
            yield from self._tops()

    def _trades(self) -> Iterator[_Group]:
        stats = self.stats
        for row in _rows(self.path, TRADES, stats):
            if type(row) is not Row:
                stats.add_malformed(*row)
                continue
            side = row.fields[5]
            try:
                if side not in ("buy", "sell", "unknown"):
                    raise BadRow(f"side {side!r} is not buy, sell or unknown")
                level = self._level(row.symbol, row.fields[6], row.fields[7], True)
            except BadRow as e:
                stats.add_malformed(row.where, str(e))
                continue
            if side == "unknown":
                stats.skipped["trades of side unknown"] += 1
                continue
            self.usable += 1
            yield _Group(row.local_us, TRADES, row.symbol, row.ts_us, [level], [], f"{row.fields[4]},{side}", False,
                         row.where)

    def _l2(self) -> Iterator[_Group]:
        stats = self.stats
        open_group: _Group | None = None
        broken_next = ""  # where the malformed row before any message was
        for row in _rows(self.path, L2, stats):
            if type(row) is not Row:
                stats.add_malformed(*row)
                if open_group is None:
                    broken_next = broken_next or row[0]
                elif not open_group.broken:
                    open_group = open_group._replace(broken=True, where=row[0])
                continue
            fields = row.fields
            try:
                if fields[4] not in ("true", "false"):
                    raise BadRow(f"is_snapshot {fields[4]!r} is not true or false")
                if fields[5] not in ("bid", "ask"):
                    raise BadRow(f"side {fields[5]!r} is not bid or ask")
                level = self._level(row.symbol, fields[6], fields[7], False)
                error = None
            except BadRow as e:
                error = str(e)
                stats.add_malformed(row.where, error)
            extra = "snapshot" if fields[4] == "true" else "update"
            same = (open_group is not None and open_group.symbol == row.symbol and open_group.extra == extra
                    and (extra == "snapshot" or open_group.local_us == row.local_us))
            if not same:
                if open_group is not None:
                    self.usable += 1
                    yield open_group
                open_group = _Group(row.local_us, L2, row.symbol, row.ts_us, [], [], extra, bool(broken_next),
                                    broken_next or row.where)
                broken_next = ""
            if error is not None:
                if not open_group.broken:
                    open_group = open_group._replace(broken=True, where=row.where)
            elif fields[5] == "bid":
                open_group.bids.append(level)
            else:
                open_group.asks.append(level)
        if open_group is not None:
            self.usable += 1
            yield open_group

    def _tops(self) -> Iterator[_Group]:
        stats = self.stats
        kind = self.kind
        for row in _rows(self.path, kind, stats):
            if type(row) is not Row:
                stats.add_malformed(*row)
                continue
            f = row.fields
            pairs = [((f[6], f[7]), "bid"), ((f[5], f[4]), "ask")] if kind == QUOTES else [
                ((f[i], f[i + 1]), "ask" if (i - 4) % 4 == 0 else "bid") for i in range(4, len(f), 2)]
            bids: list[tuple[str, str]] = []
            asks: list[tuple[str, str]] = []
            try:
                for (price, amount), side in pairs:
                    if not price and not amount:
                        continue  # a level the venue's book did not have
                    (bids if side == "bid" else asks).append(self._level(row.symbol, price, amount, True))
            except BadRow as e:
                stats.add_malformed(row.where, str(e))
                continue
            if not bids and not asks:
                stats.skipped[f"{kind} rows of an empty book"] += 1
                continue
            self.usable += 1
            yield _Group(row.local_us, kind, row.symbol, row.ts_us, bids, asks, "top", False, row.where)


def _sort_key(level: tuple[str, str]) -> Decimal:
    return Decimal(level[0])


class _SymbolBook:
    """A symbol's id sequence and what was forwarded of its book."""

    __slots__ = ("last_id", "snapshot", "sent", "needs_snapshot", "trades")

    def __init__(self) -> None:
        self.last_id = 0
        self.snapshot: _Group | None = None  # the L2 snapshot forwarded last, while no update followed it
        self.sent: tuple[dict[str, str], dict[str, str]] = ({}, {})  # top-of-book source: px -> qty as forwarded
        self.needs_snapshot = True
        self.trades = 0


def _snapshot(symbol: str, book: _SymbolBook, group: _Group) -> CaptureEvent:
    bids = {px: qty for px, qty in group.bids}
    asks = {px: qty for px, qty in group.asks}
    book.last_id += 1
    frame = DepthSnapshot(
        lastUpdateId=book.last_id, E=group.ts_us // 1000,
        bids=sorted(((p, q) for p, q in bids.items() if Decimal(q)), key=_sort_key, reverse=True),
        asks=sorted(((p, q) for p, q in asks.items() if Decimal(q)), key=_sort_key))
    return CaptureEvent(group.local_us * 1000, symbol, frame)


def _diff(symbol: str, book: _SymbolBook, group: _Group, bids, asks, skip: bool) -> CaptureEvent:
    book.last_id += 2 if skip else 1
    frame = DepthUpdate(s=symbol, U=book.last_id, u=book.last_id, b=[] if skip else list(bids),
                        a=[] if skip else list(asks), E=group.ts_us // 1000)
    return CaptureEvent(group.local_us * 1000, symbol, frame)


def _changes(before: dict[str, str], after: dict[str, str], zero: str) -> list[tuple[str, str]]:
    """The levels to send so that `before` becomes `after` (`zero`, the amount 0, removes a level)."""
    changes = [(px, qty) for px, qty in after.items() if before.get(px) != qty]
    changes.extend((px, zero) for px in before.keys() - after.keys())
    changes.sort(key=_sort_key)
    return changes


class TardisConverter:
    """Groups of every file, in local_timestamp order -> CaptureEvents with the converter's ids."""

    def __init__(self, grids: Grids, stats: CaptureStats) -> None:
        self.grids = grids
        self.stats = stats
        self.books: dict[str, _SymbolBook] = {}

    def _book(self, symbol: str) -> _SymbolBook:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = _SymbolBook()
        return book

    def convert(self, group: _Group) -> Iterator[CaptureEvent]:
        name = symbol_name(group.symbol)
        book = self._book(name)
        kind = group.kind
        if kind == TRADES:
            trade_id, _, side = group.extra.partition(",")
            if trade_id.isdigit() and trade_id.isascii() and len(trade_id) < 19:
                number_id = int(trade_id)
            else:
                book.trades += 1
                number_id = book.trades
            (price, amount), = group.bids
            yield CaptureEvent(group.local_us * 1000, name, TradeFrame(
                s=name, t=number_id, p=price, q=amount, T=group.ts_us // 1000, m=side == "sell"))
            return
        if kind == L2:
            if group.extra == "snapshot":
                last = book.snapshot
                if last is not None:  # continues the snapshot forwarded last (another symbol's rows came between)
                    group = group._replace(bids=last.bids + group.bids, asks=last.asks + group.asks,
                                           broken=last.broken or group.broken,
                                           where=group.where if group.broken and not last.broken else last.where)
                book.snapshot = group
                # an incomplete snapshot: the book goes out of sync instead
                yield _diff(name, book, group, [], [], True) if group.broken else _snapshot(name, book, group)
                return
            book.snapshot = None
            yield _diff(name, book, group, group.bids, group.asks, group.broken)
            return
        # a whole top of book (quotes, book_snapshot_N)
        bids = dict(group.bids)
        asks = dict(group.asks)
        crossed = bool(bids) and bool(asks) and max(map(Decimal, bids)) >= min(map(Decimal, asks))
        if book.needs_snapshot:
            if crossed:
                self.stats.skipped[f"{kind} rows of a crossed book"] += 1
                return
            book.needs_snapshot = False
            book.sent = (bids, asks)
            yield _snapshot(name, book, group)
            return
        qty_decimals = self.grids.decimals[group.symbol][1]
        zero = _fixed("amount", "0", qty_decimals)
        bid_changes = _changes(book.sent[0], bids, zero)
        ask_changes = _changes(book.sent[1], asks, zero)
        if not bid_changes and not ask_changes:
            return
        book.sent = (bids, asks)
        if crossed:
            book.needs_snapshot = True  # the book drops its book on this diff; a snapshot follows the uncrossing
        yield _diff(name, book, group, bid_changes, ask_changes, False)


def read_tardis(paths: Iterable[Path | str], stats: CaptureStats | None = None) -> Iterator[CaptureEvent]:
    """Every event of the CSV files, merged by local_timestamp (see the module docstring)."""
    paths = [Path(p) for p in paths]
    stats = CaptureStats() if stats is None else stats
    kinds, grids = prescan(paths)
    book_kind = max(kinds.values(), key=_book_rank)
    if _book_rank(book_kind) == 0:
        book_kind = ""
    readers = [_FileReader(path, kind, grids, book_kind, stats) for path, kind in kinds.items()]
    converter = TardisConverter(grids, stats)
    convert = converter.convert
    for group in heapq.merge(*(r.groups() for r in readers), key=_local_us):
        stats.where_text = group.where  # CaptureStats.where of the events it gives
        yield from convert(group)
    for reader in readers:
        if not reader.usable:
            raise CaptureFormatError(_no_rows(reader.path, reader.kind, stats))


def _local_us(group: _Group) -> int:
    return group.local_us


def _no_rows(path: Path, kind: str, stats: CaptureStats) -> str:
    mine = [m for m in stats.malformed if m.startswith(f"{path}:")]
    why = f"; the first malformed: {mine[0]}" if mine else ""
    return f"{path}: {kind} CSV without one usable row ({stats.malformed_count} malformed in all{why})"


def tardis_instrument(paths: list[Path], symbol: str | None) -> tuple[str, int, int, int, str]:
    """(symbol, price_decimals, qty_decimals, tick_units, exchange) of the instrument a replay of the
    CSV files trades: `symbol` (tardis's name or the pipeline's) or the first with book rows."""
    _, grids = prescan(paths)
    names = {symbol_name(s): s for s in grids.book_symbols}
    if symbol is None:
        found = grids.book_symbols[0] if grids.book_symbols else None
    else:
        wanted = symbol_name(symbol).upper()
        found = next((s for n, s in names.items() if n.upper() == wanted), None)
    if found is None:
        raise CaptureFormatError(f"{', '.join(map(str, paths))}: no readable book row"
                                 + (f" of {symbol}" if symbol else "")
                                 + f" ({L2}, book_snapshot_N or {QUOTES}): cannot build a book")
    price_decimals, qty_decimals = grids.decimals[found]
    return symbol_name(found), price_decimals, qty_decimals, grids.tick_units(found), grids.exchange[found]


# ---- as capture lines (mm venue --feed) -------------------------------------------------------

_encode = msgspec.json.encode


def capture_line(event: CaptureEvent) -> bytes:
    """An event as a line of the capture format `<recv_ts_ns> <json>` (Binance spot's frames)."""
    frame = event.frame
    symbol = event.symbol
    lower = symbol.lower()
    if type(frame) is DepthUpdate:
        body = {"stream": f"{lower}@depth@100ms", "data": {"e": "depthUpdate", "E": frame.E, "s": symbol,
                                                             "U": frame.U, "u": frame.u, "b": frame.b, "a": frame.a}}
    elif type(frame) is TradeFrame:
        body = {"stream": f"{lower}@trade", "data": {"e": "trade", "E": frame.T, "s": symbol, "t": frame.t,
                                                       "p": frame.p, "q": frame.q, "T": frame.T, "m": frame.m,
                                                       "M": True}}
    elif type(frame) is DepthSnapshot:
        body = {"rest": REST_DEPTH.format(symbol), "data": {"lastUpdateId": frame.lastUpdateId,
                                                             "bids": frame.bids, "asks": frame.asks}}
    elif type(frame) is BookTickerFrame:
        body = {"stream": f"{lower}@bookTicker", "data": {"u": frame.u, "s": symbol, "b": frame.b, "B": frame.B,
                                                            "a": frame.a, "A": frame.A}}
    else:
        raise TypeError(f"no capture line for {type(frame).__name__}")
    return b"%d %s" % (event.recv_ts_ns, _encode(body))


def capture_lines(path: Path | str, stats: CaptureStats | None = None) -> Iterator[bytes]:
    """The file's lines in the capture format: a tardis CSV rendered (snapshots first as REST
    lines, as a recorder writes them), any other file's lines as they are."""
    path = Path(path)
    if csv_kind(path) is None:
        for lines in read_lines(path):
            yield from lines
        return
    for event in read_tardis([path], stats):
        yield capture_line(event)
