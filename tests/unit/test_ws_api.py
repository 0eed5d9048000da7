"""mm.ws_api: the WebSocket API's signature payload (official vectors), param text, request ids and the
cancelReplace outcome table."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mm.ws_api import (
    Half,
    cancel_replace_outcome,
    is_every,
    is_valid_request_id,
    param_text,
    should_attempt_new,
    signature_payload,
)

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
VECTOR_4 = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000000",
            "price": "52000.00", "recvWindow": 100, "timestamp": 1645423376532, "apiKey": API_KEY}


def _sign(payload: str) -> str:
    return hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


def test_signature_payload_reproduces_binance_md_vector_4() -> None:
    payload = signature_payload(VECTOR_4 | {"signature": "ignored"})
    assert payload == ("apiKey=" + API_KEY + "&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
                       "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT")
    assert _sign(payload) == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_signature_payload_reproduces_the_ws_api_docs_hmac_example() -> None:
    params = VECTOR_4 | {"newOrderRespType": "ACK"}
    assert _sign(signature_payload(params)) == "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"


def test_signature_payload_keeps_non_ascii_raw() -> None:
    params = {"apiKey": API_KEY, "price": "0.10000000", "quantity": "1.00000000", "recvWindow": 5000, "side": "BUY",
              "symbol": "１２３４５６", "timeInForce": "GTC", "timestamp": 1645423376532, "type": "LIMIT"}
    assert _sign(signature_payload(params)) == "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"


def test_param_text_writes_json_values_as_binance_reads_them() -> None:
    assert param_text(True) == "true" and param_text(False) == "false"
    assert param_text(5000) == "5000" and param_text("0.1") == "0.1"
    assert param_text(1e-05) == "1e-05"  # a float with an exponent stays visible (the venue refuses it)
    assert signature_payload({"b": False, "a": 1}) == "a=1&b=false"


@pytest.mark.parametrize("request_id, ok", [
    (None, True), (1, True), (-(2**63), True), (2**63, False), ("e2a85d9f-07a5-4f94-8d5f-789dc3deb097", True),
    ("x" * 37, False), ("", False), ("a b", False), (True, False), (1.5, False), ([], False)])
def test_request_ids_binance_accepts(request_id: object, ok: bool) -> None:
    assert is_valid_request_id(request_id) is ok


def test_cancel_replace_outcomes() -> None:
    assert cancel_replace_outcome(Half.SUCCESS, Half.SUCCESS) == (200, 0, "")
    assert cancel_replace_outcome(Half.SUCCESS, Half.FAILURE)[:2] == (409, -2021)
    assert cancel_replace_outcome(Half.FAILURE, Half.SUCCESS)[:2] == (409, -2021)
    assert cancel_replace_outcome(Half.FAILURE, Half.NOT_ATTEMPTED)[:2] == (400, -2022)
    assert cancel_replace_outcome(Half.FAILURE, Half.FAILURE)[:2] == (400, -2022)
    assert not should_attempt_new("STOP_ON_FAILURE", Half.FAILURE)
    assert should_attempt_new("STOP_ON_FAILURE", Half.SUCCESS)
    assert should_attempt_new("ALLOW_FAILURE", Half.FAILURE)


def test_is_every() -> None:
    assert [n for n in range(1, 8) if is_every(n, 3)] == [3, 6]
    assert not any(is_every(n, 0) for n in range(10))
