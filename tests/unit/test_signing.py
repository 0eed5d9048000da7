import pytest

from mm.signing import HmacSigner, encode_params, is_valid_signature, sign_payload

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
PARAMS = [("symbol", "LTCBTC"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", "1"),
          ("price", "0.1"), ("recvWindow", "5000"), ("timestamp", "1499827319559")]


def test_sign_official_example_1_spot_all_params():
    payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    assert encode_params(PARAMS) == payload
    assert HmacSigner(SECRET).sign(payload) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert HmacSigner(SECRET).signed_query(PARAMS) == payload + "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_sign_official_example_2_non_ascii_symbol_percent_encoded():
    payload = ("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC"
               "&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
    assert encode_params([("symbol", "１２３４５６")] + PARAMS[1:]) == payload
    assert HmacSigner(SECRET).sign(payload) == "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"


def test_sign_query_and_body_concatenated_without_separator():
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    assert HmacSigner(SECRET).sign(query, body) == "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


def test_sign_usdm_example():
    payload = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943"
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    assert sign_payload(secret, payload) == "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def test_is_valid_signature_is_case_insensitive_and_rejects_others():
    payload = encode_params(PARAMS)
    assert is_valid_signature(SECRET, payload, "C8DB56825AE71D6D79447849E617115F4A920FA2ACDCAB2B053C4B2838BD6B71")
    assert not is_valid_signature(SECRET + "x", payload, sign_payload(SECRET, payload))


def test_signer_repr_hides_the_secret():
    assert SECRET not in repr(HmacSigner(SECRET))


def test_signature_matches_ccxt_binance_sign_offline():
    ccxt = pytest.importorskip("ccxt")
    exchange = ccxt.binance({"apiKey": API_KEY, "secret": SECRET, "options": {"recvWindow": 5000}})
    exchange.nonce = lambda: 1499827319559  # a fixed timestamp; sign() makes no request
    params = {"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1",
              "price": "0.1", "newClientOrderId": "mm1-a42"}
    request = exchange.sign("order", ["private"], "POST", dict(params))
    query, _, ccxt_signature = request["body"].rpartition("&signature=")
    assert request["headers"]["X-MBX-APIKEY"] == API_KEY
    assert HmacSigner(SECRET).sign(query) == ccxt_signature
    # ccxt sends timestamp first and recvWindow last; encoding the same order gives the same bytes
    ordered = [("timestamp", 1499827319559), *params.items(), ("recvWindow", 5000)]
    assert HmacSigner(SECRET).signed_query(ordered) == request["body"]
