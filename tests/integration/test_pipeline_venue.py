"""The real six processes in paper mode against `mm venue` on loopback, one fault switch at a
time: the book ends equal to the venue's own, faults are counted, nothing crashes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, console_request, console_status, mm_command, wait_until

pytestmark = pytest.mark.integration

TICK, LOT = Decimal("0.01"), Decimal("0.00001")


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", 0))
                port = a.getsockname()[1]
                b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two free consecutive ports")


class Venue:
    def __init__(self, flags: list[str]) -> None:
        self.port = free_port_pair()
        self.proc = subprocess.Popen(mm_command("venue", "--port", str(self.port), *flags), cwd=REPO_ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("venue ws="), line + self.proc.stderr.read()
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.rest_url = f"http://127.0.0.1:{self.port + 1}"

    def depth(self, limit: int) -> dict:
        with urllib.request.urlopen(f"{self.rest_url}/api/v3/depth?symbol=BTCUSDT&limit={limit}", timeout=5) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=10)


def to_ticks(levels: list[list[str]]) -> list[list[int]]:
    return [[int(Decimal(px) / TICK), int(Decimal(qty) / LOT)] for px, qty in levels]


FAULTS = {
    "clean": ([], {}),
    "drop_diffs": (["--drop-diffs", "3", "--fault-after", "60"], {"gaps": 1}),
    "malformed_duplicate_reorder": (["--malformed-every", "40", "--duplicate-every", "7", "--reorder-every", "11",
                                     "--fault-after", "5"], {"decode_drops": 1}),
    "disconnect": (["--disconnect-every", "2"], {"reconnects": 1}),
    "stall": (["--stall", "3", "--fault-after", "80"], {"reconnects": 1}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_paper_pipeline_book_equals_venue_under_fault(make_config, tmp_path: Path, fault: str):
    flags, expect = FAULTS[fault]
    venue = Venue(flags)
    try:
        _, path = make_config(pipeline={"mode": "paper"},
                              feed={"ws_url": venue.ws_url, "rest_url": venue.rest_url, "silent_s": 1.0},
                              book={"shadow_every_s": 1.0})
        report_path = tmp_path / "report.json"
        proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "60", "--report",
                                           str(report_path), "--quiet"),
                                cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            def books_agree() -> bool:
                mine = console_request(path, "book", "20")
                if mine is None:
                    return False
                theirs = venue.depth(20)
                return (mine.get("update_id") == theirs["lastUpdateId"] and mine["bids"] == to_ticks(theirs["bids"])
                        and mine["asks"] == to_ticks(theirs["asks"]))

            wait_until(books_agree, 20, interval_s=0.03, what=f"our book equals the venue's ({fault})")
            if fault == "clean":
                wait_until(lambda: (console_status(path) or {}).get("book", {}).get("shadow_matches", 0) >= 1, 20, interval_s=0.3,
                           what="a shadow REST snapshot compared equal to the live book")
            if fault in ("disconnect", "stall", "drop_diffs", "malformed_duplicate_reorder"):  # the fault, then agree
                wait_until(lambda: _counts(path, expect), 20, interval_s=0.3, what=f"{fault} seen and counted")
                wait_until(books_agree, 20, interval_s=0.03, what=f"our book equals the venue's after {fault}")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-3000:]
        report = json.loads(report_path.read_text())
        assert report["book"]["crossed"] == 0
        if fault == "clean":  # shadow snapshots taken each second agree with the live book
            assert report["book"]["shadow_matches"] >= 1 and report["book"]["shadow_mismatches"] == 0
        if "gaps" in expect:
            assert report["book"]["recoveries"] >= 1 and report["book"]["recover_ms_max"] > 0
        stream = report["feed"]["stream"]
        if "gaps" in expect:
            assert report["book"]["gaps"] >= 1 and report["book"]["resyncs"] >= 1
        if "decode_drops" in expect:  # a malformed frame is dropped with a counted reason
            assert malformed_drops(stream) >= 1
        if "reconnects" in expect:
            assert stream.get("reconnects", 0) >= 1
    finally:
        venue.close()


def _counts(path: Path, expect: dict) -> bool:
    """The live counters (console status: the book's and the feed's summaries) show the fault."""
    reply = console_status(path)
    if reply is None:
        return False
    book, stream = reply.get("book", {}), reply.get("feed", {}).get("stream", {})
    if "gaps" in expect:
        return book.get("gaps", 0) >= 1 and book.get("synced", False)
    if "reconnects" in expect:
        return stream.get("reconnects", 0) >= 1
    if "decode_drops" in expect:
        return malformed_drops(stream) >= 1
    return True


def malformed_drops(stream: dict) -> int:
    """Frames the venue garbled: undecodable, a bad field, or a value off the grid."""
    return sum(stream.get(key, 0) for key in ("drop_decode_error", "drop_bad_field", "drop_off_grid"))
