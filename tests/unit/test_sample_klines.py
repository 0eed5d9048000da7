"""mm.trade_tape.sample_klines: klines of a sampled price (USD-M's mark)."""

from mm.trade_tape import SampleKline, sample_klines

SAMPLES = [(60_000, 10.0), (61_000, 12.0), (119_999, 9.0), (120_000, 11.0), (240_500, 13.0)]


def test_sample_klines_group_by_interval_and_leave_out_empty_ones() -> None:
    assert sample_klines(SAMPLES, 60_000, None, None, 500) == [
        SampleKline(60_000, 10.0, 12.0, 9.0, 9.0, 3), SampleKline(120_000, 11.0, 11.0, 11.0, 11.0, 1),
        SampleKline(240_000, 13.0, 13.0, 13.0, 13.0, 1)]


def test_sample_klines_limit_counts_from_start_else_from_the_end() -> None:
    assert [k.open_ms for k in sample_klines(SAMPLES, 60_000, 120_000, None, 1)] == [120_000]
    assert [k.open_ms for k in sample_klines(SAMPLES, 60_000, None, 200_000, 1)] == [120_000]
    assert [k.open_ms for k in sample_klines(SAMPLES, 60_000, None, None, 2)] == [120_000, 240_000]
    assert sample_klines(SAMPLES, 60_000, None, None, 0) == []
