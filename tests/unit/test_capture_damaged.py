"""A gzip capture cut short or corrupted (a crash or a full disk while recording) is read up to the
damage: every complete line before it comes out, a warning names the file, the cut line counts as
malformed with its `file:line`, and nothing raises."""

from __future__ import annotations

import gzip
import logging
import random
from pathlib import Path

import pytest

from mm.capture import CaptureStats, read_capture, read_lines
from processes.launcher import count_lines

N_LINES = 20_000


def _trade_line(i: int) -> bytes:
    return (b'%d {"stream":"btcusdt@trade","data":{"e":"trade","E":%d,"s":"BTCUSDT","t":%d,'
            b'"p":"61837.%02d000000","q":"0.0%d000000","T":%d,"m":true,"M":true}}'
            % (1_723_161_254_087_896_568 + i, 1_723_161_255_343 + i, 3_735_683_259 + i, i % 100, 1 + i % 9,
               1_723_161_255_342 + i))


@pytest.fixture
def lines() -> list[bytes]:
    return [_trade_line(i) for i in range(N_LINES)]


def _write(path: Path, lines: list[bytes]) -> bytes:
    body = gzip.compress(b"\n".join(lines) + b"\n")
    path.write_bytes(body)
    return body


def _read_all(path: Path) -> list[bytes]:
    return [line for batch in read_lines(path) for line in batch]


def test_truncated_gzip_yields_every_complete_line_before_the_cut_and_warns(tmp_path, lines, caplog):
    path = tmp_path / "cut.jsonl.gz"
    body = _write(path, lines)
    path.write_bytes(body[: len(body) * 2 // 3])
    with caplog.at_level(logging.WARNING, logger="mm.capture"):
        got = _read_all(path)
    complete, cut = got[:-1], got[-1]
    assert len(complete) > N_LINES // 2  # what the kept two thirds of the file hold, not just a first chunk
    assert complete == lines[: len(complete)]
    assert lines[len(complete)].startswith(cut) and cut != lines[len(complete)]
    assert f"{path}: compressed stream damaged" in caplog.text


def test_a_damaged_file_read_again_warns_once_and_each_read_records_it(tmp_path, lines, caplog):
    """A replay reads its capture several times (grid, symbols, messages): one warning, not five."""
    path = tmp_path / "cut-twice.jsonl.gz"
    body = _write(path, lines)
    path.write_bytes(body[: len(body) // 2])
    first, second = CaptureStats(), CaptureStats()
    with caplog.at_level(logging.WARNING, logger="mm.capture"):
        for stats in (first, second):
            assert [line for batch in read_lines(path, stats) for line in batch]
    assert caplog.text.count(f"{path}: compressed stream damaged") == 1
    assert first.damaged == second.damaged and len(first.damaged) == 1


def test_corrupt_gzip_stops_at_the_damage_and_keeps_the_lines_before(tmp_path, lines, caplog):
    path = tmp_path / "corrupt.jsonl.gz"
    body = bytearray(_write(path, lines))
    rng = random.Random(7)
    middle = len(body) // 2
    for i in range(middle, middle + 64):
        body[i] = rng.randrange(256)
    path.write_bytes(bytes(body))
    with caplog.at_level(logging.WARNING, logger="mm.capture"):
        got = _read_all(path)
    known = set(lines)
    whole = [line for line in got if line in known]
    assert 0 < len(whole) < N_LINES
    assert got[: len(whole)] == lines[: len(whole)]
    assert "compressed stream damaged" in caplog.text


def test_read_capture_counts_the_cut_line_malformed_with_its_place(tmp_path, lines):
    path = tmp_path / "cut.jsonl.gz"
    body = _write(path, lines)
    path.write_bytes(body[: len(body) // 2])
    stats = CaptureStats()
    trades = sum(1 for _ in read_capture([path], stats))
    assert trades == stats.events["TradeFrame"] == stats.lines - 1
    assert stats.malformed_count == 1
    assert stats.malformed[0].startswith(f"{path}:{trades + 1}: ")


def test_count_lines_of_a_truncated_capture_does_not_raise(tmp_path, lines):
    path = tmp_path / "cut.jsonl.gz"
    body = _write(path, lines)
    path.write_bytes(body[: len(body) // 2])
    assert 0 < count_lines([path]) < N_LINES


def test_plain_capture_is_read_whole(tmp_path, lines):
    path = tmp_path / "plain.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert _read_all(path) == lines
