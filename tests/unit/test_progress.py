"""Replay progress: one redrawn line on a terminal, plain lines elsewhere, rate and ETA."""

from __future__ import annotations

import io

from processes.progress import Progress, format_duration, format_progress, format_rate


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_format_progress_known_total_bar_rate_and_eta():
    line = format_progress("replay", 250, 1000, 2.0, bar_width=8)

    assert line == "replay  [##------]  25.0%  250/1000 ev  125.0 ev/s  ETA 0:06"


def test_format_progress_unknown_total_count_and_rate_only():
    line = format_progress("replay", 4500, None, 3.0)

    assert line == "replay  4500 ev  1.5k ev/s  in 0:03"


def test_format_progress_done_shows_elapsed_not_eta():
    line = format_progress("replay", 1000, 1000, 65.0, bar_width=4)

    assert line.endswith("[####] 100.0%  1000/1000 ev  15.4 ev/s  in 1:05")


def test_format_progress_nothing_done_yet_eta_unknown():
    assert format_progress("replay", 0, 10, 0.0).endswith("0.0 ev/s  ETA ?")


def test_format_duration_hours_minutes_seconds():
    assert [format_duration(s) for s in (0, 59.4, 61, 3600, 3725)] == ["0:00", "0:59", "1:01", "1:00:00", "1:02:05"]


def test_format_rate_suffixes():
    assert [format_rate(r) for r in (12.0, 1234.0, 2.5e6)] == ["12.0", "1.2k", "2.5M"]


def test_progress_not_a_tty_prints_plain_lines_at_the_interval():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(100, stream=out, is_tty=False, plain_interval_s=5.0, clock=clock)

    for step in range(1, 11):  # 10 updates, 1 s apart
        clock.now_s += 1.0
        progress.update(step * 10)
    progress.close()

    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split()[3] for line in lines] == ["10/100", "60/100", "100/100"]  # at 1 s, 6 s, close
    assert lines[-1].endswith("in 0:10")


def test_progress_tty_redraws_one_line_and_ends_it_on_close():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(None, label="feed", stream=out, is_tty=True, tty_interval_s=0.2, clock=clock)

    for _ in range(5):
        clock.now_s += 0.25
        progress.advance(1000)
    progress.close()

    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    frames = text.rstrip("\n").split("\r")[1:]
    assert len(frames) == 6  # five redraws and the final one
    assert frames[-1].strip() == "feed  5000 ev  4.0k ev/s  in 0:01"


def test_progress_tty_shorter_line_wipes_the_longer_one():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(None, stream=out, is_tty=True, tty_interval_s=0.0, clock=clock)
    clock.now_s += 1.0
    progress.update(1_000_000)
    first_width = len(out.getvalue()) - 1

    clock.now_s += 1000.0
    progress.update(1_000_001)

    second = out.getvalue().split("\r")[-1]
    assert len(second) >= first_width


def test_progress_context_manager_closes_once():
    clock, out = FakeClock(), io.StringIO()

    with Progress(3, stream=out, is_tty=False, clock=clock) as progress:
        progress.advance()
    progress.close()

    assert len(out.getvalue().splitlines()) == 2  # the first update and one final line
