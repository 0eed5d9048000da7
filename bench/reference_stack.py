"""The reference stack for bench/: a book builder as a typical Python script writes one.

orjson decodes every capture line into dicts; prices and quantities become floats (`float(text)`,
the usual script's choice and faster than any exact text -> int route); each side of a symbol's
book is a `sortedcontainers.SortedDict` price -> qty; the top 20 levels of both sides are read
after every applied diff (what a book process would publish). Sync is Binance's procedure kept
simple: diffs are buffered until the symbol's REST snapshot, the ones it covers are dropped, the
first applied one must straddle it (spot `U <= id+1 <= u`, futures `U <= id <= u`), then each
diff must continue the last (spot `U == u+1`, futures `pu == u`); a break counts a gap and the
symbol waits for its next snapshot.

Prints the final top N per symbol as `mm book FEED --depth N --json` does (prices and
quantities written back with the venue's number of decimals, plus `updates` and `gaps`), so
the two can be compared for equality (tests/replay/test_reference_stack.py).

    python bench/reference_stack.py FEED... [--depth 10]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys

import orjson
from sortedcontainers import SortedDict

TOP_N = 20  # levels read after every diff


class Book:
    __slots__ = ("bids", "asks", "last_id", "synced", "first", "buffer", "updates", "gaps",
                 "price_decimals", "qty_decimals", "top_bids", "top_asks")

    def __init__(self) -> None:
        self.bids = SortedDict()
        self.asks = SortedDict()
        self.last_id = -1
        self.synced = False
        self.first = False
        self.buffer: list[dict] = []
        self.updates = 0
        self.gaps = 0
        self.price_decimals = -1  # from the first level seen
        self.qty_decimals = -1
        self.top_bids: list = []
        self.top_asks: list = []

    def learn_decimals(self, levels: list) -> None:
        if self.price_decimals < 0 and levels:
            price, qty = levels[0]
            self.price_decimals = len(price.partition(".")[2])
            self.qty_decimals = len(qty.partition(".")[2])

    def load(self, snapshot: dict) -> None:
        self.learn_decimals(snapshot["bids"] or snapshot["asks"])
        bids = [(float(p), float(q)) for p, q in snapshot["bids"]]
        asks = [(float(p), float(q)) for p, q in snapshot["asks"]]
        self.load_levels(snapshot["lastUpdateId"], bids, asks)

    def load_levels(self, last_id: int, bids: list, asks: list) -> None:
        self.bids = SortedDict({p: q for p, q in bids if q})
        self.asks = SortedDict({p: q for p, q in asks if q})
        self.last_id = last_id
        self.synced = True
        self.first = True
        pending, self.buffer = self.buffer, []
        for diff in pending:
            self.on_levels(*diff)

    def on_diff(self, diff: dict) -> None:
        self.learn_decimals(diff["b"] or diff["a"])
        bids = [(float(p), float(q)) for p, q in diff["b"]]
        asks = [(float(p), float(q)) for p, q in diff["a"]]
        self.on_levels(diff["U"], diff["u"], diff.get("pu"), bids, asks)

    def on_levels(self, first_id: int, final_id: int, prev_id, bids: list, asks: list) -> None:
        """One diff, levels as floats; then the top TOP_N of both sides is read."""
        if not self.synced:
            self.buffer.append((first_id, final_id, prev_id, bids, asks))
            return
        last_id = self.last_id
        if prev_id is None:  # spot: an overlapping diff applies (levels are absolute)
            if final_id <= last_id:
                return
            ok = first_id <= last_id + 1
        elif self.first:  # futures, first diff after the snapshot
            if final_id < last_id:
                return
            ok = first_id <= last_id
        else:
            ok = prev_id == last_id
            if not ok and final_id <= last_id:
                return
        if not ok:
            self.gaps += 1
            self.synced = False
            self.buffer = [(first_id, final_id, prev_id, bids, asks)]
            return
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.last_id = final_id
        self.first = False
        self.updates += 1
        bids = self.bids
        self.top_bids = [(p, bids[p]) for p in bids.islice(max(0, len(bids) - TOP_N), reverse=True)]
        self.top_asks = self.asks.items()[:TOP_N]

    def top(self, depth: int) -> dict:
        px = f"{{:.{max(self.price_decimals, 0)}f}}".format
        qty = f"{{:.{max(self.qty_decimals, 0)}f}}".format
        bids = self.bids.items()[::-1][:depth] if depth else []
        asks = self.asks.items()[:depth]
        return {
            "bids": [[px(p), qty(q)] for p, q in bids],
            "asks": [[px(p), qty(q)] for p, q in asks],
            "updates": self.updates,
            "gaps": self.gaps,
        }


def symbol_of_rest(path: str) -> str:
    for part in path.partition("?")[2].split("&"):
        key, _, value = part.partition("=")
        if key == "symbol":
            return value.upper()
    return ""


def run(paths: list[str], depth: int) -> dict:
    books: dict[str, Book] = {}
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as lines:
            for line in lines:
                _, _, body = line.partition(b" ")
                try:
                    msg = orjson.loads(body)
                except orjson.JSONDecodeError:
                    continue
                rest = msg.get("rest")
                if rest is not None:
                    if "/depth" in rest:
                        symbol = symbol_of_rest(rest)
                        book = books.get(symbol) or books.setdefault(symbol, Book())
                        book.load(msg["data"])
                    continue
                stream = msg.get("stream", "")
                kind = stream.partition("@")[2]
                if kind != "depth" and not kind.startswith("depth@"):
                    continue
                data = msg["data"]
                symbol = data["s"]
                book = books.get(symbol) or books.setdefault(symbol, Book())
                book.on_diff(data)
    return {symbol: books[symbol].top(depth) for symbol in sorted(books)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("feeds", nargs="+")
    parser.add_argument("--depth", type=int, default=10)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.feeds, args.depth)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
