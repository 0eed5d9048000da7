"""Binance spot WebSocket API decisions (BINANCE.md §3.1 vector 4, §2.2 cancelReplace, §7.1).

Pure: the signature payload of a request's params, the text a JSON param value stands for, the
outcome of an `order.cancelReplace` from its two halves, and which request ids Binance accepts.
The venue's ws-api shell (processes/venue_ws_api.py) does the sockets.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

MAX_ID_CHARS = 36  # a string request id: alphanumeric, at most 36 characters
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def param_text(value: object) -> str:
    """The text of one JSON param value as Binance signs and reads it: `true`/`false`, integers as
    digits, strings as they are (raw UTF-8, no percent-encoding); floats via `repr` (their shortest
    round-trip text, which may carry an exponent: a decimal parameter then fails as malformed)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def signature_payload(params: Mapping[str, object]) -> str:
    """`k=v&...` over every param except `signature`, sorted by name (BINANCE.md §3.1 vector 4)."""
    return "&".join(f"{name}={param_text(params[name])}" for name in sorted(params) if name != "signature")


def text_params(params: Mapping[str, object]) -> dict[str, str]:
    """The params as text, as the REST side reads its query string (nested values are refused by the
    caller before this)."""
    return {name: param_text(value) for name, value in params.items()}


def is_valid_request_id(request_id: object) -> bool:
    """`id` is a signed 64-bit int, an alphanumeric (and `-`) string of at most 36 characters, or null."""
    if request_id is None:
        return True
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        return INT64_MIN <= request_id <= INT64_MAX
    if isinstance(request_id, str):
        return 0 < len(request_id) <= MAX_ID_CHARS and all(c.isascii() and (c.isalnum() or c == "-") for c in request_id)
    return False


class Half(enum.Enum):
    """One half of a cancel-replace, as the reply names it."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    NOT_ATTEMPTED = "NOT_ATTEMPTED"


E_CANCEL_REPLACE_PARTIAL = -2021
E_CANCEL_REPLACE_FAILED = -2022
MSG_CANCEL_REPLACE_PARTIAL = "Order cancel-replace partially failed."
MSG_CANCEL_REPLACE_FAILED = "Order cancel-replace failed."


def should_attempt_new(mode: str, cancel: Half) -> bool:
    """STOP_ON_FAILURE places the new order only after a successful cancel; ALLOW_FAILURE always."""
    return cancel is Half.SUCCESS or mode == "ALLOW_FAILURE"


def cancel_replace_outcome(cancel: Half, new: Half) -> tuple[int, int, str]:
    """(status, error code, message) of the whole request: 200 both done; 409 -2021 exactly one half
    done; 400 -2022 neither (BINANCE.md §2.2). Code 0 and "" when it succeeded."""
    done = (cancel is Half.SUCCESS) + (new is Half.SUCCESS)
    if done == 2:
        return 200, 0, ""
    if done == 1:
        return 409, E_CANCEL_REPLACE_PARTIAL, MSG_CANCEL_REPLACE_PARTIAL
    return 400, E_CANCEL_REPLACE_FAILED, MSG_CANCEL_REPLACE_FAILED


def is_every(count: int, every: int) -> bool:
    """The `count`-th occurrence (1-based) is one of every `every` (0: never): fault switches."""
    return every > 0 and count > 0 and count % every == 0
