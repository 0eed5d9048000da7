"""Binance HMAC-SHA256 request signing (BINANCE.md §3.1).

The payload is the query string immediately followed by the request body, exactly as sent
(percent-encoded); the signature is the lower-case hex HMAC-SHA256 of it under the secret key and
goes last, as `signature=`. `encode_params` percent-encodes like ccxt (`urllib.parse.urlencode`,
form encoding), so the text we sign is the text on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode


def encode_params(params: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
    """`k=v&...` in the given order, percent-encoded (non-ASCII as UTF-8 %XX)."""
    return urlencode(params)


class HmacSigner:
    """Signs payloads under one secret. The keyed HMAC state is made once and copied per signature
    (saves rehashing the key on every order)."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "HmacSigner(***)"

    def sign(self, query: str, body: str = "") -> str:
        """Signature of query‖body (no separator), lower-case hex."""
        mac = self._keyed.copy()
        mac.update((query + body).encode())
        return mac.hexdigest()

    def signed_query(self, params: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
        """Encode params and append `&signature=...`: the whole signed query string (or form body)."""
        query = encode_params(params)
        return f"{query}&signature={self.sign(query)}"


def sign_payload(secret: str | bytes, payload: str) -> str:
    """One-off HMAC-SHA256 hex of `payload`; prefer HmacSigner on a hot path."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def is_valid_signature(secret: str | bytes, payload: str, signature: str) -> bool:
    """Venue side: compare in constant time; Binance compares HMAC hex case-insensitively."""
    return hmac.compare_digest(sign_payload(secret, payload), signature.lower())
