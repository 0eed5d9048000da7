from decimal import Decimal

import pytest

from mm.hyperliquid_rules import MIN_VALUE_ERROR, SIZE_ERROR, TICK_ERROR, AddressBudget, NonceSet, order_error, price_is_valid

NOW = 1_795_580_000_000


@pytest.mark.parametrize("px,szd,spot,ok", [
    ("1234.5", 0, False, True), ("1234.56", 0, False, False), ("0.001234", 0, False, True),
    ("0.0012345", 0, False, False), ("0.01234", 1, False, True), ("0.012345", 1, False, False),
    ("123456", 0, False, True), ("12345.6", 0, False, False), ("0.0001234", 1, True, True),
    ("0.0001234", 2, True, False),
])
def test_price_rule_doc_table(px, szd, spot, ok):
    assert price_is_valid(Decimal(px), szd, spot) is ok


def test_order_error_texts():
    assert order_error(Decimal("100000.5"), Decimal("0.001"), 5) == TICK_ERROR
    assert order_error(Decimal("100000"), Decimal("0.000001"), 5) == SIZE_ERROR
    assert order_error(Decimal("100000"), Decimal("0.00009"), 5) == MIN_VALUE_ERROR
    assert order_error(Decimal("100000"), Decimal("0.0001"), 5) is None


def test_nonce_rules():
    nonces = NonceSet()
    assert nonces.check(NOW, NOW) is None
    assert "duplicate" in nonces.check(NOW, NOW)
    assert "window" in nonces.check(NOW + 2 * 86_400_000, NOW)
    for i in range(1, 101):
        assert nonces.check(NOW + i, NOW) is None
    assert "lowest" in nonces.check(NOW - 1 + 1, NOW)  # NOW fell out and is below the kept minimum


def test_address_budget_exhausts_then_one_per_10s_and_cancels_go_on():
    budget = AddressBudget(initial=2)
    assert budget.spend(2, NOW) is None
    assert budget.spend(1, NOW) is None  # first over-cap request of a 10 s slot
    assert budget.spend(1, NOW + 1).startswith("Too many cumulative requests sent")
    assert budget.spend(1, NOW + 1, is_cancel=True) is None
    assert budget.spend(1, NOW + 10_001) is None
