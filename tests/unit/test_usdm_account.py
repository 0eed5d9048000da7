import pytest

from mm.usdm_account import Countdown, UsdmAccount, UsdmPosition


def test_open_add_reduce_flip_realises_against_entry():
    p = UsdmPosition("BTCUSDT")
    assert p.apply_fill("BUY", 100.0, 1.0) == 0.0
    assert p.apply_fill("BUY", 110.0, 1.0) == 0.0
    assert p.amount == 2.0 and p.entry_price == pytest.approx(105.0)
    assert p.apply_fill("SELL", 115.0, 0.5) == pytest.approx(5.0)
    assert p.amount == pytest.approx(1.5) and p.entry_price == pytest.approx(105.0)
    # flip: closes 1.5 at 95 (-15), opens 0.5 short at 95
    assert p.apply_fill("SELL", 95.0, 2.0) == pytest.approx(-15.0)
    assert p.amount == pytest.approx(-0.5) and p.entry_price == 95.0
    assert p.unrealized(90.0) == pytest.approx(2.5)
    assert p.apply_fill("BUY", 90.0, 0.5) == pytest.approx(2.5)
    assert p.amount == 0.0 and p.entry_price == 0.0


def test_account_margin_and_available():
    a = UsdmAccount(wallet=1000.0)
    a.set_leverage("BTCUSDT", 10)
    a.apply_fill("BTCUSDT", "BUY", 100.0, 2.0, fee=0.04)
    assert a.wallet == pytest.approx(999.96)
    marks = {"BTCUSDT": 110.0}
    assert a.unrealized(marks) == pytest.approx(20.0)
    assert a.position_initial_margin(marks) == pytest.approx(22.0)
    assert a.available(marks, {"BTCUSDT": 50.0}) == pytest.approx(999.96 + 20.0 - 22.0 - 5.0)
    a.apply_fill("BTCUSDT", "SELL", 110.0, 2.0, fee=0.0)
    assert a.wallet == pytest.approx(1019.96)


@pytest.mark.parametrize("bad", [0, 126, 2.5])
def test_leverage_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="leverage"):
        UsdmAccount(0.0).set_leverage("BTCUSDT", bad)


def test_bad_fill_is_refused():
    with pytest.raises(ValueError, match="side"):
        UsdmPosition("X").apply_fill("buy", 1.0, 1.0)
    with pytest.raises(ValueError, match="price and qty"):
        UsdmPosition("X").apply_fill("BUY", 1.0, 0.0)


def test_countdown_fires_once_rearm_and_stop():
    c = Countdown()
    c.arm("BTCUSDT", 1000, 500)
    c.arm("ETHUSDT", 1000, 2000)
    assert c.next_deadline_ms() == 1500
    assert c.due(1499) == []
    c.arm("BTCUSDT", 1400, 500)  # heartbeat pushes it out
    assert c.due(1600) == []
    assert c.due(1900) == ["BTCUSDT"]
    assert c.due(5000) == ["ETHUSDT"]
    assert c.due(9000) == [] and c.next_deadline_ms() is None
    c.arm("BTCUSDT", 0, 100)
    c.arm("BTCUSDT", 50, 0)  # 0 stops the timer
    assert c.due(1000) == []
    with pytest.raises(ValueError, match="countdownTime"):
        c.arm("BTCUSDT", 0, -1)
