"""Progress of a long replay on one terminal line: count, share done, rate and ETA.

On a terminal the line is redrawn in place (carriage return) at most every `tty_interval_s`;
elsewhere (a log file, CI) a plain line is printed every `plain_interval_s`. `close()` always
prints the final state and ends the line. The clock is injectable so tests never sleep.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


def format_duration(seconds: float) -> str:
    """`M:SS`, or `H:MM:SS` from one hour."""
    whole = max(0, int(round(seconds)))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(per_s: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_s >= limit:
            return f"{per_s / limit:.1f}{suffix}"
    return f"{per_s:.1f}"


def format_progress(label: str, done: int, total: int | None, elapsed_s: float, unit: str = "ev",
                    bar_width: int = BAR_WIDTH) -> str:
    """`label [#####-----]  45.0%  450/1000 ev  1.2k ev/s  ETA 0:05`; without a total: count and rate."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    parts = [label]
    if total:
        share = min(1.0, done / total)
        filled = int(share * bar_width)
        parts.append(f"[{'#' * filled}{'-' * (bar_width - filled)}] {share * 100:5.1f}%")
        parts.append(f"{done}/{total} {unit}")
    else:
        parts.append(f"{done} {unit}")
    parts.append(f"{format_rate(rate)} {unit}/s")
    if total and done < total:
        parts.append(f"ETA {format_duration((total - done) / rate)}" if rate > 0 else "ETA ?")
    else:
        parts.append(f"in {format_duration(elapsed_s)}")
    return "  ".join(parts)


class Progress:
    """Report `update(done)` / `advance(n)` of `total` items (None: unknown) on `stream`."""

    def __init__(self, total: int | None, *, label: str = "replay", unit: str = "ev", stream: TextIO | None = None,
                 is_tty: bool | None = None, tty_interval_s: float = 0.2, plain_interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.is_tty = self.stream.isatty() if is_tty is None else is_tty
        self.interval_s = tty_interval_s if self.is_tty else plain_interval_s
        self.clock = clock
        self.done = 0
        self._started_s = clock()
        self._last_drawn_s: float | None = None
        self._drawn_width = 0
        self._closed = False

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)

    def update(self, done: int) -> None:
        self.done = done
        now_s = self.clock()
        if self._last_drawn_s is None or now_s - self._last_drawn_s >= self.interval_s:
            self._draw(now_s, final=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._draw(self.clock(), final=True)

    def line(self, now_s: float | None = None) -> str:
        elapsed_s = (self.clock() if now_s is None else now_s) - self._started_s
        return format_progress(self.label, self.done, self.total, elapsed_s, self.unit)

    def _draw(self, now_s: float, *, final: bool) -> None:
        self._last_drawn_s = now_s
        text = self.line(now_s)
        if self.is_tty:
            columns = shutil.get_terminal_size((100, 24)).columns
            text = text[: max(10, columns - 1)]
            padding = " " * max(0, self._drawn_width - len(text))  # wipe what a longer line left
            self._drawn_width = len(text)
            self.stream.write("\r" + text + padding + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
